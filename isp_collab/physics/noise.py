"""Sensor noise on linear RGB: i.i.d. Gaussian, and the residual noise of a demosaicked raw.

The ISP stage that runs the network sees linear RGB *after* demosaicking, so its noise is the
sensor's heteroscedastic shot/read noise on a Bayer mosaic, interpolated by the demosaicker:
spatially and cross-channel correlated. :func:`demosaic_residual_noise` simulates exactly that:
mosaic → shot/read noise (Brooks et al. 2019) → demosaic (bilinear or Malvar-He-Cutler 2004).
Images are ``(B, 3, H, W)`` float linear RGB in [0, 1]; raw mosaics ``(B, 1, H, W)``; H, W even.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from .checks import require_float_tensor, require_level
from .malvar_taps import MALVAR_TAPS

Pattern = Literal["RGGB", "GRBG", "GBRG", "BGGR"]
PATTERNS: tuple[Pattern, ...] = ("RGGB", "GRBG", "GBRG", "BGGR")
Method = Literal["bilinear", "malvar"]

_MALVAR = torch.tensor(MALVAR_TAPS) / 8.0  # Malvar-He-Cutler 2004 (malvar_taps.py)

_BILINEAR_RB = [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
_BILINEAR_G = [[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]
_BILINEAR = torch.tensor([[_BILINEAR_RB], [_BILINEAR_G], [_BILINEAR_RB]]) / 4.0  # (3, 1, 3, 3)


def random_noise_levels(batch: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Shot and read noise levels (Brooks et al. 2019, ``random_noise_levels``).

    log(shot) ~ U[log 1e-4, log 1.2e-2]; log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26).
    The noise variance of a raw value x in [0, 1] is ``shot * x + read``.

    Returns:
        ``shot (batch,)``, ``read (batch,)`` float32.
    """
    log_shot = math.log(1e-4) + (math.log(1.2e-2) - math.log(1e-4)) * torch.rand(batch, generator=generator)
    log_read = 2.18 * log_shot + 1.20 + 0.26 * torch.randn(batch, generator=generator)
    return log_shot.exp(), log_read.exp()


