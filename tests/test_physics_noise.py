"""Noise models, Bayer mosaic and demosaicking."""

import math

import pytest
import torch

from isp_collab.physics.noise import (
    PATTERNS,
    add_gaussian_noise,
    bayer_masks,
    demosaic,
    demosaic_residual_noise,
    mosaic,
    random_gaussian_sigmas,
    random_noise_levels,
)


def _ramp(h: int = 16, w: int = 20) -> torch.Tensor:
    """(1, 3, h, w) linear colour ramps, different per channel."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([0.1 + 0.01 * x + 0.02 * y, 0.3 + 0.015 * x - 0.01 * y, 0.5 - 0.01 * x + 0.005 * y])[None]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("method", ["bilinear", "malvar"])
def test_mosaic_demosaic_consistency(pattern, method):
    x = _ramp()
    raw = mosaic(x, pattern)
    assert raw.shape == (1, 1, 16, 20)
    m = bayer_masks(pattern, 1, 16, 20)
    assert torch.equal(m.sum(1), torch.ones(1, 16, 20))
    assert m[0, "RGB".index(pattern[0]), 0, 0] == 1 and m[0, "RGB".index(pattern[3]), 1, 1] == 1
    rgb = demosaic(raw, pattern, method)
    assert rgb.shape == (1, 3, 16, 20)
    torch.testing.assert_close(mosaic(rgb, pattern), raw)  # measured samples are kept
    # Both linear demosaickers are exact on linear ramps away from the border.
    torch.testing.assert_close(rgb[..., 3:-3, 3:-3], x[..., 3:-3, 3:-3], atol=1e-5, rtol=0)


def test_per_image_patterns():
    x = _ramp().expand(4, -1, -1, -1)
    raw = mosaic(x, list(PATTERNS))
    for i, p in enumerate(PATTERNS):
        torch.testing.assert_close(raw[i], mosaic(x[i : i + 1], p)[0])
    with pytest.raises(ValueError, match="pattern"):
        mosaic(x, "RGBG")


def _neighbour_correlation(r: torch.Tensor) -> float:
    """Mean correlation of horizontally adjacent residual values, over channels."""
    a, b = r[..., :, :-1].flatten(), r[..., :, 1:].flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / (a.std() * b.std()))


def test_demosaic_residual_noise_is_spatially_correlated_gaussian_is_not():
    g = torch.Generator().manual_seed(0)
    flat = torch.full((4, 3, 32, 32), 0.3)
    noisy = demosaic_residual_noise(flat, g, shot=1e-3, read=1e-4)
    assert noisy.shape == flat.shape
    assert _neighbour_correlation(noisy - flat) > 0.2
    iid = add_gaussian_noise(flat, 2 / 255, g) - flat
    assert abs(_neighbour_correlation(iid)) < 0.05


def test_shot_read_variance_at_measured_sites():
    g = torch.Generator().manual_seed(1)
    flat = torch.full((8, 3, 32, 32), 0.4)
    shot, read = 4e-3, 1e-4
    noisy = demosaic_residual_noise(flat, g, shot=shot, read=read, pattern="RGGB", method="bilinear")
    red_sites = (noisy - flat)[:, 0, ::2, ::2]
    assert math.isclose(red_sites.var().item(), shot * 0.4 + read, rel_tol=0.15)


def test_noise_level_ranges():
    g = torch.Generator().manual_seed(2)
    shot, read = random_noise_levels(1000, g)
    assert shot.min() >= 1e-4 and shot.max() <= 1.2e-2 and (read > 0).all()
    s = random_gaussian_sigmas(1000, g)
    assert s.min() >= 0.5 / 255 and s.max() <= 2 / 255
    x = torch.zeros(2, 3, 4, 4)
    y = add_gaussian_noise(x, torch.tensor([0.0, 1.0]), g)
    assert torch.equal(y[0], x[0]) and y[1].abs().sum() > 0
