"""Unprocessing (Brooks et al. 2019) and the sRGB curve."""

import numpy as np
import pytest
import torch

from isp_collab.physics.unprocess import (
    fixed_isp_params,
    linear_to_srgb,
    process,
    random_isp_params,
    srgb_to_linear,
    unprocess,
)


def _moderate_image(seed: int) -> torch.Tensor:
    """Mildly saturated colours in [0.1, 0.8]: no channel is clipped by the CCM or the gains."""
    g = torch.Generator().manual_seed(seed)
    x = 0.1 + 0.7 * torch.rand(2, 3, 12, 12, generator=g)
    return 0.6 * x + 0.4 * x.mean(dim=-3, keepdim=True)


@pytest.mark.parametrize("seed", range(4))
def test_round_trip_srgb_linear_srgb(seed):
    params = random_isp_params(torch.Generator().manual_seed(seed))
    x = _moderate_image(seed)
    linear = unprocess(x, params)
    assert linear.shape == x.shape and linear.min() >= 0 and linear.max() <= 1
    torch.testing.assert_close(process(linear, params), x, atol=1e-4, rtol=0)


def test_params_are_a_valid_camera():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        p = random_isp_params(g)
        torch.testing.assert_close(p.rgb2cam.sum(dim=-1), torch.ones(3))
        torch.testing.assert_close(p.rgb2cam @ p.cam2rgb, torch.eye(3), atol=1e-5, rtol=0)
        assert 1.9 <= p.red_gain <= 2.4 and 1.5 <= p.blue_gain <= 1.9 and p.rgb_gain > 0
    p = fixed_isp_params()  # the benchmark protocol's camera: a valid one, with the documented gains
    torch.testing.assert_close(p.rgb2cam.sum(dim=-1), torch.ones(3))
    torch.testing.assert_close(p.rgb2cam @ p.cam2rgb, torch.eye(3), atol=1e-5, rtol=0)
    assert (p.red_gain, p.blue_gain) == (2.15, 1.7) and p.rgb_gain == pytest.approx(1 / 0.8)


def test_white_stays_white():
    """The safe gain inversion keeps saturated highlights neutral after processing."""
    p = fixed_isp_params()
    white = torch.ones(1, 3, 4, 4)
    torch.testing.assert_close(process(unprocess(white, p), p), white, atol=1e-3, rtol=0)


def test_leading_dims_broadcast():
    p = fixed_isp_params()
    x = _moderate_image(1)[None].expand(3, -1, -1, -1, -1)  # (3, 2, 3, H, W)
    torch.testing.assert_close(unprocess(x, p)[1], unprocess(x[1], p))
    with pytest.raises(ValueError, match="3, H, W"):
        unprocess(torch.zeros(2, 4, 4), p)


def test_srgb_curve_numpy_and_torch():
    a = np.linspace(0, 1, 101, dtype=np.float32)
    lin = srgb_to_linear(a)
    assert isinstance(lin, np.ndarray) and lin.dtype == np.float32
    np.testing.assert_allclose(linear_to_srgb(lin), a, atol=1e-6)
    t = torch.from_numpy(a)
    torch.testing.assert_close(srgb_to_linear(t), torch.from_numpy(lin))
    assert abs(float(srgb_to_linear(np.float32(0.5))) - 0.21404) < 1e-4  # IEC 61966-2-1
