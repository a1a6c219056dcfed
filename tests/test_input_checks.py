"""Bad inputs to the degradations and pixel functions get one clear error, not a silent wrong result.

Each case used to give a wrong answer without a word (integer images blurred black or clipped white, one
NaN spread over a whole channel by an FFT, a NaN kernel from sigma 0) or a traceback from inside torch.
"""

import numpy as np
import pytest
import torch

from isp_collab.data.sharpen import SharpenSampler
from isp_collab.data.sources import DeadLeaves
from isp_collab.physics import kernels as K
from isp_collab.physics import noise as N
from isp_collab.physics import unprocess as U
from isp_collab.physics.psf_field import apply_psf_field, convolve_psf, make_lens
from isp_collab.pipeline.demosaic import demosaic, normalize_mosaic
from isp_collab.pipeline.encode import encode_image
from isp_collab.pipeline.frame import Frame


def _with_nan(shape):
    x = torch.rand(*shape)
    x.view(-1)[5] = float("nan")
    return x


@pytest.mark.parametrize(
    "call",
    [
        lambda: K.blur_stacks((torch.rand(1, 1, 3, 40, 40) * 255).byte(), K.isotropic_gaussian_kernel(1.0)[None]),
        lambda: K.blur_image(torch.randint(0, 255, (1, 3, 40, 40)), K.isotropic_gaussian_kernel(1.0)[None]),
        lambda: N.mosaic(torch.randint(0, 255, (1, 3, 8, 8)), "RGGB"),
        lambda: N.demosaic(torch.randint(0, 255, (1, 1, 8, 8)), "RGGB"),
        lambda: N.add_gaussian_noise(torch.zeros(2, 3, dtype=torch.int64), 0.1),
        lambda: N.add_gaussian_noise(np.zeros((2, 3), np.float32), 0.1),
        lambda: U.unprocess((torch.rand(3, 8, 8) * 255).byte(), U.fixed_isp_params()),
        lambda: U.srgb_to_linear(np.array([0, 128, 255], np.uint8)),
        lambda: U.linear_to_srgb(torch.tensor([0, 128, 255])),
        lambda: convolve_psf((torch.rand(1, 3, 16, 16) * 255).byte(), torch.ones(3, 5, 5) / 25),
        lambda: encode_image((np.random.rand(8, 8, 3) * 255).astype(np.uint8), ".png"),
        lambda: demosaic((np.random.rand(8, 8) * 4095).astype(np.uint16), "RGGB", "opencv_ea"),
        lambda: demosaic(torch.rand(8, 8).numpy().astype(np.int32), "RGGB", "malvar"),
    ],
)
def test_integer_pixels_are_refused(call):
    with pytest.raises(TypeError, match="float|must be a torch.Tensor"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: K.blur_image(_with_nan((1, 3, 40, 40)), K.isotropic_gaussian_kernel(1.0)[None]),  # FFT path
        lambda: convolve_psf(_with_nan((1, 3, 16, 16)), torch.ones(3, 5, 5) / 25, "reflect"),
        lambda: apply_psf_field(_with_nan((3, 48, 64)), make_lens("lens-a", (48, 64))),
        lambda: N.demosaic_residual_noise(_with_nan((1, 3, 8, 8)), torch.Generator().manual_seed(0)),
        lambda: U.process(_with_nan((3, 8, 8)), U.fixed_isp_params()),
    ],
)
def test_nan_pixels_are_refused(call):
    with pytest.raises(ValueError, match="NaN"):
        call()


def test_nan_or_inf_is_refused_by_the_encoder_and_demosaicker():
    x = np.random.rand(8, 8, 3).astype(np.float32)
    x[0, 0] = np.nan  # was written as a black pixel with only numpy's cast warning
    with pytest.raises(ValueError, match="NaN"):
        encode_image(x, ".png")
    m = np.random.rand(8, 8).astype(np.float32)
    m[3, 3] = np.inf
    with pytest.raises(ValueError, match="NaN"):
        demosaic(m, "RGGB", "bilinear")


@pytest.mark.parametrize("quality", [500, -3, 9.5, True])
def test_jpeg_quality_outside_0_100_is_refused(quality):
    with pytest.raises(ValueError, match="jpeg_quality"):
        encode_image(np.zeros((8, 8, 3), np.float32), ".jpg", jpeg_quality=quality)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_gaussian_sigma_must_be_finite_and_positive(sigma):
    with pytest.raises(ValueError, match="sigma_x must be finite and > 0"):
        K.isotropic_gaussian_kernel(sigma, 5)  # 0 gave an all-NaN kernel, -1 silently sigma 1


def test_gaussian_theta_must_be_finite():
    with pytest.raises(ValueError, match="theta"):
        K.gaussian_kernel(1.0, 2.0, float("nan"), 5)


@pytest.mark.parametrize("bad", [(0.0, 0.0), (-1.0, 0.5), (4.0, 0.3), (0.3, float("nan")), (1.0,)])
def test_sigma_range_is_checked_by_the_sampler_and_the_draw(bad):
    with pytest.raises(ValueError, match="sigma_range"):
        SharpenSampler(DeadLeaves(), 2, patch=16, sigma_range=bad)
    with pytest.raises(ValueError, match="sigma_range"):
        K.sample_gaussian_params(2, sigma_range=bad)


