"""Does the local-level loss of the sharpening networks hold back the stack's gain on the validation tiles?

    .venv/bin/python benchmarks/level_bias.py --images ../shared/data/images/train --val-images ../shared/data/images/val \\
        [--models sharpen-unet-tx-n1 sharpen-unet-tx-n4 sharpen-unet-ts-n1]

Builds the validation tiles of ``train/sharpen-unet-tx-n4.toml`` (the training protocol: demosaicking noise,
σ 1-4, 8 tiles per photo, stacks of each model's N), restores them with each model and scores each tile
as restored and after the pipeline's ``keep_level`` step (``isp_collab.restore.detail.keep_local_level``),
plus the mean signed error per tile (the level bias). Measured in the twenty-fourth session:
``docs/collaboration.md``, last section.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from isp_collab.models import load_model
from isp_collab.restore.detail import keep_local_level
from isp_collab.training import load_recipe
from isp_collab.training.tasks import build_task
from isp_collab.training.validation import psnr, restore_group

RECIPE = Path(__file__).resolve().parents[1] / "train" / "sharpen-unet-tx-n4.toml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="training image folder (the recipe's data source)")
    p.add_argument("--val-images", required=True, help="validation image folder")
    p.add_argument("--models", nargs="+", default=["sharpen-unet-tx-n1", "sharpen-unet-tx-n4", "sharpen-unet-ts-n1"])
    args = p.parse_args()
    recipe = load_recipe(RECIPE)
    recipe.data.images, recipe.data.val_images = [args.images], [args.val_images]
    valset = build_task(recipe).valset
    cpu = torch.device("cpu")
    for name in args.models:
        model = load_model(name).eval()
        n = int(model.card["n_trained"])
        net, kept, bias = [], [], []
        for g in valset.values():
            out = restore_group(model, g, n, cpu)
            level = [
                keep_local_level(b.permute(1, 2, 0).numpy(), o.permute(1, 2, 0).numpy())
                for b, o in zip(g.blurry, out, strict=True)
            ]
            leveled = torch.stack([torch.from_numpy(x).permute(2, 0, 1) for x in level])
            net.append(psnr(out, g.sharp, recipe.val.border).mean().item())
            kept.append(psnr(leveled, g.sharp, recipe.val.border).mean().item())
            bias.append((out - g.sharp).mean().item())
        a, b = float(np.mean(net)), float(np.mean(kept))
        print(
            f"{name}: {a:.3f} dB restored, {b:.3f} with keep_level ({b - a:+.3f}); mean level error {np.mean(bias):+.5f}"
        )


if __name__ == "__main__":
    main()
