"""How restoration holds up on darker frames: the *quality* protocol at exposure scales 1 .. 1/16.

    .venv/bin/python benchmarks/exposure.py [--model sharpen-unet-tx-n4] [--crop 256] [--threads 2] [--section exposure]

The benchmark photos are unprocessed to linear camera RGB (``isp_collab.bench.protocol``), scaled by k (a
frame exposed log2(1/k) stops darker), blurred (isotropic Gaussian σ = 1, 2, 3) and given white noise of
0.5/255 (read noise, the same in absolute terms at every exposure) or none. PSNR is taken on the output
divided by k against the sharp frame (the exposure gain a camera applies later), minus the usual border.
The model runs as is (``exposure_target=0``), as the pipeline's stages run it (a frame whose brightest 1% is
below ``EXPOSURE_TARGET`` = 0.25 is restored at the gain that brings it there, then divided back:
``isp_collab.restore.exposure``), and with the gain up to the median level of the photos at k = 1 (about 0.5).
Prints the table; with ``--section`` writes it into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from isp_collab.bench.data import load_images
from isp_collab.bench.metrics import psnr
from isp_collab.bench.protocol import center_crop, degrade, kernel_for, linearise
from isp_collab.bench.report import check_section, md_table, publish, refuse
from isp_collab.models import load_model
from isp_collab.restore import TorchBackend, restore
from isp_collab.restore.exposure import EXPOSURE_TARGET, exposure_level

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SCALES = (1.0, 0.5, 0.25, 0.125, 0.0625)
BLURS = ("sigma=1", "sigma=2", "sigma=3")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="sharpen-unet-tx-n4")
    ap.add_argument("--crop", type=int, default=256, help="centre crop of each photo (px)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--section", help="RESULTS.md section to write")
    ap.add_argument("--note", default="", help="markdown paragraph above the table")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="let --section replace a section RESULTS.md holds, or one another command writes",
    )
    args = ap.parse_args()
    if args.threads < 1:
        refuse(f"--threads must be >= 1, got {args.threads}")
    check_section(args.results, args.section, args.overwrite)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="restore: a dark frame")  # the "as is" arm runs them on purpose

    model = load_model(args.model)
    n = max(1, int(model.card["n_trained"]))
    backend = TorchBackend(model)
    photos = [linearise(center_crop(im.srgb, args.crop)) for im in load_images()]
    target = float(np.median([exposure_level(x) for x in photos]))
    scores: dict[tuple[float, float, str], list[float]] = {}
    t0 = time.perf_counter()
    for noise in (0.5 / 255, 0.0):
        for i, sharp in enumerate(photos):
            for b, blur in enumerate(BLURS):
                for k in SCALES:
                    rng = np.random.default_rng([i, b, int(k * 1e4), int(noise > 0)])
                    blurry = degrade(sharp * k, kernel_for(blur, i), rng, noise_sigma=noise)
                    outs = {
                        "blurry input": blurry,
                        f"{args.model}, as is": restore(blurry, backend, n=n),
                        f"{args.model}, pipeline default (gain to {EXPOSURE_TARGET:g})": restore(
                            blurry, backend, n=n, exposure_target=EXPOSURE_TARGET
                        ),
                        f"{args.model}, gain to the photos' median ({target:.2f})": restore(
                            blurry, backend, n=n, exposure_target=target
                        ),
                    }
                    for name, out in outs.items():
                        scores.setdefault((noise, k, name), []).append(psnr(out / k, sharp))
        print(f"noise {noise * 255:g}/255 done ({time.perf_counter() - t0:.0f} s)", flush=True)

    header = ["noise", "method"] + [f"k = {k:g}" for k in SCALES]
    rows = []
    for noise in (0.5 / 255, 0.0):
        base = {k: float(np.mean(scores[(noise, k, "blurry input")])) for k in SCALES}
        for name in dict.fromkeys(key[2] for key in scores):
            cells = []
            for k in SCALES:
                m = float(np.mean(scores[(noise, k, name)]))
                cells.append(f"{m:.2f}" if name == "blurry input" else f"{m:.2f} ({m - base[k]:+.2f})")
            rows.append([f"{noise * 255:g}/255", name, *cells])
    table = md_table(header, rows)
    caption = (
        f"Mean PSNR (dB, linear RGB, output / k against the sharp frame) over {len(photos)} photos x {len(BLURS)} "
        f"blurs, centre crops of {args.crop} px; in brackets the change over the blurry input. Exposure target "
        f"p = {target:.3f}. {args.threads} torch thread(s)."
    )
    body = "\n\n".join(([args.note] if args.note else []) + [caption, table])
    publish(body, args.results, args.section, args.overwrite)


if __name__ == "__main__":
    main()
