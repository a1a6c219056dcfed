"""Quality benchmark: PSNR / SSIM of every method under the paper's §5.2 protocol, and lens regions.

Sharpening table: rows are the blurry input, the tuned unsharp mask and Polyblur
(:mod:`isp_collab.bench.classical`), and every shipped sharpening model by name, each restored as a
whole image with ``isp_collab.restore.restore(image, model, strategy="spread", n=card["n_trained"])``;
columns are the degradations of :mod:`isp_collab.bench.protocol` (isotropic sigma 1..4 and a seeded
anisotropic set, noise 0.5/255, linear camera RGB). Scores: PSNR and SSIM (scikit-image) over the
image minus a border, averaged over images.

The lens table (paper Table 3 layout) is in :mod:`isp_collab.bench.lens`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .classical import Restorer
from .metrics import DEFAULT_BORDER, psnr, ssim
from .protocol import cases

BLURRY = "blurry input"


def by_task(names: Sequence[str]) -> dict[str, list[str]]:
    """Model names (shipped or folders) split by their card's task: ``{"sharpen": [...], "lens": [...]}``.

    ``lens`` holds every lens-correction model, whatever its lens (:mod:`.lens` measures each on its own).
    """
    from ..models import read_card

    out: dict[str, list[str]] = {"sharpen": [], "lens": []}
    for name in names:
        card = read_card(name)
        out["lens" if str(card.get("task", "sharpen")).startswith("lens") else "sharpen"].append(name)
    return out


def shipped_by_task() -> dict[str, list[str]]:
    """Shipped model names split by task: ``{"sharpen": [...], "lens": [...]}`` (from the cards)."""
    from ..models import shipped_models

    return by_task(shipped_models())


def model_restorer(
    name: str, strategy: str = "spread", n: int | None = None, device: str | None = None, **kwargs: Any
) -> tuple[Restorer, dict[str, Any]]:
    """A shipped (or folder) model as an image -> image function, and its card.

    ``n`` defaults to the card's ``n_trained``. Extra ``kwargs`` go to ``restore`` (``center`` ...).
    """
    from ..models import load_model
    from ..restore import TorchBackend, restore

    model = load_model(name, device="cpu")
    card = dict(model.card)
    n = int(n if n is not None else max(1, int(card["n_trained"])))
    backend = TorchBackend(model, device)  # built once: restore's default device and memory format

    def run(image: np.ndarray) -> np.ndarray:
        return restore(image, backend, strategy=strategy, n=n, **kwargs)

    return run, card


def stack_sizes(shapes: Sequence[tuple[int, int]], n: int, tile: int | None = None, device: str = "cpu") -> list[int]:
    """The stack size ``restore`` actually runs at N = ``n`` on images of these (H, W) sizes with its default
    tiling on ``device`` (a torch device name), or ``tile``: min(n, the image's tile count), since a larger stack
    would only repeat tiles (max pooling)."""
    from ..restore.api import default_tile
    from ..restore.tiling import default_overlap, make_grid

    tile = tile or default_tile(n, device=str(device).split(":")[0])
    return [min(n, len(make_grid(h, w, tile, default_overlap(tile), symmetric=False))) for h, w in shapes]  # spread


def model_label(name: str) -> str:
    """Row label of a model: the shipped name, or a folder's last component."""
    return Path(name).name if ("/" in str(name) or Path(name).is_dir()) else str(name)


def label_clash(names: Sequence[str]) -> str | None:
    """One line naming two models that would share a row label (``runs/a/m`` and ``runs/b/m``), else None.

    Every table keys its rows by :func:`model_label`, so a second model of the same label would
    silently replace the first.
    """
    seen: dict[str, str] = {}
    for name in names:
        label = model_label(name)
        if label in seen:
            first = seen[label]
            what = "is given twice" if first == str(name) else f"and {name} would share the row label {label!r}"
            return f"{first} {what}: give each model once, from folders of different names"
        seen[label] = str(name)
    return None


def model_methods(names: Sequence[str], device: str | None = None) -> tuple[dict[str, Restorer], dict[str, dict]]:
    """Sharpening rows for the given model names or folders: ``({label: restorer}, {label: card})``."""
    methods, cards = {}, {}
    for name in names:
        label = model_label(name)
        methods[label], cards[label] = model_restorer(name, device=device)
    return methods, cards


def recipe_families(names: Sequence[str]) -> list[list[str]]:
    """Models grouped into families: training recipes (as logged in ``train_log.jsonl``) equal apart from N.

    Settings that do not change what a run learns are not compared
    (:func:`isp_collab.training.report.recipe_differences`); a model without a logged recipe is a
    family of its own. Only within a family does PSNR vs N say what the stack size is worth.
    Families and their models keep the order of ``names``.
    """
    from ..models.weights import resolve_model_dir
    from ..training.report import recipe_differences, run_facts

    recipes = [run_facts(resolve_model_dir(name))["recipe"] for name in names]
    families: list[list[int]] = []
    for i, recipe in enumerate(recipes):
        home = next((f for f in families if recipe_differences([recipes[f[0]], recipe]) == []), None)
        if home is None:
            families.append([i])
        else:
            home.append(i)
    return [[names[i] for i in f] for f in families]


@dataclass
class QualityRow:
    """One score: ``method`` on ``image`` under ``degradation``; PSNR dB, SSIM, seconds."""

    method: str
    image: str
    degradation: str
    psnr: float
    ssim: float
    seconds: float


def run_quality(
    images: Sequence,
    methods: dict[str, Restorer],
    degradations: Sequence[str],
    seed: int = 0,
    crop: int | None = None,
    border: int = DEFAULT_BORDER,
    keep: Callable[[str, str], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[QualityRow], dict[str, dict[str, np.ndarray]]]:
    """Score the blurry input and every method on every case.

    Returns the rows and the outputs kept for figures: ``kept[case_key][method]`` (H x W x 3 linear,
    ``"sharp"`` and :data:`BLURRY` included) for the cases where ``keep(image, degradation)``.
    """
    rows: list[QualityRow] = []
    kept: dict[str, dict[str, np.ndarray]] = {}
    all_methods: dict[str, Restorer] = {BLURRY: lambda x: x, **methods}
    t0 = time.perf_counter()
    for c in cases(images, degradations, seed=seed, crop=crop):
        key = f"{c.image} {c.degradation}"
        store = keep is not None and keep(c.image, c.degradation)
        if store:
            kept[key] = {"sharp": c.sharp}
        for name, fn in all_methods.items():
            t = time.perf_counter()
            out = np.asarray(fn(c.blurry), dtype=np.float32)
            dt = time.perf_counter() - t
            try:
                scores = psnr(out, c.sharp, border), ssim(out, c.sharp, border)
            except ValueError as e:  # a border that leaves nothing of the image
                raise ValueError(f"{c.image}: {e}") from None
            rows.append(QualityRow(name, c.image, c.degradation, *scores, dt))
            if store:
                kept[key][name] = out
        if progress:
            progress(f"  quality: {c.image} {c.degradation} done ({time.perf_counter() - t0:.0f} s)")
    return rows, kept


def summarise(rows: Sequence[QualityRow], metric: str = "psnr") -> dict[str, dict[str, float]]:
    """``table[method][degradation]`` = mean of ``metric`` over images; plus a ``"mean"`` column."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        acc.setdefault(r.method, {}).setdefault(r.degradation, []).append(getattr(r, metric))
    out: dict[str, dict[str, float]] = {}
    for m, per in acc.items():
        out[m] = {d: float(np.mean(v)) for d, v in per.items()}
        out[m]["mean"] = float(np.mean([v for vs in per.values() for v in vs]))
    return out
