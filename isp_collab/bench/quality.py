"""Quality benchmark: PSNR / SSIM of every method under the paper's §5.2 protocol, and lens regions.

Sharpening table: rows are the blurry input, the tuned unsharp mask and Polyblur
(:mod:`isp_collab.bench.classical`), and every shipped sharpening model by name, each restored as a
whole image with ``isp_collab.restore.restore(image, model, strategy="spread", n=card["n_trained"])``;
columns are the degradations of :mod:`isp_collab.bench.protocol` (isotropic sigma 1..4 and a seeded
anisotropic set, noise 0.5/255, linear camera RGB). Scores: PSNR and SSIM (scikit-image) over the
image minus a border, averaged over images.

Lens table (the layout of the paper's Table 3): the ``lens-a`` PSF field of
:func:`isp_collab.physics.psf_field.make_lens` applied to each image, noise 0.5/255, restored by the
``lens-a`` models with mirror alignment (``strategy="mirror"`` around the optical centre) and
without (``strategy="local"``); PSNR in three field regions by normalised distance r from the
optical centre (r = 1 at the farthest image corner): centre r < 1/3, intermediate 1/3 <= r < 2/3,
edge r >= 2/3.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .classical import Restorer
from .metrics import DEFAULT_BORDER, mse, psnr, psnr_from_mse, ssim
from .protocol import NOISE_SIGMA, cases, center_crop, linearise

BLURRY = "blurry input"
LENS_NAME = "lens-a"
REGIONS = ("edge", "intermediate", "centre")


def by_task(names: Sequence[str]) -> dict[str, list[str]]:
    """Model names (shipped or folders) split by their card's task: ``{"sharpen": [...], "lens": [...]}``.

    ``lens`` holds only models of the benchmarked lens (card ``lens`` = :data:`LENS_NAME`); models of
    another lens are left out of both lists.
    """
    from ..models import read_card

    out: dict[str, list[str]] = {"sharpen": [], "lens": []}
    for name in names:
        card = read_card(name)
        if str(card.get("task", "sharpen")).startswith("lens"):
            if card.get("lens", LENS_NAME) == LENS_NAME:
                out["lens"].append(name)
        else:
            out["sharpen"].append(name)
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


def model_label(name: str) -> str:
    """Row label of a model: the shipped name, or a folder's last component."""
    return Path(name).name if ("/" in str(name) or Path(name).is_dir()) else str(name)


def model_methods(names: Sequence[str], device: str | None = None) -> tuple[dict[str, Restorer], dict[str, dict]]:
    """Sharpening rows for the given model names or folders: ``({label: restorer}, {label: card})``."""
    methods, cards = {}, {}
    for name in names:
        label = model_label(name)
        methods[label], cards[label] = model_restorer(name, device=device)
    return methods, cards


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
            rows.append(
                QualityRow(name, c.image, c.degradation, psnr(out, c.sharp, border), ssim(out, c.sharp, border), dt)
            )
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


# ----------------------------------------------------------------------------------------------
# Lens regions (paper Table 3 layout)


def region_masks(shape: tuple[int, int], center: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """H x W bool masks of the edge / intermediate / centre field regions.

    ``center`` (x, y) in pixels, default the image centre. r = distance to the centre divided by the
    distance to the farthest corner: centre r < 1/3, intermediate 1/3 <= r < 2/3, edge r >= 2/3.
    """
    h, w = shape
    cx, cy = center if center is not None else ((w - 1) / 2, (h - 1) / 2)
    y, x = np.mgrid[0:h, 0:w]
    d = np.hypot(x - cx, y - cy)
    corners = [np.hypot(px - cx, py - cy) for px in (0, w - 1) for py in (0, h - 1)]
    r = d / max(max(corners), 1e-9)
    return {"edge": r >= 2 / 3, "intermediate": (r >= 1 / 3) & (r < 2 / 3), "centre": r < 1 / 3}


@dataclass
class LensRow:
    """Per image, per method: PSNR (dB) in each field region."""

    method: str
    image: str
    psnr: dict[str, float]


def lens_cases(images: Sequence, seed: int = 0, crop: int | None = None, lens: str = LENS_NAME):
    """Yield ``(name, sharp, blurry, field)``: the lens field of each image's size applied, noise added."""
    import torch

    from ..physics.psf_field import apply_psf_field, make_lens

    for i, im in enumerate(images):
        sharp = linearise(center_crop(im.srgb, crop))
        h, w = sharp.shape[:2]
        field = make_lens(lens, image_size=(h, w), seed=seed)
        with torch.no_grad():
            blurred = apply_psf_field(torch.from_numpy(sharp).permute(2, 0, 1).contiguous(), field)
        blurry = blurred.permute(1, 2, 0).numpy().astype(np.float32)
        rng = np.random.default_rng([seed, 777, i])
        blurry = np.clip(blurry + NOISE_SIGMA * rng.standard_normal(blurry.shape).astype(np.float32), 0, 1)
        yield im.name, sharp, blurry, field


def lens_methods(names: Sequence[str], device: str | None = None) -> list[tuple[str, str, str]]:
    """``(row label, model name, strategy)``: N > 1 models twice (mirror-aligned and not), N = 1 once."""
    from ..models import read_card

    out = []
    for name in names:
        n, label = int(read_card(name)["n_trained"]), model_label(name)
        if n > 1:
            out.append((f"{label} (mirror-aligned)", name, "mirror"))
            out.append((f"{label} (no alignment)", name, "local"))
        else:
            out.append((label, name, "local"))
    return out


def run_lens(
    images: Sequence,
    model_names: Sequence[str],
    seed: int = 0,
    crop: int | None = None,
    border: int = DEFAULT_BORDER,
    device: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[LensRow]:
    """Region PSNRs of the blurry input and of each lens model / strategy on every image."""
    from ..models import load_model
    from ..restore import TorchBackend, restore

    specs = lens_methods(model_names, device)
    models = {name: load_model(name) for name in {m for _, m, _ in specs}}
    backends = {name: TorchBackend(m, device) for name, m in models.items()}
    rows: list[LensRow] = []
    for name, sharp, blurry, field in lens_cases(images, seed, crop):
        center = field.center if field.center is not None else None
        masks = region_masks(sharp.shape[:2], center)
        inner = np.zeros(sharp.shape[:2], dtype=bool)
        inner[border : sharp.shape[0] - border, border : sharp.shape[1] - border] = True
        outputs = {BLURRY: blurry}
        for label, mname, strategy in specs:
            model = models[mname]
            n = max(1, int(model.card["n_trained"]))
            kw = {"center": center} if strategy == "mirror" and center is not None else {}
            outputs[label] = restore(blurry, backends[mname], strategy=strategy, n=n, **kw)
        for label, out in outputs.items():
            scores = {
                r: psnr_from_mse(mse(out, sharp, masks[r] & inner)) if (masks[r] & inner).any() else float("nan")
                for r in REGIONS
            }
            rows.append(LensRow(label, name, scores))
        if progress:
            progress(f"  lens: {name} done")
    return rows


def summarise_lens(rows: Sequence[LensRow]) -> dict[str, dict[str, float]]:
    """``table[method][region]`` = mean over images of the region PSNR (dB); NaN where a region was empty."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        for region, v in r.psnr.items():
            acc.setdefault(r.method, {}).setdefault(region, []).append(v)
    return {
        m: {reg: float(np.nanmean(v)) if not np.isnan(v).all() else float("nan") for reg, v in per.items()}
        for m, per in acc.items()
    }
