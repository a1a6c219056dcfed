"""Input checks shared by the degradations.

A bad argument gets one line naming it and the reason, instead of a silent wrong result (an integer
image blurred with a kernel cast to integers comes out black; one NaN pixel spreads through an FFT
over a whole channel) or a traceback from deep inside torch.
"""

from __future__ import annotations

import math

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
