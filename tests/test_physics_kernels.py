"""Gaussian kernels and stack blurring."""

import math

import pytest
import torch
import torch.nn.functional as F

from isp_collab.physics.kernels import (
    blur_image,
    blur_stacks,
    gaussian_kernel,
    isotropic_gaussian_kernel,
    sample_gaussian_kernels,
    sample_gaussian_params,
)


def _moments(k: torch.Tensor) -> torch.Tensor:
    """Covariance matrix [[xx, xy], [xy, yy]] of a (k, k) kernel, x = columns, y = rows."""
    r = torch.arange(k.shape[-1], dtype=torch.float64) - k.shape[-1] // 2
    y, x = r[:, None], r[None, :]
    k = k.double()
    mx, my = (k * x).sum(), (k * y).sum()
    xx = (k * (x - mx) ** 2).sum()
    yy = (k * (y - my) ** 2).sum()
    xy = (k * (x - mx) * (y - my)).sum()
    return torch.stack([torch.stack([xx, xy]), torch.stack([xy, yy])])


@pytest.mark.parametrize("sx,sy,theta", [(1.0, 1.0, 0.0), (2.5, 1.0, 0.4), (3.0, 1.5, 2.0), (1.2, 3.5, 5.5)])
def test_kernel_second_moments_match_sigma(sx, sy, theta):
    k = gaussian_kernel(sx, sy, theta, size=33)
    assert k.shape == (33, 33) and k.dtype == torch.float32
    assert abs(k.sum().item() - 1) < 1e-5 and k.min() >= 0
    R = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=torch.float64)
    expected = R @ torch.diag(torch.tensor([sx**2, sy**2], dtype=torch.float64)) @ R.T
    torch.testing.assert_close(_moments(k), expected, atol=2e-2, rtol=1e-2)


def test_sampled_kernels_are_normalised_and_in_range():
    g = torch.Generator().manual_seed(0)
    k = sample_gaussian_kernels(16, g, size=33)
    assert k.shape == (16, 33, 33)
    torch.testing.assert_close(k.sum(dim=(-2, -1)), torch.ones(16))
    sigmas, theta = sample_gaussian_params(1000, torch.Generator().manual_seed(1))
    assert sigmas.min() >= 0.3 and sigmas.max() <= 4.0 and theta.min() >= 0 and theta.max() < 2 * math.pi
    again = sample_gaussian_kernels(16, torch.Generator().manual_seed(0), size=33)
    assert torch.equal(k, again)


def test_isotropic_kernel_is_symmetric():
    k = isotropic_gaussian_kernel(2.0, size=17)
    torch.testing.assert_close(k, k.T)
    torch.testing.assert_close(k, k.flip(0))
    torch.testing.assert_close(k, gaussian_kernel(2.0, 2.0, 1.0, 17))


def _reference_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per-patch true convolution with conv2d, for (N, C, H, W) and one (k, k) kernel."""
    C = x.shape[1]
    return F.conv2d(x, k.flip(-2, -1)[None, None].expand(C, 1, -1, -1), groups=C)


@pytest.mark.parametrize("size", [5, 33])  # direct and FFT paths
def test_blur_stacks_valid_shares_the_kernel(size):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 3, size + 7, size + 9, generator=g)
    # Asymmetric kernels so a missing flip would show.
    k = torch.rand(2, size, size, generator=g)
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    y = blur_stacks(x, k, padding="valid")
    assert y.shape == (2, 3, 3, 8, 10)
    for b in range(2):
        torch.testing.assert_close(y[b], _reference_valid(x[b], k[b]), atol=1e-5, rtol=1e-4)


def test_blur_stacks_per_channel_kernels_and_reflect():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 2, 3, 20, 20, generator=g)
    delta = torch.zeros(1, 3, 5, 5)
    delta[..., 2, 2] = 1
    torch.testing.assert_close(blur_stacks(x, delta, padding="reflect"), x)
    shifted = torch.zeros(1, 3, 5, 5)
    shifted[..., 2, 3] = 1  # true convolution moves content one pixel to the right
    y = blur_stacks(x, shifted, padding="valid")
    torch.testing.assert_close(y[..., :, 1:], x[..., 2:-2, 2:-3])
    img = blur_image(x[:, 0], isotropic_gaussian_kernel(1.0, 7)[None])
    assert img.shape == (1, 3, 20, 20)


def test_blur_stacks_rejects_bad_shapes():
    with pytest.raises(ValueError, match="B, N, C, H, W"):
        blur_stacks(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="kernels must be"):
        blur_stacks(torch.zeros(2, 1, 3, 8, 8), torch.zeros(1, 3, 3))
