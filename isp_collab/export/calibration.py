"""Validation stacks from real photos, for int8 calibration, parity and the export benchmark.

Photos (sRGB files) are linearised with the plain sRGB curve (``srgb_to_linear``), blurred as a
whole with one isotropic Gaussian (σ drawn in [1, 3] px, reflect border), given a little Gaussian
noise, and N tiles are cut from one photo to form a stack that shares its blur — the way
``restore`` builds stacks at inference. Everything is seeded; arrays are numpy float32.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from .onnx_export import INPUT_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
# First existing folder wins; ISP_COLLAB_VAL_IMAGES overrides.
VAL_DIRS = (Path("/work/shared/data/images/val"), REPO_ROOT / "benchmarks" / "data" / "val")
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NOISE_SIGMA = 0.005


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear, float32: the package's one plain curve (physics is always installed)."""
    from ..physics.unprocess import srgb_to_linear

    return np.asarray(srgb_to_linear(x), dtype=np.float32)


def validation_dir() -> Path | None:
    """The validation photo folder: ``$ISP_COLLAB_VAL_IMAGES`` or the first of :data:`VAL_DIRS` that exists."""
    env = os.environ.get("ISP_COLLAB_VAL_IMAGES")
    for folder in ([Path(env)] if env else []) + list(VAL_DIRS):
        if folder.is_dir():
            return folder
    return None


def validation_files(folder: str | os.PathLike | None = None) -> list[Path]:
    """Image files under ``folder`` (default :func:`validation_dir`), recursive and sorted."""
    root = Path(folder) if folder is not None else validation_dir()
    if root is None or not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


@functools.lru_cache(maxsize=64)
def _load_linear(path: Path) -> np.ndarray | None:
    """A colour photo as H x W x 3 float32 linear RGB (read-only, cached); None for greyscale/unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] < 3:
        return None
    img = img[..., 2::-1]  # BGR(A) -> RGB
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    srgb = img.astype(np.float32) / scale
    if np.allclose(srgb[..., 0], srgb[..., 1]) and np.allclose(srgb[..., 1], srgb[..., 2]):
        return None
    lin = _srgb_to_linear(srgb)
    lin.flags.writeable = False
    return lin


def validation_images(
    folder: str | os.PathLike | None = None, min_size: int = 0, limit: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """Colour photos under ``folder`` as (name, H x W x 3 float32 linear RGB, read-only), sorted by path.

    Greyscale photos and photos smaller than ``min_size`` on a side are skipped; at most ``limit``
    photos are decoded.
    """
    files = validation_files(folder)
    root = Path(folder) if folder is not None else validation_dir()
    out = []
    for path in files:
        if limit is not None and len(out) >= limit:
            break
        lin = _load_linear(path)
        if lin is not None and min(lin.shape[:2]) >= min_size:
            out.append((str(path.relative_to(root)), lin))
    return out


@dataclass
class ValStack:
    """One validation stack: ``blurry`` and ``sharp`` (1, N, 3, T, T) float32 linear RGB."""

    name: str
    sigma: float
    blurry: np.ndarray
    sharp: np.ndarray


def _synthetic_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour image (fallback when no photos are available)."""
    low = rng.random((size // 16 + 2, size // 16 + 2, 3)).astype(np.float32)
    img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    edges = (rng.random((size, size, 1)) > 0.5).astype(np.float32) * 0.3
    return np.clip(img * 0.7 + edges, 0, 1).astype(np.float32) ** 2.2


def validation_stacks(
    n: int,
    tile: int,
    count: int,
    *,
    seed: int = 0,
    folder: str | os.PathLike | None = None,
    sigma_range: tuple[float, float] = (1.0, 3.0),
    max_photos: int | None = None,
) -> list[ValStack]:
    """``count`` seeded stacks of N tiles; stack i comes from photo ``i mod #photos``.

    ``max_photos``: decode at most this many photos (default ``count``: each stack its own photo).

    Each photo is blurred once with an isotropic Gaussian σ ~ U(sigma_range) and noised
    (σ = :data:`NOISE_SIGMA`); N tile positions are drawn uniformly in the photo. Without photos
    (no folder found) smooth synthetic images are used and the names start with ``synthetic``.
    """
    rng = np.random.default_rng(seed)
    photos = validation_images(folder, min_size=tile, limit=max_photos or count)
    out = []
    for i in range(count):
        if photos:
            name, img = photos[i % len(photos)]
        else:
            name, img = f"synthetic{i}", _synthetic_image(rng, 2 * tile)
        sigma = float(rng.uniform(*sigma_range))
        blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
        blurred = np.clip(blurred + rng.normal(0.0, NOISE_SIGMA, blurred.shape), 0.0, 1.0).astype(np.float32)
        h, w = img.shape[:2]
        ys = rng.integers(0, h - tile + 1, n)
        xs = rng.integers(0, w - tile + 1, n)

        def cut(a: np.ndarray, ys: np.ndarray = ys, xs: np.ndarray = xs) -> np.ndarray:
            tiles = [a[y : y + tile, x : x + tile].transpose(2, 0, 1) for y, x in zip(ys, xs, strict=True)]
            return np.ascontiguousarray(np.stack(tiles)[None], dtype=np.float32)

        out.append(ValStack(name, sigma, cut(blurred), cut(img)))
    return out


class StackCalibrationReader(CalibrationDataReader):
    """Feeds ``{"stack": (1, N, 3, T, T)}`` blurry validation stacks to ``quantize_static``."""

    def __init__(self, stacks: list[ValStack]) -> None:
        self.stacks = stacks
        self._it: Iterator[ValStack] = iter(stacks)

    def get_next(self) -> dict[str, np.ndarray] | None:
        s = next(self._it, None)
        return None if s is None else {INPUT_NAME: s.blurry}

    def rewind(self) -> None:
        self._it = iter(self.stacks)
