"""Lens benchmark (the layout of the paper's Table 3): PSNR by field region for lens-correction models.

Each model is measured on *its own* lens, the one its card names (card ``lens``): a named lens of
:func:`isp_collab.physics.psf_field.make_lens` (``lens-a``, ``lens-b``) or a calibration ``.npz``
(:func:`isp_collab.physics.psf_field.load_calibration`). The field is applied to each image, noise
0.5/255 is added, and the models restore it with mirror alignment (``strategy="mirror"`` around the
optical centre) and without (``strategy="local"``). PSNR in three field regions by normalised
distance r from the optical centre (r = 1 at the farthest image corner): centre r < 1/3,
intermediate 1/3 <= r < 2/3, edge r >= 2/3. A model whose lens cannot be rebuilt is refused
(ValueError naming the model), never skipped; so is an image with no scored pixel in some region
(:func:`missing_regions`: after the 16-px border the edge region exists only from about 97 px), so
every column averages the same images and no cell is NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .metrics import DEFAULT_BORDER, mse, psnr_from_mse
from .protocol import NOISE_SIGMA, center_crop, linearise
from .quality import BLURRY, model_label

if TYPE_CHECKING:
    from ..physics.psf_field import PSFField

LENS_NAME = "lens-a"
REGIONS = ("edge", "intermediate", "centre")


@dataclass(frozen=True)
class Lens:
    """A lens to blur with: a named lens (``path`` None) or a calibration file; ``key`` labels it."""

    key: str
    path: Path | None = None

    def field(self, image_size: tuple[int, int]) -> PSFField:
        """The PSF field for an image of ``image_size`` (H, W) (a calibration is scaled to it)."""
        from ..physics.psf_field import load_calibration, make_lens

        if self.path is None:
            return make_lens(self.key, image_size=image_size, seed=0)  # seed 0, as training
        return load_calibration(self.path).resized(image_size)

    @property
    def ksize(self) -> int:
        """PSF size in pixels (the field pads the image by half of it)."""
        return int(self.field((64, 64)).ksize)


def model_lens(name: str) -> Lens:
    """The lens a lens model was trained for, from its card; ValueError naming the model if it cannot be rebuilt.

    A calibration path is looked up as written on the card (absolute, or relative to the current
    folder), then in the model folder.
    """
    from ..models.weights import calibration_candidates, read_card, resolve_model_dir
    from ..physics.optics import LENSES
    from ..physics.psf_field import load_calibration

    lens = read_card(name).get("lens") or LENS_NAME  # cards before the lens key: the one bundled lens
    if lens in LENSES:
        return Lens(str(lens))
    if Path(str(lens)).suffix.lower() != ".npz":
        raise ValueError(
            f"{name}: its card names lens {lens!r}, neither a bundled lens ({', '.join(LENSES)}) nor a calibration .npz"
        )
    model_dir = resolve_model_dir(name)
    tried = calibration_candidates(str(lens), model_dir)
    found = next((p for p in tried if p.is_file()), None)
    if found is None:
        raise ValueError(
            f"{name}: its lens {lens!r} cannot be rebuilt: no such calibration file "
            f"(looked for {', '.join(map(str, tried))}); copy the .npz into the model folder"
        )
    try:
        load_calibration(found)
    except ValueError as e:
        raise ValueError(f"{name}: its lens cannot be rebuilt: {e}") from None
    return Lens(found.name, found.resolve())


def lens_models(names: Sequence[str]) -> dict[Lens, list[str]]:
    """Lens models grouped by their lens, in the order given (refuses a model whose lens cannot be rebuilt)."""
    groups: dict[Lens, list[str]] = {}
    for name in names:
        groups.setdefault(model_lens(name), []).append(name)
    return groups


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


def missing_regions(
    shape: tuple[int, int], border: int = DEFAULT_BORDER, center: tuple[float, float] | None = None
) -> list[str]:
    """The regions of :func:`region_masks` with no pixel left once ``border`` px are removed on each side.

    ``shape`` (H, W); ``center`` (x, y), default the image centre. Closed form (no H x W arrays, so
    it runs on the header sizes of large photos): the scored pixels span distances from the centre's
    nearest to the farthest corner of the inner rectangle.
    """
    h, w = shape
    x0, x1, y0, y1 = border, w - 1 - border, border, h - 1 - border
    if x1 < x0 or y1 < y0:
        return list(REGIONS)
    cx, cy = center if center is not None else ((w - 1) / 2, (h - 1) / 2)
    far = max(max(np.hypot(px - cx, py - cy) for px in (0, w - 1) for py in (0, h - 1)), 1e-9)
    d_max = max(np.hypot(px - cx, py - cy) for px in (x0, x1) for py in (y0, y1)) / far
    d_min = np.hypot(min(max(cx, x0), x1) - cx, min(max(cy, y0), y1) - cy) / far
    present = {"edge": d_max >= 2 / 3, "intermediate": d_max >= 1 / 3 and d_min < 2 / 3, "centre": d_min < 1 / 3}
    return [r for r in REGIONS if not present[r]]


def min_lens_side(border: int = DEFAULT_BORDER) -> int:
    """The smallest square image side with every region scored (97 px for a 16-px border)."""
    side = 2 * border + 1
    while missing_regions((side, side), border):
        side += 1
    return side


@dataclass
class LensRow:
    """Per image, per method: PSNR (dB) in each field region."""

    method: str
    image: str
    psnr: dict[str, float]


def lens_cases(images: Sequence, seed: int = 0, crop: int | None = None, lens: Lens | str = LENS_NAME) -> Iterator:
    """Yield ``(name, sharp, blurry, field)``: the lens field of each image's size applied, noise added."""
    import torch

    from ..physics.psf_field import apply_psf_field

    lens = Lens(lens) if isinstance(lens, str) else lens
    for i, im in enumerate(images):
        sharp = linearise(center_crop(im.srgb, crop))
        h, w = sharp.shape[:2]
        field = lens.field((h, w))
        try:
            with torch.no_grad():
                blurred = apply_psf_field(torch.from_numpy(sharp).permute(2, 0, 1).contiguous(), field)
        except ValueError as e:
            raise ValueError(f"{im.name}: {e}") from None
        blurry = blurred.permute(1, 2, 0).numpy().astype(np.float32)
        rng = np.random.default_rng([seed, 777, i])
        blurry = np.clip(blurry + NOISE_SIGMA * rng.standard_normal(blurry.shape).astype(np.float32), 0, 1)
        yield im.name, sharp, blurry, field