def random_gaussian_sigmas(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise std uniform in [0.5, 2] / 255 (the paper's setting). Returns ``(batch,)``."""
    return (0.5 + 1.5 * torch.rand(batch, generator=generator)) / 255.0


def _per_sample(v: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Scalar or ``(B,)`` → broadcastable ``(B, 1, ..., 1)``."""
    v = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    return v.reshape(-1, *([1] * (x.dim() - 1))) if v.dim() > 0 else v


def add_gaussian_noise(
    x: torch.Tensor, sigma: float | torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``x + sigma * N(0, 1)``, i.i.d. per pixel and channel.

    Args:
        x: ``(B, ...)`` float.
        sigma: scalar or ``(B,)`` std, in the units of ``x``.

    Returns:
        Noisy ``x`` (not clipped), same shape.
    """
    require_float_tensor("x", x)
    require_level("sigma", sigma)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x + _per_sample(sigma, x) * noise.to(x.device)


def _patterns(pattern: str | Sequence[str], batch: int) -> list[str]:
    pats = [pattern] * batch if isinstance(pattern, str) else list(pattern)
    bad = [p for p in pats if p not in PATTERNS]
    if bad or len(pats) != batch:
        raise ValueError(f"pattern must be one of {PATTERNS} or a list of {batch} of them, got {pattern!r}")
    return pats


def bayer_masks(pattern: str | Sequence[str], batch: int, height: int, width: int) -> torch.Tensor:
    """Colour masks of Bayer patterns: ``(B, 3, H, W)`` float32, one 1 per pixel.

    The pattern names the 2x2 cell read row-major from the top-left pixel (e.g. ``"GRBG"``).
    """
    cells = torch.zeros(len(PATTERNS), 3, 2, 2)
    for i, p in enumerate(PATTERNS):
        for j, c in enumerate(p):
            cells[i, "RGB".index(c), j // 2, j % 2] = 1.0
    idx = torch.tensor([PATTERNS.index(p) for p in _patterns(pattern, batch)])
    reps = (1, 1, (height + 1) // 2, (width + 1) // 2)
    return cells[idx].repeat(reps)[..., :height, :width]


def mosaic(x: torch.Tensor, pattern: str | Sequence[str]) -> torch.Tensor:
    """Sample an RGB image on a Bayer colour filter array.

    Args:
        x: ``(B, 3, H, W)`` float, linear RGB.
        pattern: one of ``RGGB, GRBG, GBRG, BGGR`` or a list of B of them.

    Returns:
        ``(B, 1, H, W)`` raw mosaic.
    """
    require_float_tensor("x", x)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be (B, 3, H, W), got {tuple(x.shape)}")
    masks = bayer_masks(pattern, x.shape[0], *x.shape[-2:]).to(x)
    return (x * masks).sum(dim=1, keepdim=True)


def _conv(raw: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Same-size correlation of ``(B, 1, H, W)`` with ``(F, k, k)`` symmetric filters, reflect padding.

    Reflect (not replicate) padding keeps the Bayer parity across the border.
    """
    p = filters.shape[-1] // 2
    return F.conv2d(F.pad(raw, (p, p, p, p), mode="reflect"), filters[:, None].to(raw))


def demosaic(raw: torch.Tensor, pattern: str | Sequence[str], method: Method = "bilinear") -> torch.Tensor:
    """Demosaic a Bayer raw with linear filters (torch convolutions, batched).

    Args:
        raw: ``(B, 1, H, W)`` float raw mosaic (linear), H, W >= 3 (>= 5 for ``"malvar"``).
        pattern: one of ``RGGB, GRBG, GBRG, BGGR`` or a list of B of them.
        method: ``"bilinear"`` or ``"malvar"`` (Malvar-He-Cutler 2004, gradient-corrected).

    Returns:
        ``(B, 3, H, W)`` linear RGB; measured samples are kept exactly.
    """
    require_float_tensor("raw", raw)
    if raw.dim() != 4 or raw.shape[1] != 1:
        raise ValueError(f"raw must be (B, 1, H, W), got {tuple(raw.shape)}")
    B, _, H, W = raw.shape
    m = bayer_masks(pattern, B, H, W).to(raw)
    r, g, b = m[:, 0:1], m[:, 1:2], m[:, 2:3]
    if method == "bilinear":
        # Each colour plane is interpolated from its own samples only (one grouped conv).
        planes = F.pad(raw * m, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(planes, _BILINEAR.to(raw), groups=3)
    if method != "malvar":
        raise ValueError(f"method must be 'bilinear' or 'malvar', got {method!r}")
    f = _conv(raw, _MALVAR)
    g_rb, at_g_row, at_g_col, at_br = f[:, 0:1], f[:, 1:2], f[:, 2:3], f[:, 3:4]
    # Rows/columns holding red (resp. blue) samples.
    r_row = r.amax(dim=-1, keepdim=True)
    b_row = b.amax(dim=-1, keepdim=True)
    b_col = b.amax(dim=-2, keepdim=True)
    green = raw * g + g_rb * (r + b)
    red = raw * r + g * (r_row * b_col * at_g_row + b_row * (1 - b_col) * at_g_col) + b * at_br
    blue = raw * b + g * (b_row * (1 - b_col) * at_g_row + r_row * b_col * at_g_col) + r * at_br
    return torch.cat([red, green, blue], dim=1)


def demosaic_residual_noise(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    shot: float | torch.Tensor | None = None,
    read: float | torch.Tensor | None = None,
    pattern: str | Sequence[str] | None = None,
    method: Method = "malvar",
) -> torch.Tensor:
    """Noisy demosaicked image as a real ISP stage receives it: mosaic → shot/read noise → demosaic.

    Args:
        x: ``(B, 3, H, W)`` float, clean linear (camera) RGB in [0, 1].
        generator: source of randomness.
        shot, read: noise levels, scalar or ``(B,)``; drawn with :func:`random_noise_levels` if None.
        pattern: Bayer pattern (or list of B); a random pattern per image if None.
        method: demosaicker, ``"malvar"`` or ``"bilinear"``.

    Returns:
        ``(B, 3, H, W)`` noisy demosaicked linear RGB (not clipped). ``result - x`` is the
        residual noise plus the demosaicking artefacts, correlated across pixels and channels.
    """
    require_float_tensor("x", x)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be (B, 3, H, W), got {tuple(x.shape)}")
    B = x.shape[0]
    if shot is None or read is None:
        s, r = random_noise_levels(B, generator)
        shot = s if shot is None else shot
        read = r if read is None else read
    require_level("shot", shot)
    require_level("read", read)
    if pattern is None:
        pattern = [PATTERNS[i] for i in torch.randint(4, (B,), generator=generator).tolist()]
    raw = mosaic(x, pattern)
    var = raw.clamp_min(0.0) * _per_sample(shot, raw) + _per_sample(read, raw)
    raw = raw + var.sqrt() * torch.randn(raw.shape, generator=generator, dtype=raw.dtype).to(raw.device)
    return demosaic(raw, pattern, method)
