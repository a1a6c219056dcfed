"""PSF fields: interpolation at and beyond the node grid, off-centre field heights, convolve_psf's refusals."""

import math

import pytest
import torch

from isp_collab.physics.psf_field import PSFField, apply_psf_field, convolve_psf, make_lens, psf_at

SIZE = (24, 36)  # (H, W): nodes at the corners, so pixel (0, 0) is node (0, 0)


def _field(grid=(3, 4)) -> PSFField:
    return make_lens("lens-b", image_size=SIZE, grid=grid, ksize=5)


def test_psf_at_the_first_and_last_nodes_and_beyond_them_is_that_nodes_psf():
    f = _field()
    assert f.grid == (3, 4) and f.ksize == 5
    (h, w), k = SIZE, f.kernels
    for x, y, node in ((0.0, 0.0, (0, 0)), (-7.0, -3.0, (0, 0)), (w - 1.0, h - 1.0, (-1, -1)), (99.0, 99.0, (-1, -1))):
        assert torch.allclose(psf_at(f, x, y), k[node], atol=1e-6), (x, y)
    # a quarter of the way from the first to the second node column: weights 3/4 and 1/4
    x1 = float(f.node_x[1])
    assert torch.allclose(psf_at(f, x1 / 4, 0.0), 0.75 * k[0, 0] + 0.25 * k[0, 1], atol=1e-6)


def test_a_single_node_field_is_the_same_psf_everywhere():
    f = _field(grid=(1, 1))
    for x, y in ((0.0, 0.0), (17.5, 11.5), (35.0, 23.0)):
        assert torch.allclose(psf_at(f, x, y), f.kernels[0, 0], atol=1e-7)


def test_field_height_is_one_at_the_corner_farthest_from_an_off_centre_optical_centre():
    f = _field()
    (h, w) = SIZE
    off = PSFField(f.positions, SIZE, f.kernels, center=(5.0, 20.0))
    assert off.field_radius(5.0, 20.0) == 0
    assert math.isclose(off.field_radius(w - 1, 0).item(), 1.0)  # farthest corner: top right
    assert off.field_radius(0, h - 1) < 1  # the nearest corner is less
    assert math.isclose(f.field_radius(0, 0).item(), 1.0)  # centred: every corner is 1


def test_make_lens_refuses_an_even_or_empty_kernel_and_names_a_design():
    for ksize in (0, 4):
        with pytest.raises(ValueError, match="ksize"):
            make_lens("lens-a", image_size=SIZE, grid=(1, 1), ksize=ksize)
    assert _field().name == "lens-b"


def test_convolve_psf_needs_rgb_images_odd_square_psfs_and_images_at_least_the_psf():
    img, psf = torch.rand(1, 3, 9, 9), torch.full((3, 5, 5), 1 / 25)
    out = convolve_psf(img[..., :5, :5], psf)  # exactly the PSF's size: one valid pixel, the mean
    assert out.shape == (1, 3, 1, 1) and torch.allclose(out[..., 0, 0], img[..., :5, :5].mean(dim=(-2, -1)), atol=1e-6)
    for bad_img, bad_psf, match in (
        (torch.rand(1, 1, 9, 9), psf, "images must"),
        (img, torch.full((3, 4, 4), 1 / 16), "k odd"),
        (img, torch.full((3, 5, 3), 1 / 15), "k odd"),
        (img[..., :4, :], psf, "smaller"),
        (img[..., :, :4], psf, "smaller"),
    ):
        with pytest.raises(ValueError, match=match):
            convolve_psf(bad_img, bad_psf)


def test_field_height_normalisation_for_other_centres_and_a_one_pixel_image():
    f = _field()
    (h, w) = SIZE
    off = PSFField(f.positions, SIZE, f.kernels, center=(30.0, 3.0))
    assert math.isclose(off.field_radius(0, h - 1).item(), 1.0)  # farthest corner: bottom left
    one = make_lens("lens-b", image_size=(1, 1), grid=(1, 1), ksize=1)
    assert one.field_radius(0, 0) == 0 and torch.equal(one.kernels, torch.ones(1, 1, 3, 1, 1))


def test_a_one_row_field_interpolates_along_its_row_only():
    f = _field(grid=(1, 4))
    for j in range(4):
        assert torch.allclose(psf_at(f, float(f.node_x[j]), 5.0), f.kernels[0, j], atol=1e-6)


def test_apply_scales_a_field_made_for_another_size_and_refuses_tiny_images():
    f = _field()  # made for 24 x 36
    img = torch.rand(3, 48, 72, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(apply_psf_field(img, f), apply_psf_field(img, f.resized((48, 72))), atol=1e-6)
    with pytest.raises(ValueError, match="too small"):
        apply_psf_field(torch.rand(3, 2, 36), f)  # k = 5: 2 rows cannot be reflect-padded by 2
    with pytest.raises(ValueError, match="too small"):
        apply_psf_field(torch.rand(3, 24, 2), f)


def test_identity_kernels_give_the_image_back_with_nodes_beyond_the_frame():
    """1x1 kernels of 1: the bilinear weights sum to 1 at every pixel; a node at x (or y) = -10 weighs nothing on
    the image (its neighbour sits on the border), which apply must skip rather than index."""
    img = torch.rand(3, *SIZE, generator=torch.Generator().manual_seed(1))
    for xs, ys in (([-10.0, 0.0, 35.0], [0.0, 23.0]), ([0.0, 35.0], [-10.0, 0.0, 23.0])):
        pos = torch.stack(torch.meshgrid(torch.tensor(xs), torch.tensor(ys), indexing="xy"), -1)
        f = PSFField(pos, SIZE, torch.ones(len(ys), len(xs), 3, 1, 1))
        assert torch.allclose(apply_psf_field(img, f), img, atol=1e-6)


def test_a_calibration_file_is_normalised_per_kernel_channel_and_an_all_zero_channel_refused(tmp_path):
    import numpy as np

    from isp_collab.physics.psf_field import load_calibration

    f = _field()
    kernels = f.kernels.numpy() * np.arange(1, 4, dtype=np.float32)[:, None, None]  # channel sums 1, 2, 3
    path = tmp_path / "lens.npz"
    np.savez(path, positions=f.positions.numpy(), image_size=np.array(SIZE), kernels=kernels)
    assert torch.allclose(load_calibration(path).kernels, f.kernels, atol=1e-6)
    kernels[1, 2, 1] = 0.0
    np.savez(path, positions=f.positions.numpy(), image_size=np.array(SIZE), kernels=kernels)
    with pytest.raises(ValueError, match="all zero"):
        load_calibration(path)
