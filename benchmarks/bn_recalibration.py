"""Do the sharpening networks' BatchNorm running statistics hold back the stack's gain on the validation tiles?

    .venv/bin/python benchmarks/bn_recalibration.py --images ../shared/data/images/train \\
        --val-images ../shared/data/images/val [--models sharpen-unet-tx-n1 sharpen-unet-tx-n4] [--batches 200]

Each BatchNorm layer's running mean and variance (an exponential average, momentum 0.1, over the last steps of a
schedule whose weights still move) are re-estimated as a plain average over ``--batches`` batches of the model's
own training recipe (``train/sharpen-unet-tx-nN.toml``: its sampler, patches per step and photos; generator seed
12345), weights frozen; the model is validated with its recipe's validation protocol before and after.
A diagnostic, pre-registered in the twenty-fifth session (docs/collaboration.md, last section); nothing is shipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from isp_collab.models import load_model
from isp_collab.training import load_recipe
from isp_collab.training.tasks import build_task

TRAIN = Path(__file__).resolve().parents[1] / "train"


def recalibrate(model: torch.nn.Module, task, stacks: int, batches: int, seed: int = 12345) -> None:
    """Re-estimate every BatchNorm2d's running statistics over ``batches`` training batches (weights unchanged)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain (cumulative) average
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(task.sample(stacks, gen).blurry)
    model.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="training image folder (the recipe's data source)")
    p.add_argument("--val-images", required=True, help="validation image folder")
    p.add_argument("--models", nargs="+", default=["sharpen-unet-tx-n1", "sharpen-unet-tx-n4"])
    p.add_argument("--batches", type=int, default=200, help="training batches to average over (default 200)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    for name in args.models:
        model = load_model(name).eval()
        n = int(model.card["n_trained"])
        recipe = load_recipe(TRAIN / f"sharpen-unet-tx-n{n}.toml")
        recipe.data.images, recipe.data.val_images = [args.images], [args.val_images]
        task = build_task(recipe)
        before = task.validate(model, cpu)["mean_psnr"]
        recalibrate(model, task, recipe.train.patches_per_step // n, args.batches)
        after = task.validate(model, cpu)
        per = ", ".join(f"{k} {v:.3f}" for k, v in after["restored"].items())
        print(f"{name}: {before:.3f} dB as shipped, {after['mean_psnr']:.3f} recalibrated "
              f"({after['mean_psnr'] - before:+.3f}; {per})")  # fmt: skip


if __name__ == "__main__":
    main()
