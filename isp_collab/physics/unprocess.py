"""sRGB <-> pseudo-linear camera RGB, after Brooks et al., "Unprocessing images for learned raw
denoising", CVPR 2019 (reference code: github.com/timothybrooks/unprocessing, ``unprocess.py`` and
``process.py``).

``unprocess``: inverse smoothstep tone curve → gamma 2.2 expansion → RGB→camera CCM → inverse
white-balance / brightness gains (highlight-preserving) → clip to [0, 1].
``process``: gains → clip → camera→RGB CCM → clip → gamma 1/2.2 → smoothstep.
Images are ``(..., 3, H, W)`` float tensors, channel axis third from the end.
``srgb_to_linear`` / ``linear_to_srgb`` are the plain IEC 61966-2-1 sRGB curve, for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from .checks import require_float_array, require_float_tensor

# XYZ -> camera matrices of four cameras (Brooks et al. 2019, ``random_ccm`` in unprocess.py).
XYZ2CAMS = torch.tensor(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
    ],
    dtype=torch.float64,
)
# Linear sRGB (D65) -> XYZ, as in Brooks et al. 2019.
RGB2XYZ = torch.tensor(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=torch.float64,
)
# Highlight-preserving gain inversion starts above this grey level (Brooks, ``safe_invert_gains``).
_INFLECTION = 0.9

Array = TypeVar("Array", torch.Tensor, np.ndarray)


@dataclass(frozen=True)
class ISPParams:
    """One camera's ISP parameters.

    Attributes:
        rgb2cam: ``(3, 3)`` float32, linear sRGB → camera RGB, rows sum to 1.
        cam2rgb: ``(3, 3)`` float32, its inverse.
        rgb_gain: brightness gain (≈ 1/0.8).
        red_gain: white-balance gain of red.
        blue_gain: white-balance gain of blue.
    """

    rgb2cam: torch.Tensor
    cam2rgb: torch.Tensor
    rgb_gain: float
    red_gain: float
    blue_gain: float


def _params_from_xyz2cam(xyz2cam: torch.Tensor, rgb_gain: float, red_gain: float, blue_gain: float) -> ISPParams:
    rgb2cam = xyz2cam @ RGB2XYZ
    rgb2cam = rgb2cam / rgb2cam.sum(dim=-1, keepdim=True)
    return ISPParams(
        rgb2cam.float(), torch.linalg.inv(rgb2cam).float(), float(rgb_gain), float(red_gain), float(blue_gain)
    )


def random_isp_params(generator: torch.Generator | None = None) -> ISPParams:
    """Draw a random camera (Brooks et al. 2019 ``random_ccm`` and ``random_gains``).

    CCM: convex mix of :data:`XYZ2CAMS` (uniform weights, normalised), times sRGB→XYZ, rows
    normalised. Gains: ``rgb_gain = 1 / N(0.8, 0.1)``, red U[1.9, 2.4], blue U[1.5, 1.9].
    """
    w = torch.rand(4, generator=generator, dtype=torch.float64) + 1e-8
    xyz2cam = (XYZ2CAMS * (w / w.sum())[:, None, None]).sum(0)
    u = torch.rand(3, generator=generator, dtype=torch.float64)
    rgb_gain = 1.0 / (0.8 + 0.1 * torch.randn(1, generator=generator, dtype=torch.float64).item())
    # N(0.8, 0.1) can reach ~0 in extreme draws; keep the gain finite and positive.
    rgb_gain = min(max(rgb_gain, 1.0 / 1.2), 1.0 / 0.4)
    return _params_from_xyz2cam(xyz2cam, rgb_gain, 1.9 + 0.5 * u[0].item(), 1.5 + 0.4 * u[1].item())


def fixed_isp_params() -> ISPParams:
    """Deterministic mid-range camera: equal CCM mix, rgb gain 1/0.8, red 2.15, blue 1.7."""
    return _params_from_xyz2cam(XYZ2CAMS.mean(0), 1.0 / 0.8, 2.15, 1.7)


def _check(x: torch.Tensor) -> None:
    require_float_tensor("image", x)
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"image must be (..., 3, H, W), got {tuple(x.shape)}")


def _apply_ccm(x: torch.Tensor, ccm: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", ccm.to(x), x)


def _gains(params: ISPParams, x: torch.Tensor) -> torch.Tensor:
    """Forward per-channel gains ``(3, 1, 1)``: red·rgb, rgb, blue·rgb."""
    g = torch.tensor([params.red_gain, 1.0, params.blue_gain], dtype=x.dtype, device=x.device)
    return (g * params.rgb_gain)[:, None, None]


def unprocess(srgb: torch.Tensor, params: ISPParams) -> torch.Tensor:
    """sRGB image → pseudo-linear camera RGB (Brooks et al. 2019, ``unprocess``).

    Args:
        srgb: ``(..., 3, H, W)`` float, sRGB (tone-mapped) in [0, 1].
        params: the camera, e.g. from :func:`random_isp_params`.

    Returns:
        ``(..., 3, H, W)`` linear camera RGB in [0, 1] (before white balance; greenish).
    """
    _check(srgb)
    x = srgb.clamp(0.0, 1.0)
    x = 0.5 - torch.sin(torch.asin(1.0 - 2.0 * x) / 3.0)  # inverse smoothstep
    x = x.clamp_min(1e-8) ** 2.2  # gamma expansion
    x = _apply_ccm(x, params.rgb2cam)
    # Safe inversion of gains: blend the inverse gains towards 1 for near-white pixels so that
    # highlights stay saturated after processing instead of turning magenta (Brooks §3.3).
    inv = 1.0 / _gains(params, x)
    grey = x.mean(dim=-3, keepdim=True)
    mask = ((grey - _INFLECTION).clamp_min(0.0) / (1.0 - _INFLECTION)) ** 2
    x = x * torch.maximum(mask + (1.0 - mask) * inv, inv)
    return x.clamp(0.0, 1.0)


def process(linear: torch.Tensor, params: ISPParams) -> torch.Tensor:
    """Pseudo-linear camera RGB → sRGB (Brooks et al. 2019, ``process`` without demosaicking).

    Args:
        linear: ``(..., 3, H, W)`` float, linear camera RGB in [0, 1].
        params: the camera used to unprocess.

    Returns:
        ``(..., 3, H, W)`` sRGB in [0, 1].
    """
    _check(linear)
    x = (linear * _gains(params, linear)).clamp(0.0, 1.0)
    x = _apply_ccm(x, params.cam2rgb).clamp(0.0, 1.0)
    x = x.clamp_min(1e-8) ** (1.0 / 2.2)
    return 3.0 * x**2 - 2.0 * x**3  # smoothstep


def _check_float(x: Array) -> None:
    """Integer pixels would be clipped to 0 or 1: refused (NaN passes through, as in numpy)."""
    if isinstance(x, torch.Tensor):
        require_float_tensor("x", x, finite=False)
    else:
        require_float_array("x", x)


def srgb_to_linear(x: Array) -> Array:
    """Plain sRGB decoding curve (IEC 61966-2-1), any shape, torch or numpy float; input clipped to [0, 1]."""
    _check_float(x)
    if isinstance(x, torch.Tensor):
        x = x.clamp(0.0, 1.0)
        return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(x.dtype, copy=False)


def linear_to_srgb(x: Array) -> Array:
    """Plain sRGB encoding curve (IEC 61966-2-1), any shape, torch or numpy float; input clipped to [0, 1]."""
    _check_float(x)
    if isinstance(x, torch.Tensor):
        x = x.clamp(0.0, 1.0)
        return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 1e-12) ** (1 / 2.4) - 0.055).astype(
        x.dtype, copy=False
    )
