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


# --- Contracts found untested by mutation testing -------------------------------------------------


@pytest.mark.parametrize("size", [0, -1, 4])
def test_gaussian_kernel_refuses_even_or_empty_support(size):
    # An even support has no centre pixel: the kernel would shift the image by half a pixel.
    with pytest.raises(ValueError, match="odd and positive"):
        gaussian_kernel(1.0, 1.0, 0.0, size)


def test_smallest_support_is_one_pixel_and_patch_may_equal_the_kernel():
    assert torch.equal(gaussian_kernel(2.0, 1.0, 0.3, 1), torch.ones(1, 1))  # 1x1: the identity blur
    x = torch.rand(1, 2, 3, 5, 5, generator=torch.Generator().manual_seed(7))
    k = torch.full((1, 5, 5), 1 / 25)
    y = blur_stacks(x, k, padding="valid")  # one valid output pixel: the patch mean
    assert y.shape == (1, 2, 3, 1, 1)
    torch.testing.assert_close(y[..., 0, 0], x.mean(dim=(-2, -1)))


def test_gaussian_kernel_refuses_zero_sigma_and_non_finite_angle():
    with pytest.raises(ValueError, match="sigma_x"):
        gaussian_kernel(0.0, 1.0, 0.0, 5)
    with pytest.raises(ValueError, match="sigma_y"):
        gaussian_kernel(1.0, 0.0, 0.0, 5)
    with pytest.raises(ValueError, match="theta"):
        gaussian_kernel(torch.ones(2), torch.ones(2), torch.tensor([0.0, math.nan]), 5)


def test_gaussian_kernel_broadcasts_one_batched_argument_over_scalars():
    sx = torch.tensor([1.0, 2.0])
    k = gaussian_kernel(sx, 1.5, 0.3, 9)
    assert k.shape == (2, 9, 9)
    for i, s in enumerate(sx.tolist()):
        torch.testing.assert_close(k[i], gaussian_kernel(s, 1.5, 0.3, 9))
    # 0-dim tensors are scalars.
    assert gaussian_kernel(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(0.0), 9).shape == (9, 9)


def test_default_support_is_the_papers_33():
    # Paper §5.2: 33x33 support.
    assert gaussian_kernel(1.0, 1.0, 0.0).shape == (33, 33)
    assert sample_gaussian_kernels(2, torch.Generator().manual_seed(0)).shape == (2, 33, 33)


def test_sampled_kernels_are_the_kernels_of_the_sampled_parameters():
    """sample_gaussian_kernels = gaussian_kernel(sampled σx, σy, θ), with the same defaults (paper range)."""
    k = sample_gaussian_kernels(6, torch.Generator().manual_seed(4), size=15)
    sigmas, theta = sample_gaussian_params(6, torch.Generator().manual_seed(4))
    torch.testing.assert_close(k, gaussian_kernel(sigmas[:, 0], sigmas[:, 1], theta, 15))


@pytest.mark.parametrize("sigma_range", [(0.3, 4.0), (1.0, 1.5)])
def test_sampled_parameters_fill_their_ranges(sigma_range):
    """σ uniform on the whole range, θ uniform on [0, 2π): 4000 draws reach within 1% of every end."""
    lo, hi = sigma_range
    if sigma_range == (0.3, 4.0):
        sigmas, theta = sample_gaussian_params(4000, torch.Generator().manual_seed(5))  # the default range
    else:
        sigmas, theta = sample_gaussian_params(4000, torch.Generator().manual_seed(5), sigma_range)
    assert sigmas.shape == (4000, 2) and theta.shape == (4000,)
    tol = 0.01 * (hi - lo)
    for col in (sigmas[:, 0], sigmas[:, 1]):
        assert lo <= col.min() < lo + tol and hi - tol < col.max() <= hi
    assert 0 <= theta.min() < 0.01 * 2 * math.pi and 0.99 * 2 * math.pi < theta.max() < 2 * math.pi


def test_sample_batch_must_be_a_whole_number():
    sigmas, theta = sample_gaussian_params(0)
    assert sigmas.shape == (0, 2) and theta.shape == (0,)
    for batch in (-1, 1.5):
        with pytest.raises(ValueError, match="batch"):
            sample_gaussian_params(batch)


def test_blur_stacks_refuses_even_kernels_and_patches_smaller_than_the_kernel():
    with pytest.raises(ValueError, match="odd"):
        blur_stacks(torch.zeros(1, 1, 3, 8, 8), torch.ones(1, 4, 4) / 16)
    for h, w in ((4, 8), (8, 4)):
        with pytest.raises(ValueError, match="smaller than the kernel"):
            blur_stacks(torch.zeros(1, 1, 3, h, w), torch.ones(1, 5, 5) / 25)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        blur_image(torch.zeros(3, 8, 8), torch.ones(1, 3, 3) / 9)


def test_blur_stacks_reflect_keeps_stacks_and_batches_apart():
    """B = 2, N = 2: every patch is blurred by its own stack's kernel, reflect-padded on its own."""
    g = torch.Generator().manual_seed(6)
    x = torch.rand(2, 2, 3, 9, 10, generator=g)
    k = torch.rand(2, 3, 3, generator=g)
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    y = blur_stacks(x, k, padding="reflect")
    assert y.shape == x.shape
    for b in range(2):
        padded = F.pad(x[b], (1, 1, 1, 1), mode="reflect")
        torch.testing.assert_close(y[b], _reference_valid(padded, k[b]), atol=1e-5, rtol=1e-4)