def lens_methods(names: Sequence[str]) -> list[tuple[str, str, str]]:
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
    tile: int | None = None,
) -> list[LensRow]:
    """Region PSNRs of the blurry input and of each lens model / strategy on every image, each on its own lens.

    With models of several lenses the blurry rows are labelled ``blurry input (<lens>)``. An image
    with a region left empty by the border is refused (ValueError naming it), never scored NaN. ``tile``: restore's
    tile (None: its default for the model's N).
    """
    from ..models import load_model
    from ..restore import TorchBackend, restore

    groups = lens_models(model_names)
    rows: list[LensRow] = []
    for lens, names in groups.items():
        specs = lens_methods(names)
        models = {name: load_model(name) for name in names}
        backends = {name: TorchBackend(m, device) for name, m in models.items()}
        blurry_label = BLURRY if len(groups) == 1 else f"{BLURRY} ({lens.key})"
        for name, sharp, blurry, field in lens_cases(images, seed, crop, lens):
            center = field.center
            empty = missing_regions(sharp.shape[:2], border, center)
            if empty:
                h, w = sharp.shape[:2]
                raise ValueError(
                    f"{name}: {w}x{h} px is too small for the lens table: no {' or '.join(empty)} region is left "
                    f"after the {border}-px border (a square image needs at least {min_lens_side(border)} px)"
                )
            masks = region_masks(sharp.shape[:2], center)
            inner = np.zeros(sharp.shape[:2], dtype=bool)
            inner[border : sharp.shape[0] - border, border : sharp.shape[1] - border] = True
            outputs = {blurry_label: blurry}
            for label, mname, strategy in specs:
                n = max(1, int(models[mname].card["n_trained"]))
                kw = {"center": center} if strategy == "mirror" else {}
                outputs[label] = restore(blurry, backends[mname], strategy=strategy, n=n, tile=tile, **kw)
            for label, out in outputs.items():
                scores = {r: psnr_from_mse(mse(out, sharp, masks[r] & inner)) for r in REGIONS}
                rows.append(LensRow(label, name, scores))
            if progress:
                progress(f"  lens ({lens.key}): {name} done")
    return rows


def summarise_lens(rows: Sequence[LensRow]) -> dict[str, dict[str, float]]:
    """``table[method][region]`` = mean over images of the region PSNR (dB); every cell averages every image."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        for region, v in r.psnr.items():
            acc.setdefault(r.method, {}).setdefault(region, []).append(v)
    return {m: {reg: float(np.mean(v)) for reg, v in per.items()} for m, per in acc.items()}
