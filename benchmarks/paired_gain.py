"""Is an N>1 sharpening model's gain over N=1 real? Paired per-photo differences with a bootstrap interval.

    .venv/bin/python benchmarks/paired_gain.py --images ../shared/data/images/val \\
        --baseline models/sharpen-unet-tx-n1 --models models/sharpen-unet-tx-n4 models/sharpen-unet-tx-n8

On the training validation set of ``train/sharpen-unet-tx-n4.toml`` (demosaicking residual noise, 8 tiles per
photo, isotropic σ in {1, 2, 3, 4}), each model restores with stacks of its trained N and the baseline with
stacks of 1; the PSNR difference (dB, linear RGB) is averaged per photo over tiles and σ, and the mean over
photos gets a 95% bootstrap interval (10,000 resamples of the photos). Prints a markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from isp_collab.bench.report import md_table
from isp_collab.models.weights import load_model, read_card, resolve_model_dir
from isp_collab.training.config import load_recipe
from isp_collab.training.tasks import validation_photos
from isp_collab.training.validation import build_sharpen_valset, psnr, restore_group

RECIPE = Path(__file__).resolve().parents[1] / "train" / "sharpen-unet-tx-n4.toml"


@torch.no_grad()
def per_tile_psnr(model: torch.nn.Module, valset: dict, n: int, border: int) -> torch.Tensor:
    """(conditions, tiles) PSNR in dB of ``model`` restoring the validation tiles in stacks of ``n``."""
    cpu = torch.device("cpu")
    return torch.stack([psnr(restore_group(model, g, n, cpu), g.sharp, border) for g in valset.values()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, type=Path, help="validation photos (folder)")
    ap.add_argument("--baseline", required=True, help="N=1 model (name or folder)")
    ap.add_argument("--models", required=True, nargs="+", help="N>1 models (names or folders)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = load_recipe(RECIPE)
    recipe.data.val_images = str(args.images)
    valset = build_sharpen_valset(validation_photos(recipe), recipe.val, noise="demosaic")
    group = next(iter(valset.values())).group
    base = per_tile_psnr(load_model(args.baseline), valset, 1, recipe.val.border)
    rng = np.random.default_rng(0)
    rows = []
    for name in args.models:
        n = int(read_card(resolve_model_dir(name))["n_trained"])
        diff = per_tile_psnr(load_model(name), valset, n, recipe.val.border) - base
        per_photo = diff.reshape(diff.shape[0], -1, group).mean(dim=(0, 2)).numpy()
        boots = per_photo[rng.integers(0, len(per_photo), (10_000, len(per_photo)))].mean(axis=1)
        lo, hi = np.percentile(boots, [2.5, 97.5])
        rows.append([name, n, f"{per_photo.mean():+.3f}", f"[{lo:+.3f}, {hi:+.3f}]",
                     f"{(per_photo > 0).sum()} / {len(per_photo)}", f"{per_photo.min():+.2f} / {per_photo.max():+.2f}"])  # fmt: skip
    print(
        md_table(
            ["model", "N", "gain over N=1 (dB)", "95% bootstrap", "photos with a gain", "min / max per photo"], rows
        )
    )


if __name__ == "__main__":
    main()
