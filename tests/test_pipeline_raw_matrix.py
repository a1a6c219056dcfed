"""The camera->sRGB matrix of a RAW file that holds none: LibRaw's own, fitted from its renderings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import isp_collab.pipeline.raw as raw_module
from isp_collab.pipeline import RawDecode
from isp_collab.pipeline.raw import fit_cam_to_srgb, libraw_cam_to_srgb

BUNDLED = Path(__file__).resolve().parents[1] / "isp_collab" / "assets" / "blackmagic_pocket4k.dng"
KDC = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw" / "kodak_dc50.kdc"
M = np.array([[1.8125, -0.3365, -0.476], [-0.435, 1.852, -0.417], [-0.676, -1.393, 3.069]])


def _render(cam: np.ndarray, m: np.ndarray) -> np.ndarray:
    """What LibRaw does to camera RGB for sRGB output: the matrix, truncation, clipping to 16 bits."""
    return np.clip(np.einsum("ij,hwj->hwi", m, cam.astype(np.float64)), 0, 65535).astype(np.uint16)


def test_fit_recovers_the_matrix():
    rng = np.random.default_rng(0)
    cam = rng.uniform(0.0, 0.99 * 65535, (200, 300, 3)).astype(np.uint16)  # many pixels clip: left out
    np.testing.assert_allclose(fit_cam_to_srgb(cam, _render(cam, M)), M, atol=1e-4)


def test_fit_refuses_a_scene_of_one_colour():
    """Near-grey samples cannot separate the channels: ill-conditioned, no matrix."""
    rng = np.random.default_rng(1)
    level = rng.uniform(2000, 20000, (100, 100, 1))
    cam = (level * (1 + rng.normal(0, 1e-4, (100, 100, 3)))).astype(np.uint16)
    assert fit_cam_to_srgb(cam, _render(cam, M)) is None


def test_fit_refuses_what_no_matrix_explains():
    rng = np.random.default_rng(2)
    cam = rng.uniform(2000, 30000, (100, 100, 3)).astype(np.uint16)
    curved = (65535 * (_render(cam, M) / 65535.0) ** 0.45).astype(np.uint16)  # gamma-encoded output
    assert fit_cam_to_srgb(cam, curved) is None


def test_fit_refuses_too_few_usable_pixels():
    cam = np.full((100, 100, 3), 65535, dtype=np.uint16)  # all clipped
    cam[:10, :10] = np.random.default_rng(3).uniform(2000, 30000, (10, 10, 3))
    assert fit_cam_to_srgb(cam, _render(cam, M)) is None


class _FakeRaw:
    """LibRaw with no matrix of its own: its sRGB rendering is camera RGB unchanged."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image

    def postprocess(self, **kwargs) -> np.ndarray:
        return self.image.copy()


def test_identity_from_libraw_is_no_matrix():
    cam = np.random.default_rng(4).uniform(2000, 30000, (100, 100, 3)).astype(np.uint16)
    assert libraw_cam_to_srgb(_FakeRaw(cam)) is None


def test_fit_reproduces_the_dngs_own_matrix():
    """Forced through the fitting path, the DNG's ColorMatrix-derived matrix comes back."""
    import rawpy

    with rawpy.imread(str(BUNDLED)) as raw:
        own = np.asarray(raw.color_matrix, dtype=np.float64)[:3, :3]
        fitted = libraw_cam_to_srgb(raw)
    assert fitted is not None and abs(own[0, 0] - 1) > 0.1
    np.testing.assert_allclose(fitted, own, atol=1e-3)


def test_a_file_with_a_matrix_is_not_fitted(monkeypatch):
    def fail(raw):
        raise AssertionError("fitted although the file has a colour matrix")

    monkeypatch.setattr(raw_module, "libraw_cam_to_srgb", fail)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning about the matrix
        _, frame = RawDecode()(BUNDLED)
    assert frame.cam_to_srgb is not None


@pytest.mark.skipif(not KDC.is_file(), reason=f"shared sample not found at {KDC}")
def test_no_matrix_anywhere_is_the_identity_as_before(monkeypatch):
    monkeypatch.setattr(raw_module, "libraw_cam_to_srgb", lambda raw: None)
    with pytest.warns(UserWarning, match=r"no colour matrix in the file; camera RGB is used as sRGB \(identity\)"):
        _, frame = RawDecode()(KDC)
    assert frame.cam_to_srgb is None
