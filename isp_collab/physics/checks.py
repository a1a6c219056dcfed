"""Input checks shared by the degradations, and the geometry checks of a PSF field (lens calibrations).

A bad argument gets one line naming it and the reason, instead of a silent wrong result (an integer
image blurred with a kernel cast to integers comes out black; one NaN pixel spreads through an FFT
over a whole channel) or a traceback from deep inside torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def require_float_tensor(name: str, x: object, *, finite: bool = True) -> None:
    """TypeError unless ``x`` is a non-empty floating-point tensor; ValueError if ``finite`` and it holds NaN/inf."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor with values in [0, 1], got {x.dtype} "
            "(convert integer images with x.float() / 255, or / the sensor's white level)"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinity")


def require_float_array(name: str, x: object) -> None:
    """TypeError unless ``x`` is a float numpy array or a Python/numpy float (integer pixels are ambiguous)."""
    dtype = np.asarray(x).dtype
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(
            f"{name} must hold floats in [0, 1], got {dtype} (convert integer images with x / 255, or / the "
            "sensor's white level)"
        )


def require_level(name: str, value: float | torch.Tensor, *, positive: bool = False) -> None:
    """ValueError unless every value of ``value`` (scalar or tensor) is finite and >= 0 (> 0 if ``positive``)."""
    v = (
        value.detach().double().cpu()
        if isinstance(value, torch.Tensor)
        else torch.as_tensor(value, dtype=torch.float64)
    )
    bound = "> 0" if positive else ">= 0"
    if not bool(torch.isfinite(v).all()) or bool((v <= 0).any() if positive else (v < 0).any()):
        shown = f"{v.item():g}" if v.numel() == 1 else f"values from {v.min().item():g} to {v.max().item():g}"
        raise ValueError(f"{name} must be finite and {bound}, got {shown}")


def require_sigma_range(sigma_range: tuple[float, float]) -> None:
    """ValueError unless ``sigma_range`` is ``(lo, hi)`` with 0 < lo <= hi, both finite (blur stds in px)."""
    try:
        lo, hi = (float(s) for s in sigma_range)
    except (TypeError, ValueError):
        raise ValueError(f"sigma_range must be two numbers (lo, hi), got {sigma_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"sigma_range must be finite with 0 < lo <= hi (px), got {sigma_range!r}")


def pixel_size(image_size: Sequence[float] | np.ndarray) -> tuple[int, int]:
    """``image_size`` as (H, W) ints; ValueError (one line) unless it is two finite, whole, positive numbers
    (600.0 is 600; 600.7, a bool, NaN or 0 is refused rather than truncated)."""
    try:
        values = [v.item() if hasattr(v, "item") else v for v in image_size]
    except TypeError:
        values = None
    if (
        values is None
        or len(values) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        or not all(np.isfinite(v) and v >= 1 and v == int(v) for v in values)
    ):
        raise ValueError(f"image_size must be (H, W), two whole positive numbers of pixels, got {image_size!r}")
    return int(values[0]), int(values[1])


def check_psf_field(
    positions: torch.Tensor, image_size: tuple[int, int], kernels: torch.Tensor, center: tuple[float, float]
) -> None:
    """Raise ValueError (one line) if the arrays do not form a valid PSF field (:class:`~.psf_field.PSFField`)."""
    if positions.ndim != 3 or positions.shape[-1] != 2:
        raise ValueError(f"positions must have shape (R, C, 2), got {tuple(positions.shape)}")
    r, c = positions.shape[:2]
    if kernels.ndim != 5 or kernels.shape[:3] != (r, c, 3) or kernels.shape[3] != kernels.shape[4]:
        raise ValueError(f"kernels must have shape ({r}, {c}, 3, k, k) to match positions, got {tuple(kernels.shape)}")
    if kernels.shape[-1] % 2 == 0:
        raise ValueError(f"kernel size must be odd, got {kernels.shape[-1]}")
    if not (torch.isfinite(positions).all() and np.isfinite(center).all()):
        raise ValueError("positions and center must be finite")
    h, w = image_size
    if not (-0.5 <= center[0] <= w - 0.5 and -0.5 <= center[1] <= h - 0.5):
        raise ValueError(f"center {tuple(center)} (x, y) is outside the {h}x{w} (H x W) image")
    # nodes may sit outside the frame by a node spacing (a grid padded by one node) or 5%, not a field away
    xs, ys = positions[0, :, 0], positions[:, 0, 1]
    slack_x = max(0.05 * w, float(xs.diff().max()) if len(xs) > 1 else 0.0)
    slack_y = max(0.05 * h, float(ys.diff().max()) if len(ys) > 1 else 0.0)
    xs_all, ys_all = positions[..., 0], positions[..., 1]
    if (
        xs_all.min() < -0.5 - slack_x
        or xs_all.max() > w - 0.5 + slack_x
        or ys_all.min() < -0.5 - slack_y
        or ys_all.max() > h - 0.5 + slack_y
    ):
        raise ValueError(
            f"node positions span x {xs_all.min():.0f}..{xs_all.max():.0f}, y {ys_all.min():.0f}..{ys_all.max():.0f}, "
            f"beyond the {h}x{w} (H x W) image by more than the {slack_x:.0f} px in x, {slack_y:.0f} px in y allowed "
            "(the larger of 5% and the widest node spacing on each axis; image_size is (H, W): swapped?)"
        )
    if not torch.isfinite(kernels).all():
        raise ValueError("kernels contain NaN or infinite values")
    if kernels.min() < 0:
        raise ValueError(f"kernels must be non-negative (min {kernels.min().item():.3g})")
    sums = kernels.sum(dim=(-2, -1))
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        raise ValueError(f"each kernel channel must sum to 1 (sums in [{sums.min():.4g}, {sums.max():.4g}])")
    xs, ys = positions[0, :, 0], positions[:, 0, 1]
    if (xs.diff() <= 0).any() or (ys.diff() <= 0).any():
        raise ValueError("node positions must increase: x along columns, y along rows")
    for axis, nodes, side in (("x", xs, w), ("y", ys, h)):  # 0..1 fractions put every node in one pixel
        if len(nodes) > 1 and float(nodes.max() - nodes.min()) < 0.1 * side:
            raise ValueError(
                f"node positions span {float(nodes.min()):.3g}..{float(nodes.max()):.3g} in {axis}, under a tenth of "
                f"the image's {side} px: positions are pixel coordinates (x, y), not fractions of the frame"
            )
    grid = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), dim=-1)
    if (positions - grid).abs().max() > 0.5:
        raise ValueError("node positions must form a rectilinear grid (x constant down columns, y along rows)")
