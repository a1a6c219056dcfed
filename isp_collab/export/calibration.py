"""Validation stacks from real photos, for int8 calibration, parity and the export benchmark.

Photos (sRGB files) are taken to the network's input domain: by default linear *camera* RGB before
white balance, as the sidecar documents and as training feeds it (Brooks et al. ``unprocess`` with a
seeded random camera per stack; ``domain="linear-srgb"``: the plain sRGB curve instead). Each is
blurred as a whole with one isotropic Gaussian (σ drawn in [1, 3] px, reflect border), given a
little Gaussian noise (not clipped: real inputs dip below 0 too), and N tiles are cut from one photo
to form a stack that shares its blur, the way ``restore`` builds stacks at inference. For a lens model
(:class:`LensBlur`) a photo is blurred by the lens's PSF field instead and its stacks are the mirror
tiles about the optical centre, as ``restore`` gathers them with ``strategy="mirror"``. Everything is
seeded; arrays are numpy float32.

Photo folder: ``folder`` if given, else ``$ISP_COLLAB_VAL_IMAGES`` (which must exist), else the
first of :data:`VAL_DIRS` present (a source checkout). Without photos, smooth synthetic images stand
in; their stack names start with ``synthetic`` and :func:`export_model` warns.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from ..data.sources import IMAGE_SUFFIXES, image_files
from ..shipped import shipped_path
from .onnx_export import INPUT_NAME

if TYPE_CHECKING:
    from ..physics.psf_field import PSFField

# First existing folder wins; ISP_COLLAB_VAL_IMAGES overrides.
VAL_DIRS = (Path("/work/shared/data/images/val"), shipped_path("benchmarks/data/val"))
NOISE_SIGMA = 0.005


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear, float32: the package's one plain curve (physics is always installed)."""
    from ..physics.unprocess import srgb_to_linear

    return np.asarray(srgb_to_linear(x), dtype=np.float32)


DOMAINS = ("camera", "linear-srgb")


def validation_dir() -> Path | None:
    """The validation photo folder: ``$ISP_COLLAB_VAL_IMAGES`` or the first of :data:`VAL_DIRS` that exists.

    ValueError when the environment variable names a folder that does not exist (not silently ignored).
    """
    env = os.environ.get("ISP_COLLAB_VAL_IMAGES")
    if env:
        if not Path(env).is_dir():
            raise ValueError(f"{env}: ISP_COLLAB_VAL_IMAGES names no folder")
        return Path(env)
    return next((folder for folder in VAL_DIRS if folder.is_dir()), None)


def validation_files(folder: str | os.PathLike | None = None) -> list[Path]:
    """Image files under ``folder`` (default :func:`validation_dir`), recursive and sorted."""
    root = Path(folder) if folder is not None else validation_dir()
    if root is None or not root.is_dir():
        return []
    return image_files(root)


