"""Gaussian blur kernels and the convolution of stacks that share one kernel.

Paper §5.2 (Eboli, Morel & Facciolo): anisotropic Gaussian kernels, std along the two principal
axes uniform in [0.3, 4] px, orientation uniform in [0, 2π), support 33x33, normalised to sum 1.
Kernels are ``(..., k, k)`` float32 with rows = y (down) and columns = x (right), centred at
``(k // 2, k // 2)``. :func:`blur_stacks` is a true convolution (the kernel is flipped), so a
non-symmetric PSF shifts content the way the optics do.

The Gaussian is sampled at pixel centres, as in the paper, so below about 0.5 px a kernel is sharper
than its σ says (σ = 0.3 px: 98.5% of the weight on the centre pixel, a measured std of 0.09 px;
σ = 0.5 px: 0.46 px; from 1 px on the stds match). The support cuts wide kernels: ``size`` should be at
least ``6 σ + 1``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from .checks import require_float_tensor, require_level, require_sigma_range

Padding = Literal["valid", "reflect"]

# From this kernel size on, the FFT beats a grouped direct convolution on CPU (measured, 1 thread,
# 8x4x3 patches of 64 px valid output: k=33 FFT 8 ms vs direct 16 ms; k=13 direct 4 ms vs FFT 8 ms).
_FFT_MIN_SIZE = 21


def gaussian_kernel(
    sigma_x: float | torch.Tensor,
    sigma_y: float | torch.Tensor,
    theta: float | torch.Tensor,
    size: int = 33,
) -> torch.Tensor:
    """Anisotropic Gaussian kernel(s), normalised to sum 1.

    Args:
        sigma_x: std in pixels along the first principal axis, scalar or ``(B,)``.
        sigma_y: std in pixels along the second principal axis, scalar or ``(B,)``.
        theta: angle in radians of the first principal axis, from +x towards +y (image rows
            grow downwards), scalar or ``(B,)``.
        size: odd support ``k``.

    Returns:
        ``(k, k)`` for scalar inputs, else ``(B, k, k)``; float32, non-negative, sums to 1.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    require_level("sigma_x", sigma_x, positive=True)
    require_level("sigma_y", sigma_y, positive=True)
    if not bool(torch.isfinite(torch.as_tensor(theta, dtype=torch.float64)).all()):
        raise ValueError(f"theta must be finite, got {theta!r}")
    scalar = not any(isinstance(v, torch.Tensor) and v.dim() > 0 for v in (sigma_x, sigma_y, theta))
    sx, sy, th = (torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in (sigma_x, sigma_y, theta))
    sx, sy, th = torch.broadcast_tensors(sx, sy, th)
    c, s = torch.cos(th), torch.sin(th)
    # Inverse covariance R diag(1/sx², 1/sy²) Rᵀ written out.
    a = c**2 / sx**2 + s**2 / sy**2
    b = c * s * (1 / sx**2 - 1 / sy**2)
    d = s**2 / sx**2 + c**2 / sy**2
    r = torch.arange(size, dtype=torch.float64) - size // 2
    y, x = r[:, None], r[None, :]
    q = a[:, None, None] * x**2 + 2 * b[:, None, None] * x * y + d[:, None, None] * y**2
    k = torch.exp(-0.5 * q)
    k = (k / k.sum(dim=(-2, -1), keepdim=True)).float()
    return k[0] if scalar else k


def isotropic_gaussian_kernel(sigma: float, size: int = 33) -> torch.Tensor:
    """Isotropic Gaussian kernel of std ``sigma`` px (evaluation blur, σ in {1, 2, 3, 4}).

    Returns:
        ``(size, size)`` float32, sums to 1.
    """
    return gaussian_kernel(sigma, sigma, 0.0, size)


