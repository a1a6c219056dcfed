"""Do the tiles of a whole-image restoration leave seams? The mean change a network makes, by distance from the
centre of the overlap between two tiles, on a stationary texture (where, without seams, it is flat).

    .venv/bin/python benchmarks/tile_seams.py [--model sharpen-unet-tx-n4] [--overlaps 32 48 64] [--level 0.05]

The image is a dark, fine Gaussian texture (linear RGB, mean ``--level``: a review saw the seams on the demo
DNG's grass) of 768 x 1536 px. For each overlap it restores the image with ``isp_collab.restore.restore``
(tile 256, as restore's default was before 2026-12-07 (now 192 for N=4), the model's N, spread stacks) and,
as ``isp-collab process`` does, with the ``Sharpen`` stage
(luma detail, keep_level), and prints the column mean of the luminance change in 4-px bands of distance from the
nearest overlap centre, in 8-bit sRGB levels at the texture's level, and the time. Measured in the
twenty-sixth session: docs/pipeline.md, ``overlap``.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from isp_collab.models import load_model
from isp_collab.pipeline import Frame, Sharpen
from isp_collab.restore import make_grid, restore

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
TILE = 256


def srgb_levels(change: float, level: float) -> float:
    """A linear change at a linear level, in 8-bit sRGB levels (the sRGB curve's slope there)."""

    def encode(x: float) -> float:
        return 1.055 * x ** (1 / 2.4) - 0.055 if x > 0.0031308 else 12.92 * x

    return (encode(level + change) - encode(level)) * 255


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sharpen-unet-tx-n4")
    p.add_argument("--overlaps", type=int, nargs="+", default=[32, 48, 64])
    p.add_argument("--level", type=float, default=0.05, help="mean linear level of the texture (default 0.05)")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    h, w = 768, 1536
    noise = rng.normal(args.level, 0.4 * args.level, (h, w, 3)).astype(np.float32)
    image = np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5), 0, 1)
    model = load_model(args.model)
    bands = range(0, 48, 4)
    print(f"{args.model}, {w}x{h} texture at linear level {args.level}; mean luminance change in 8-bit sRGB levels")
    print("| overlap | output | " + " | ".join(f"{b}-{b + 4} px" for b in bands) + " | seconds |")
    print("|---|---|" + "---|" * (len(bands) + 1))
    for overlap in args.overlaps:
        xs = np.array(make_grid(h, w, TILE, overlap).xs)
        centres = (xs[1:] + xs[:-1] + TILE) / 2
        distance = np.abs(np.arange(w)[:, None] - centres[None]).min(axis=1)
        runs = {
            "restore": lambda o=overlap: restore(image, model, tile=TILE, overlap=o),
            "Sharpen stage": lambda o=overlap: Sharpen(model=args.model, tile=TILE, overlap=o)(
                image, Frame.for_image(image)
            ),
        }
        for name, run in runs.items():
            t0 = time.perf_counter()
            out = run()
            seconds = time.perf_counter() - t0
            column = ((out - image) @ LUMA).mean(axis=0)
            cells = [srgb_levels(float(column[(distance >= b) & (distance < b + 4)].mean()), args.level) for b in bands]
            print(f"| {overlap} | {name} | " + " | ".join(f"{c:+.2f}" for c in cells) + f" | {seconds:.1f} |")


if __name__ == "__main__":
    main()
