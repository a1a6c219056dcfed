"""Where does collaboration pay? Validation PSNR of sharpening models vs tile size and stack size.

Evaluation only (no training): the seeded validation protocol of training (photos unprocessed to
linear RGB, isotropic blur σ ∈ {1,2,3,4}, demosaicking residual noise) with tiles of 32/64/128 px
cut from the same photos. A smaller tile holds less evidence about the blur, so a single-patch
network must guess more; a stack of N tiles from one photo pools N times the evidence. Each
model is run at its trained N and at the other stack sizes (same weights).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from ..models import load_model, read_card, shipped_models
from ..training.config import ValSection
from ..training.tasks import validation_photos
from ..training.validation import build_sharpen_valset, evaluate
from .quality import model_label

#: Stack sizes every model is evaluated at, besides its trained N.
STACK_SIZES: tuple[int, ...] = (1, 4, 8)


def tiles_per_photo(stack_sizes: Sequence[int], base: int = 16) -> int:
    """Tiles cut per photo: ``base``, raised to a multiple of every stack size (tiles are restored in stacks)."""
    return math.lcm(base, *stack_sizes)


def collab_gain_table(
    val_images: list[str],
    tiles: tuple[int, ...] = (32, 64, 128),
    stack_sizes: tuple[int, ...] = STACK_SIZES,
    tiles_per_image: int | None = None,
    max_images: int = 19,
    models: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[dict]:
    """Rows ``{"model", "n_trained", "tile", "n_eval", "tiles_per_image", "psnr", "blurry", "per_sigma"}`` (dB).

    ``models``: names or folders of sharpening models (default: the shipped ones), labelled like the
    quality table (:func:`~isp_collab.bench.quality.model_label`). Each model runs at ``stack_sizes`` and
    at its trained N. ``tiles_per_image`` default: 16, or the next multiple of every stack size.
    ``device``: where the networks run; torch's CPU threads are the caller's (``set_threads``).
    ``progress``: a tqdm bar over the evaluations (the full table takes minutes).
    """
    from tqdm import tqdm

    from ..training.config import Recipe

    if models is None:
        models = [m for m in shipped_models() if read_card(m).get("task") == "sharpen"]
    cards = {name: read_card(name) for name in models}
    sizes = {name: sorted({*stack_sizes, max(1, int(c["n_trained"]))}) for name, c in cards.items()}
    per_photo = tiles_per_image or tiles_per_photo([n for ns in sizes.values() for n in ns])
    dev = torch.device(device)
    rows = []
    with tqdm(
        total=len(tiles) * sum(len(ns) for ns in sizes.values()),
        desc="collab-gain",
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        for tile in tiles:
            recipe = Recipe(name="collab-gain")
            recipe.data.val_images = val_images
            recipe.val = dataclasses.replace(ValSection(), tile=tile, tiles_per_image=per_photo, max_images=max_images)
            try:
                valset = build_sharpen_valset(validation_photos(recipe), recipe.val, noise="demosaic")
            except ValueError as e:  # no photo holds a tile
                where = ", ".join(map(str, val_images))
                raise ValueError(str(e) if where in str(e) else f"{where}: {e}") from None
            for name in models:
                model = load_model(name, device=dev)
                for n in sizes[name]:
                    v = evaluate(model, valset, n, border=min(8, tile // 8), device=dev)
                    rows.append(
                        {"model": model_label(name), "n_trained": model.card["n_trained"], "tile": tile, "n_eval": n,
                         "tiles_per_image": per_photo, "psnr": v["mean_psnr"], "blurry": v["mean_blurry"], "per_sigma": v["restored"]}
                    )  # fmt: skip
                    bar.update(1)
    return rows


def collab_gain_markdown(rows: list[dict]) -> str:
    """The table: one row per model and stack size at test (``*`` marks the trained N), one column per tile."""
    tiles = sorted({r["tile"] for r in rows})
    lines = [
        "| model | stack at test | " + " | ".join(f"tile {t}" for t in tiles) + " |",
        "|---|---|" + "---|" * len(tiles),
    ]
    blurry = {t: next(r["blurry"] for r in rows if r["tile"] == t) for t in tiles}
    lines.append("| blurry input | - | " + " | ".join(f"{blurry[t]:.2f}" for t in tiles) + " |")
    trained = {r["model"]: int(r["n_trained"]) for r in rows}
    keys = sorted({(r["model"], r["n_eval"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for model, n in keys:
        vals = {r["tile"]: r["psnr"] for r in rows if r["model"] == model and r["n_eval"] == n}
        mark = " (trained)" if n == trained[model] else ""
        lines.append(f"| `{model}` | {n}{mark} | " + " | ".join(f"{vals[t]:.2f}" for t in tiles) + " |")
    return "\n".join(lines) + "\n"
