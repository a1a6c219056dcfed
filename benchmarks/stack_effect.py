"""Does an N>1 sharpening model use its stack? PSNR of N=1 vs N>1 weights on single tiles and on stacks.

    .venv/bin/python benchmarks/stack_effect.py --images ../shared/data/images/val \\
        --baseline models/sharpen-unet-tx-n1 --model models/sharpen-unet-tx-n4 --tiles 32 64 128

The training validation set of the recipe of ``--model`` (its card's recipe; demosaicking residual noise,
8 tiles per photo, isotropic σ in {1, 2, 3, 4}) is rebuilt at each tile size; ``--model`` is run with
stacks of 1 and of its trained N, the N tiles of a stack from one photo (as at inference: they share the
blur, the photo's camera parameters and its noise level) and from N photos (the same tiles regrouped: they
share the blur and the kind of noise, as the training stacks do). Prints a markdown table (mean PSNR in dB, linear RGB) for RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from tqdm import tqdm

from isp_collab.bench.report import md_table, refuse
from isp_collab.models.weights import load_model, read_card, resolve_model_dir
from isp_collab.training.config import load_recipe
from isp_collab.training.tasks import validation_photos
from isp_collab.training.validation import ValGroup, build_sharpen_valset, evaluate


def across_photos(valset: dict[str, ValGroup], n: int) -> dict[str, ValGroup]:
    """The same tiles regrouped so that every stack of ``n`` consecutive tiles comes from ``n`` different photos.

    A group of ``g.group`` consecutive tiles comes from one photo; tile slot k of photos p, p+1, ... are
    made consecutive (photo-major order becomes slot-major). Needs at least ``n`` photos.
    """
    out = {}
    for cond, g in valset.items():
        photos = len(g.blurry) // g.group
        if photos < n:
            refuse(f"{photos} validation photos cannot fill stacks of {n} tiles from different photos")
        order = torch.arange(len(g.blurry)).reshape(photos, g.group).T.reshape(-1)
        out[cond] = ValGroup(g.blurry[order], g.sharp[order], n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, type=Path, help="validation photos (folder)")
    ap.add_argument("--baseline", required=True, help="N=1 model (name or folder)")
    ap.add_argument("--model", required=True, help="N>1 model (name or folder)")
    ap.add_argument(
        "--recipe",
        type=Path,
        default=None,
        help="recipe whose [val] section is used (default: the card's recipe in train/)",
    )
    ap.add_argument("--tiles", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    card = read_card(resolve_model_dir(args.model))
    n = int(card["n_trained"])
    recipe = load_recipe(args.recipe or Path(__file__).resolve().parents[1] / "train" / card["recipe"])
    recipe.data.val_images = [str(args.images)]
    photos = validation_photos(recipe)
    base, model = load_model(args.baseline), load_model(args.model)
    cpu = torch.device("cpu")
    rows = []
    for tile in tqdm(args.tiles, desc="tile sizes"):
        val = dataclasses.replace(recipe.val, tile=tile, border=min(recipe.val.border, tile // 8))
        vs = build_sharpen_valset(photos, val, noise="demosaic")
        b = evaluate(base, vs, 1, val.border, cpu)
        single = evaluate(model, vs, 1, val.border, cpu)["mean_psnr"]
        stacked = evaluate(model, vs, n, val.border, cpu)["mean_psnr"]
        mixed = evaluate(model, across_photos(vs, n), n, val.border, cpu)["mean_psnr"]
        ref = b["mean_psnr"]
        rows.append(
            [
                tile,
                f"{b['mean_blurry']:.2f}",
                f"{ref:.3f}",
                f"{single:.3f}",
                f"{stacked:.3f}",
                f"{mixed:.3f}",
                f"{stacked - ref:+.2f}",
                f"{stacked - single:+.2f}",
                f"{mixed - single:+.2f}",
            ]
        )
    print(
        md_table(
            [
                "tile",
                "blurry",
                "N=1",
                f"N={n}, stacks of 1",
                f"N={n}, stacks of {n} (one photo)",
                f"N={n}, stacks of {n} ({n} photos)",
                f"N={n} − N=1",
                f"stack effect ({n} vs 1, one photo)",
                f"stack effect ({n} vs 1, {n} photos)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