@functools.lru_cache(maxsize=64)
def _load_srgb(path: Path) -> np.ndarray | None:
    """A colour photo as H x W x 3 float32 sRGB-encoded [0, 1] (read-only, cached); None for greyscale/unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] < 3:
        return None
    img = img[..., 2::-1]  # BGR(A) -> RGB
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    srgb = np.ascontiguousarray(img, dtype=np.float32) / np.float32(scale)
    if np.allclose(srgb[..., 0], srgb[..., 1]) and np.allclose(srgb[..., 1], srgb[..., 2]):
        return None
    srgb.flags.writeable = False
    return srgb


def check_photo_folder(folder: str | os.PathLike, min_size: int) -> None:
    """Raise ValueError (naming ``folder`` and why) unless it holds a usable colour photo.

    Usable: readable, colour, at least ``min_size`` px a side. The error names the first
    unreadable file, so a folder of corrupt files is not mistaken for an empty one.
    """
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{folder}: is a file, not a folder of calibration images")
    if not root.is_dir():
        raise ValueError(f"{folder}: calibration image folder not found")
    files = validation_files(root)
    if not files:
        raise ValueError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the calibration folder")
    unreadable, grey, small = [], 0, 0
    for path in files:
        if cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8) is None:
            unreadable.append(path)
            continue
        srgb = _load_srgb(path)
        if srgb is None:
            grey += 1
        elif min(srgb.shape[:2]) < min_size:
            small += 1
        else:
            return
    why = []
    if unreadable:
        why.append(f"{len(unreadable)} unreadable (first: {unreadable[0].name})")
    if grey:
        why.append(f"{grey} greyscale")
    if small:
        why.append(f"{small} smaller than {min_size} px a side")
    raise ValueError(f"{folder}: no usable colour photo among {len(files)} image files ({', '.join(why)})")


def _photos(folder: str | os.PathLike | None, min_size: int, limit: int | None) -> list[tuple[str, np.ndarray]]:
    """(name, sRGB-encoded photo) for the colour photos of at least ``min_size`` px a side, at most ``limit``."""
    root = Path(folder) if folder is not None else validation_dir()
    out = []
    for path in validation_files(root):
        if limit is not None and len(out) >= limit:
            break
        srgb = _load_srgb(path)
        if srgb is not None and min(srgb.shape[:2]) >= min_size:
            out.append((str(path.relative_to(root)), srgb))
    return out


def validation_images(
    folder: str | os.PathLike | None = None, min_size: int = 0, limit: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """Colour photos under ``folder`` as (name, H x W x 3 float32 linear RGB), sorted by path.

    Greyscale photos and photos smaller than ``min_size`` on a side are skipped; at most ``limit``
    photos are decoded.
    """
    return [(name, _srgb_to_linear(srgb)) for name, srgb in _photos(folder, min_size, limit)]


def _to_domain(srgb: np.ndarray, domain: str, rng: np.random.Generator) -> np.ndarray:
    """sRGB-encoded H x W x 3 -> the network's input domain (see the module docstring), float32."""
    if domain == "linear-srgb":
        return _srgb_to_linear(srgb)
    import torch

    from ..physics.unprocess import random_isp_params, unprocess

    camera = random_isp_params(torch.Generator().manual_seed(int(rng.integers(2**31))))
    chw = torch.from_numpy(np.ascontiguousarray(srgb.transpose(2, 0, 1)))
    return np.ascontiguousarray(unprocess(chw, camera).numpy().transpose(1, 2, 0), dtype=np.float32)


@dataclass(frozen=True)
class LensBlur:
    """How a lens model's stacks are made: each photo blurred by the lens's PSF field (scaled to the photo),
    N tiles cut at the mirror positions about its optical centre, flipped into one orientation when
    ``align`` -- the stacks ``restore`` gathers with ``strategy="mirror"``.

    lens: a named lens (``lens-a``, ``lens-b``) or the path of a calibration ``.npz``.
    """

    lens: str
    align: bool = True

    def field(self, size: tuple[int, int]) -> PSFField:
        """The PSF field for a photo of ``size`` (H, W): a named lens built at that size (seed 0, as training), a
        calibration at its own size (the caller resizes it)."""
        from ..physics.psf_field import load_calibration, make_lens

        if Path(self.lens).suffix.lower() == ".npz":
            return load_calibration(self.lens)
        return make_lens(self.lens, image_size=size, seed=0)


