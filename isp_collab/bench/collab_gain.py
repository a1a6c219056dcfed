"""Where does collaboration pay? Validation PSNR of shipped sharpening models vs tile size and stack size.

Evaluation only (no training): the seeded validation protocol of training (photos unprocessed to
linear RGB, isotropic blur σ ∈ {1,2,3,4}, demosaicking residual noise) with tiles of 32/64/128 px
cut from the same photos. A smaller tile holds less evidence about the blur, so a single-patch
network must guess more; a stack of N tiles from one photo pools N times the evidence. Each
model is also run at stack sizes other than the one it was trained with (same weights).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from ..models import load_model, read_card, shipped_models
from ..training.config import ValSection
from ..training.tasks import validation_photos
from ..training.validation import build_sharpen_valset, evaluate


def collab_gain_table(
    val_images: list[str],
    tiles: tuple[int, ...] = (32, 64, 128),
    stack_sizes: tuple[int, ...] = (1, 4, 8),
    tiles_per_image: int = 16,
    max_images: int = 19,
    models: Sequence[str] | None = None,
) -> list[dict]:
    """Rows ``{"model", "n_trained", "tile", "n_eval", "psnr", "blurry"}`` (mean over σ, dB).

    ``models``: names or folders of sharpening models (default: the shipped ones).
    """
    from ..training.config import Recipe

    if models is None:
        models = [m for m in shipped_models() if read_card(m).get("task") == "sharpen"]
    rows = []
    for tile in tiles:
        recipe = Recipe(name="collab-gain")
        recipe.data.val_images = val_images
        recipe.val = dataclasses.replace(
            ValSection(), tile=tile, tiles_per_image=tiles_per_image, max_images=max_images
        )
        valset = build_sharpen_valset(validation_photos(recipe), recipe.val, noise="demosaic")
        for name in models:
            model = load_model(name)
            for n in stack_sizes:
                v = evaluate(model, valset, n, border=min(8, tile // 8), device=torch.device("cpu"))
                rows.append(
                    {"model": name, "n_trained": model.card["n_trained"], "tile": tile, "n_eval": n,
                     "psnr": v["mean_psnr"], "blurry": v["mean_blurry"], "per_sigma": v["restored"]}
                )  # fmt: skip
    return rows


def collab_gain_markdown(rows: list[dict]) -> str:
    tiles = sorted({r["tile"] for r in rows})
    lines = [
        "| model | stack at test | " + " | ".join(f"tile {t}" for t in tiles) + " |",
        "|---|---|" + "---|" * len(tiles),
    ]
    blurry = {t: next(r["blurry"] for r in rows if r["tile"] == t) for t in tiles}
    lines.append("| blurry input | - | " + " | ".join(f"{blurry[t]:.2f}" for t in tiles) + " |")
    keys = sorted({(r["model"], r["n_eval"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for model, n in keys:
        vals = {r["tile"]: r["psnr"] for r in rows if r["model"] == model and r["n_eval"] == n}
        lines.append(f"| `{model}` | {n} | " + " | ".join(f"{vals[t]:.2f}" for t in tiles) + " |")
    return "\n".join(lines) + "\n"
