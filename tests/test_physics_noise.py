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


# --- Contracts found untested by mutation testing -------------------------------------------------


def test_read_noise_follows_brooks_log_linear_model():
    """log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26) (Brooks et al. 2019): a least-squares fit of
    20000 draws recovers slope, intercept and residual std (standard errors < 0.01)."""
    shot, read = random_noise_levels(20000, torch.Generator().manual_seed(3))
    ls, lr = shot.double().log(), read.double().log()
    slope = ((ls - ls.mean()) * (lr - lr.mean())).sum() / ((ls - ls.mean()) ** 2).sum()
    intercept = lr.mean() - slope * ls.mean()
    residual = lr - (slope * ls + intercept)
    assert abs(slope.item() - 2.18) < 0.03
    assert abs(intercept.item() - 1.20) < 0.1
    assert abs(residual.std().item() - 0.26) < 0.01
    # log(shot) uniform on [log 1e-4, log 1.2e-2]: its mean is the middle of the range.
    assert abs(ls.mean().item() - (math.log(1e-4) + math.log(1.2e-2)) / 2) < 0.05


def test_gaussian_noise_std_is_sigma_per_sample():
    x = torch.full((3, 3, 64, 64), 0.5)
    sigma = torch.tensor([0.01, 0.05, 0.1])
    noise = add_gaussian_noise(x, sigma, torch.Generator().manual_seed(4)) - x
    # 12288 samples per image: the std estimate is within 2% (relative standard error 0.6%).
    torch.testing.assert_close(noise.flatten(1).std(dim=1), sigma, rtol=0.02, atol=0)
    assert (noise.flatten(1).mean(dim=1).abs() < 0.05 * sigma).all()  # zero mean: 5.5 standard errors


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_bayer_masks_of_odd_sizes_tile_the_2x2_cell(pattern):
    m = bayer_masks(pattern, 2, 5, 7)
    assert m.shape == (2, 3, 5, 7)
    assert torch.equal(m.sum(dim=1), torch.ones(2, 5, 7))  # one colour per pixel
    cell = m[..., :2, :2]
    assert torch.equal(m, cell.repeat(1, 1, 3, 4)[..., :5, :7])  # the top-left cell repeated
    assert "".join("RGB"[int(c.argmax())] for c in cell[0].flatten(1).T) == pattern


def test_mosaic_and_demosaic_refuse_wrong_channel_counts():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        mosaic(torch.zeros(1, 4, 8, 8), "RGGB")
    with pytest.raises(ValueError, match="B, 1, H, W"):
        demosaic(torch.zeros(1, 3, 8, 8), "RGGB")


def test_a_given_noise_level_is_used_and_only_the_missing_one_is_drawn():
    """shot given, read None: read is the one random_noise_levels draws first from the generator."""
    x = torch.full((2, 3, 8, 8), 0.3)
    shot = torch.tensor([1e-3, 2e-3])
    got = demosaic_residual_noise(x, torch.Generator().manual_seed(5), shot=shot, pattern="RGGB")
    g = torch.Generator().manual_seed(5)
    drawn_shot, drawn_read = random_noise_levels(2, g)
    assert not torch.allclose(drawn_shot, shot)  # so a mutant using the drawn shot would differ
    torch.testing.assert_close(got, demosaic_residual_noise(x, g, shot=shot, read=drawn_read, pattern="RGGB"))
    got = demosaic_residual_noise(x, torch.Generator().manual_seed(5), read=drawn_read, pattern="RGGB")
    g = torch.Generator().manual_seed(5)
    torch.testing.assert_close(
        got, demosaic_residual_noise(x, g, shot=random_noise_levels(2, g)[0], read=drawn_read, pattern="RGGB")
    )


@pytest.mark.parametrize("level,shot,read", [(0.0, 0.0, 1e-3), (0.05, 4e-3, 0.0), (-0.2, 4e-3, 1e-4)])
def test_raw_noise_variance_is_shot_times_clipped_signal_plus_read(level, shot, read):
    """Variance at measured (red) sites: shot * max(x, 0) + read; a negative signal adds no shot noise."""
    x = torch.full((8, 3, 32, 32), level)
    noisy = demosaic_residual_noise(
        x, torch.Generator().manual_seed(6), shot=shot, read=read, pattern="RGGB", method="bilinear"
    )
    assert torch.isfinite(noisy).all()
    red_sites = (noisy - x)[:, 0, ::2, ::2]  # 2048 samples: relative std error of the variance 3%
    assert math.isclose(red_sites.var().item(), shot * max(level, 0.0) + read, rel_tol=0.15)
