"""Image-quality metrics of the benchmarks: PSNR and SSIM over the image minus a border.

Images are ``H x W x 3`` float32 numpy arrays in linear RGB, nominal range [0, 1]
(``data_range=1``). SSIM is scikit-image's :func:`skimage.metrics.structural_similarity`
(Wang et al. 2004, "Image quality assessment: from error visibility to structural similarity")
with ``channel_axis=-1``; it is never re-implemented here.

The border (default :data:`DEFAULT_BORDER` pixels on each side) is left out because every method
sees a different boundary condition there (reflect padding of the blur, tiling of the restore).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

#: Pixels left out on each side before scoring: half the 33-pixel blur-kernel support.
DEFAULT_BORDER = 16


def crop_border(image: np.ndarray, border: int = DEFAULT_BORDER) -> np.ndarray:
    """``image[border:-border, border:-border]`` (H x W [x C]); ``border=0`` returns the image."""
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return image
    h, w = image.shape[:2]
    if 2 * border >= min(h, w):
        raise ValueError(f"border {border} leaves nothing of a {h}x{w} image")
    return image[border:-border, border:-border]


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error in float64; ``mask`` (H x W bool) restricts it to some pixels."""
    _check_pair(a, b)
    d2 = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is not None:
        if mask.shape != a.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match the image {a.shape[:2]}")
        if not mask.any():
            raise ValueError("empty mask")
        d2 = d2[mask]
    return float(d2.mean())


def psnr_from_mse(m: float, data_range: float = 1.0) -> float:
    """``10 log10(data_range^2 / mse)`` in dB; ``inf`` for identical images."""
    return float("inf") if m == 0 else float(10.0 * np.log10(data_range**2 / m))


def psnr(
    estimate: np.ndarray,
    reference: np.ndarray,
    border: int = DEFAULT_BORDER,
    data_range: float = 1.0,
    mask: np.ndarray | None = None,
) -> float:
    """PSNR in dB of ``estimate`` against ``reference`` (both H x W x 3, linear RGB, [0, 1]).

    The border is removed first; ``mask`` (H x W bool, full-image coordinates) restricts the
    mean squared error to a region (used for the lens field regions).
    """
    _check_pair(estimate, reference)
    m = None if mask is None else crop_border(mask, border)
    return psnr_from_mse(mse(crop_border(estimate, border), crop_border(reference, border), m), data_range)


def ssim(estimate: np.ndarray, reference: np.ndarray, border: int = DEFAULT_BORDER, data_range: float = 1.0) -> float:
    """Mean SSIM of two H x W x 3 images after removing the border.

    scikit-image's ``structural_similarity(..., channel_axis=-1, data_range=1)`` with its default
    7x7 uniform window (per channel, then averaged).
    """
    _check_pair(estimate, reference)
    a = crop_border(estimate, border).astype(np.float64)
    b = crop_border(reference, border).astype(np.float64)
    return float(structural_similarity(a, b, channel_axis=-1 if a.ndim == 3 else None, data_range=data_range))