def _mirror_tiles(
    blurred: np.ndarray,
    sharp: np.ndarray,
    center: tuple[float, float],
    n: int,
    tile: int,
    align: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """N tiles of ``blurred`` / ``sharp`` (H x W x 3) at mirror positions about ``center`` (x, y, pixel
    indices): quadruplets at random offsets, the first quadrant a random one; each (1, N, 3, T, T)."""
    h, w = sharp.shape[:2]
    cx, cy = center[0] + 0.5, center[1] + 0.5  # from the top-left corner
    reach_x, reach_y = max(0.0, min(cx, w - cx) - tile / 2), max(0.0, min(cy, h - cy) - tile / 2)
    signs = [(1, 1), (-1, 1), (1, -1), (-1, -1)]
    first = int(rng.integers(4))
    pairs = []
    while len(pairs) < n:
        ox, oy = rng.uniform(0, reach_x), rng.uniform(0, reach_y)
        for sx, sy in signs[first:] + signs[:first]:
            x0 = int(np.clip(round(cx + sx * ox - tile / 2), 0, w - tile))
            y0 = int(np.clip(round(cy + sy * oy - tile / 2), 0, h - tile))
            b, s = blurred[y0 : y0 + tile, x0 : x0 + tile], sharp[y0 : y0 + tile, x0 : x0 + tile]
            if align:  # into the (+x, +y) quadrant's orientation, as the mirror gathering does
                b, s = (b[:, ::-1], s[:, ::-1]) if sx < 0 else (b, s)
                b, s = (b[::-1], s[::-1]) if sy < 0 else (b, s)
            pairs.append((b, s))
    stacks = [np.stack([p[i].transpose(2, 0, 1) for p in pairs[:n]])[None] for i in (0, 1)]
    return tuple(np.ascontiguousarray(a, dtype=np.float32) for a in stacks)


@dataclass
class ValStack:
    """One validation stack: ``blurry`` and ``sharp`` (1, N, 3, T, T) float32 linear RGB."""

    name: str
    sigma: float
    blurry: np.ndarray
    sharp: np.ndarray


def _synthetic_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour image, sRGB-encoded (fallback when no photos are available)."""
    low = rng.random((size // 16 + 2, size // 16 + 2, 3)).astype(np.float32)
    img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    edges = (rng.random((size, size, 1)) > 0.5).astype(np.float32) * 0.3
    return np.clip(img * 0.7 + edges, 0, 1).astype(np.float32)


def validation_stacks(
    n: int,
    tile: int,
    count: int,
    *,
    seed: int = 0,
    folder: str | os.PathLike | None = None,
    sigma_range: tuple[float, float] = (1.0, 3.0),
    max_photos: int | None = None,
    domain: str = "camera",
    lens: LensBlur | None = None,
    skip_photos: int = 0,
) -> list[ValStack]:
    """``count`` seeded stacks of N tiles; stack i comes from photo ``i mod #photos``.

    ``max_photos``: decode at most this many photos (default ``count``: each stack its own photo).
    ``domain``: ``"camera"`` (linear camera RGB, the network's documented input) or ``"linear-srgb"``.
    ``skip_photos``: leave out the first photos (those another set of stacks uses), unless that leaves none.

    Each photo is taken to ``domain``, blurred once with an isotropic Gaussian σ ~ U(sigma_range)
    (``lens``: by the lens's PSF field instead, σ recorded as 0) and noised (σ = :data:`NOISE_SIGMA`, not
    clipped); N tile positions are drawn uniformly in the photo (``lens``: at mirror positions about the
    optical centre). Without photos of at least ``tile`` px a side, smooth synthetic images are used and
    the names start with ``synthetic``.
    """
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")
    rng = np.random.default_rng(seed)
    photos = _photos(folder, min_size=tile, limit=skip_photos + (max_photos or count))
    photos = photos[skip_photos:] or photos
    out = []
    for i in range(count):
        if photos:
            name, srgb = photos[i % len(photos)]
        else:
            name, srgb = f"synthetic{i}", _synthetic_image(rng, 2 * tile)
        img = _to_domain(srgb, domain, rng)
        if lens is not None:
            out.append(_lens_stack(name, img, lens, n, tile, rng))
            continue
        sigma = float(rng.uniform(*sigma_range))
        blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
        blurred = (blurred + rng.normal(0.0, NOISE_SIGMA, blurred.shape)).astype(np.float32)
        h, w = img.shape[:2]
        ys = rng.integers(0, h - tile + 1, n)
        xs = rng.integers(0, w - tile + 1, n)

        def cut(a: np.ndarray, ys: np.ndarray = ys, xs: np.ndarray = xs) -> np.ndarray:
            tiles = [a[y : y + tile, x : x + tile].transpose(2, 0, 1) for y, x in zip(ys, xs, strict=True)]
            return np.ascontiguousarray(np.stack(tiles)[None], dtype=np.float32)

        out.append(ValStack(name, sigma, cut(blurred), cut(img)))
    return out


def _lens_stack(name: str, img: np.ndarray, lens: LensBlur, n: int, tile: int, rng: np.random.Generator) -> ValStack:
    import torch

    from ..physics.psf_field import apply_psf_field

    h, w = img.shape[:2]
    field = lens.field((h, w))
    field = field.resized((h, w)) if field.image_size != (h, w) else field
    chw = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    blurred = apply_psf_field(chw, field).numpy().transpose(1, 2, 0)
    blurred = (blurred + rng.normal(0.0, NOISE_SIGMA, blurred.shape)).astype(np.float32)
    b, s = _mirror_tiles(blurred, img, field.center, n, tile, lens.align, rng)
    return ValStack(name, 0.0, b, s)


class StackCalibrationReader(CalibrationDataReader):
    """Feeds ``{"stack": (1, N, 3, T, T)}`` blurry validation stacks to ``quantize_static``."""

    def __init__(self, stacks: list[ValStack]) -> None:
        self.stacks = stacks
        self._it: Iterator[ValStack] = iter(stacks)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next stack as the ONNX model's input feed; None once all are given."""
        s = next(self._it, None)
        return None if s is None else {INPUT_NAME: s.blurry}

    def rewind(self) -> None:
        """Start again from the first stack."""
        self._it = iter(self.stacks)