def sample_gaussian_params(
    batch: int,
    generator: torch.Generator | None = None,
    sigma_range: tuple[float, float] = (0.3, 4.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw Gaussian blur parameters (paper §5.2).

    Returns:
        ``sigmas (batch, 2)`` principal stds uniform in ``sigma_range`` and
        ``theta (batch,)`` uniform in [0, 2π); float32.
    """
    if not isinstance(batch, int) or batch < 0:
        raise ValueError(f"batch must be a whole number >= 0, got {batch!r}")
    require_sigma_range(sigma_range)
    lo, hi = sigma_range
    sigmas = lo + (hi - lo) * torch.rand(batch, 2, generator=generator)
    theta = 2 * math.pi * torch.rand(batch, generator=generator)
    return sigmas, theta


def sample_gaussian_kernels(
    batch: int,
    generator: torch.Generator | None = None,
    size: int = 33,
    sigma_range: tuple[float, float] = (0.3, 4.0),
) -> torch.Tensor:
    """Draw ``batch`` random anisotropic Gaussian kernels.

    Returns:
        ``(batch, size, size)`` float32, each sums to 1.
    """
    sigmas, theta = sample_gaussian_params(batch, generator, sigma_range)
    return gaussian_kernel(sigmas[:, 0], sigmas[:, 1], theta, size)


def _fft_conv_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Valid convolution via FFT. x ``(B, N, C, H, W)``, k ``(B, C, kh, kw)``."""
    H, W = x.shape[-2:]
    kh, kw = k.shape[-2:]
    fx = torch.fft.rfft2(x, s=(H, W))
    fk = torch.fft.rfft2(k, s=(H, W))[:, None]
    full = torch.fft.irfft2(fx * fk, s=(H, W))
    # Circular conv equals linear conv where no index wraps: rows >= kh-1, cols >= kw-1.
    return full[..., kh - 1 :, kw - 1 :]


def _direct_conv_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Valid convolution as one grouped conv2d (one group per (batch, channel))."""
    B, N, C, H, W = x.shape
    kh, kw = k.shape[-2:]
    inp = x.permute(1, 0, 2, 3, 4).reshape(N, B * C, H, W)
    weight = k.flip(-2, -1).reshape(B * C, 1, kh, kw)
    out = F.conv2d(inp, weight, groups=B * C)
    return out.reshape(N, B, C, H - kh + 1, W - kw + 1).permute(1, 0, 2, 3, 4)


def blur_stacks(stacks: torch.Tensor, kernels: torch.Tensor, padding: Padding = "valid") -> torch.Tensor:
    """Convolve every patch of stack ``b`` with kernel ``b`` (one blur shared by the stack).

    Args:
        stacks: ``(B, N, C, H, W)`` float, linear RGB.
        kernels: ``(B, k, k)`` (same kernel for all channels) or ``(B, C, k, k)`` (per channel);
            odd ``k``.
        padding: ``"valid"`` → ``(B, N, C, H-k+1, W-k+1)``, exactly the patches' centre crops
            blurred with no border effect; ``"reflect"`` → ``(B, N, C, H, W)``.

    Returns:
        Blurred stacks, same dtype as ``stacks``.
    """
    require_float_tensor("stacks", stacks)
    require_float_tensor("kernels", kernels)
    if stacks.dim() != 5:
        raise ValueError(f"stacks must be (B, N, C, H, W), got {tuple(stacks.shape)}")
    B, N, C, H, W = stacks.shape
    if kernels.dim() == 3:
        kernels = kernels[:, None].expand(-1, C, -1, -1)
    if (
        kernels.dim() != 4
        or kernels.shape[:2] != (B, C)
        or kernels.shape[-1] % 2 == 0
        or kernels.shape[-1] != kernels.shape[-2]
    ):
        raise ValueError(
            f"kernels must be (B, k, k) or (B, C, k, k) with B={B}, C={C}, square and odd k; got {tuple(kernels.shape)}"
        )
    kernels = kernels.to(stacks)  # the stacks' dtype and device (kernels are sampled on the CPU)
    kh, kw = kernels.shape[-2:]
    if padding == "reflect":
        ph, pw = kh // 2, kw // 2
        stacks = F.pad(stacks.reshape(B * N, C, H, W), (pw, pw, ph, ph), mode="reflect").reshape(
            B, N, C, H + 2 * ph, W + 2 * pw
        )
    elif padding != "valid":
        raise ValueError(f"padding must be 'valid' or 'reflect', got {padding!r}")
    if stacks.shape[-2] < kh or stacks.shape[-1] < kw:
        raise ValueError(f"patches {tuple(stacks.shape[-2:])} are smaller than the kernel {(kh, kw)}")
    if max(kh, kw) >= _FFT_MIN_SIZE:
        return _fft_conv_valid(stacks, kernels)
    return _direct_conv_valid(stacks, kernels)


def blur_image(image: torch.Tensor, kernels: torch.Tensor, padding: Padding = "reflect") -> torch.Tensor:
    """Blur a batch of images, one kernel per image.

    Args:
        image: ``(B, C, H, W)`` float, linear RGB.
        kernels: ``(B, k, k)`` or ``(B, C, k, k)``.
        padding: ``"reflect"`` (same size) or ``"valid"`` (``H-k+1, W-k+1``).

    Returns:
        ``(B, C, H', W')`` blurred images.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        raise ValueError(f"image must be a (B, C, H, W) tensor, got {tuple(getattr(image, 'shape', ()))}")
    return blur_stacks(image[:, None], kernels, padding)[:, 0]