def test_a_kernel_too_small_for_the_widest_blur_warns():
    with pytest.warns(UserWarning, match="kernel_size 9 cuts Gaussians of sigma up to 4 px"):
        SharpenSampler(DeadLeaves(), 2, patch=16, kernel_size=9)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SharpenSampler(DeadLeaves(), 2, patch=16, kernel_size=25)  # 6 sigma + 1: no warning


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: N.add_gaussian_noise(torch.rand(2, 3), float("nan")), "sigma must be finite and >= 0"),
        (lambda: N.add_gaussian_noise(torch.rand(2, 3), -0.1), "sigma must be finite and >= 0"),
        (lambda: N.demosaic_residual_noise(torch.rand(1, 3, 8, 8), shot=-1.0, read=1e-3), "shot"),
        (lambda: N.demosaic_residual_noise(torch.rand(1, 3, 8, 8), shot=1e-3, read=float("inf")), "read"),
    ],
)
def test_noise_levels_must_be_finite_and_non_negative(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_non_square_kernels_are_refused():
    x = torch.rand(1, 1, 3, 64, 64)
    with pytest.raises(ValueError, match="square and odd"):
        K.blur_stacks(x, torch.ones(1, 4, 5) / 20, "reflect")  # gave (1, 1, 3, 65, 64)
    with pytest.raises(ValueError, match="square and odd"):
        K.blur_stacks(x, torch.ones(1, 5, 3) / 15)
    with pytest.raises(ValueError, match="k odd"):
        convolve_psf(torch.rand(1, 3, 16, 16), torch.ones(3, 5, 3) / 15)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: N.mosaic(torch.rand(0, 3, 16, 16), "RGGB"), "empty"),
        (lambda: K.blur_stacks(torch.rand(0, 1, 3, 8, 8), torch.ones(0, 3, 3)), "empty"),
        (lambda: DeadLeaves().render(0, 0), "size"),
        (lambda: DeadLeaves(r_min=0), "r_min"),
        (lambda: DeadLeaves().random_crops(32, 0), "count"),
        (lambda: SharpenSampler(DeadLeaves(), 2, patch=16, kernel_size=25).sample(0), "batch"),
        (lambda: K.sample_gaussian_kernels(-1), "batch"),
        (lambda: encode_image(np.zeros((0, 0, 3), np.float32), ".png"), "non-empty"),
    ],
)
def test_empty_inputs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _frame(**changes) -> Frame:
    base = Frame(
        source=None,
        kind="raw",
        height=8,
        width=8,
        bit_depth=10,
        cfa_pattern="RGGB",
        black_level=(64.0,) * 4,
        white_level=1023.0,
    )
    return base.replace(**changes) if changes else base


@pytest.mark.parametrize(
    "frame, match",
    [
        (dict(white_level=64.0), "white_level 64.0 must be above"),
        (dict(white_level=10.0), "white_level 10.0 must be above"),
        (dict(black_level=(1.0, 2.0, 3.0)), "4 values"),
    ],
)
def test_normalize_mosaic_refuses_impossible_levels(frame, match):
    raw = np.full((8, 8), 500, np.uint16)
    with pytest.raises(ValueError, match=match):
        normalize_mosaic(raw, _frame(**frame))  # was all 1.0 / all 0.0 / a reshape error


def test_normalize_mosaic_refuses_a_tensor():
    with pytest.raises(TypeError, match="numpy"):
        normalize_mosaic(torch.zeros(8, 8), _frame())


def test_valid_inputs_still_work():
    """The checks refuse only what is wrong: float images, zero noise and a python float pass."""
    x = torch.rand(1, 3, 40, 40)
    assert K.blur_image(x, K.isotropic_gaussian_kernel(1.0)[None]).shape == x.shape
    assert torch.equal(N.add_gaussian_noise(x, 0.0), x)
    assert float(U.srgb_to_linear(0.5)) == pytest.approx(0.21404, abs=1e-5)
    assert normalize_mosaic(np.full((8, 8), 1023, np.uint16), _frame()).max() == 1.0
    assert encode_image(np.zeros((8, 8, 3), np.float64), ".png")[:4] == b"\x89PNG"


def test_jpeg_keeps_full_resolution_colour_unless_asked():
    """4:2:0 (OpenCV's default) halved the colour resolution: 1-px colour stripes were lost."""
    import cv2

    from isp_collab.pipeline.encode import Encode

    stripes = np.zeros((32, 32, 3), np.float32)
    stripes[:, ::2, 0] = 1.0  # red / black columns one pixel wide

    def error(data: bytes) -> float:
        return float(np.abs(cv2.imdecode(np.frombuffer(data, np.uint8), 1)[..., ::-1] / 255 - stripes).mean())

    assert error(encode_image(stripes, ".jpg")) < 0.01
    assert error(encode_image(stripes, ".jpg", jpeg_chroma="420")) > 0.1
    with pytest.raises(ValueError, match="jpeg_chroma must be one of 444, 422, 420"):
        encode_image(stripes, ".jpg", jpeg_chroma="411")
    with pytest.raises(ValueError, match="output.jpeg_chroma"):
        Encode(jpeg_chroma="4:2:0")
