"""Classical sharpeners: unsharp mask sharpens, the Polyblur wrapper keeps shapes, params fall back."""

import cv2
import numpy as np
import pytest

from isp_collab.bench import classical
from isp_collab.bench.data import load_images
from isp_collab.bench.metrics import psnr
from isp_collab.bench.protocol import center_crop, linearise


@pytest.fixture(scope="module")
def sharp():
    return linearise(center_crop(load_images(max_images=1)[0].srgb, 96))


def test_unsharp_mask_sharpens_a_mildly_blurred_image(sharp):
    blurry = cv2.GaussianBlur(sharp, (0, 0), 1.0)
    out = classical.unsharp_mask(blurry, amount=1.0, radius=1.0)
    assert out.shape == sharp.shape and out.dtype == np.float32
    assert psnr(out, sharp, border=8) > psnr(blurry, sharp, border=8) + 0.5


def test_unsharp_mask_with_zero_amount_is_identity(sharp):
    np.testing.assert_allclose(classical.unsharp_mask(sharp, amount=0.0, radius=2.0), np.clip(sharp, 0, 1), atol=1e-6)


def test_polyblur_wrapper_keeps_shape_dtype_and_range(sharp):
    ok, why = classical.polyblur_status()
    if not ok:
        pytest.skip(why)
    blurry = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    out = classical.polyblur_deblur(blurry, alpha=2.0, beta=3.0, n_iter=1)
    assert out.shape == sharp.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert psnr(out, sharp, border=8) > psnr(blurry, sharp, border=8)


def test_load_params_falls_back_to_defaults(tmp_path):
    p = classical.load_params(tmp_path / "missing.json")
    assert p["unsharp"]["source"] == "defaults" and p["polyblur"]["alpha"] == classical.DEFAULT_POLYBLUR["alpha"]
    f = tmp_path / "c.json"
    f.write_text('{"unsharp": {"chosen": {"amount": 0.7, "radius": 2.0}}}')
    p = classical.load_params(f)
    assert p["unsharp"]["amount"] == 0.7 and p["polyblur"]["source"] == "defaults"


def test_missing_polyblur_is_skipped_with_a_reason(monkeypatch, capsys):
    monkeypatch.setattr(classical, "polyblur_status", lambda: (False, "polyblur is not usable (test)"))
    methods = classical.classical_methods(verbose=True)
    assert "Polyblur" not in methods and "unsharp mask" in methods
    assert "skipping Polyblur: polyblur is not usable" in capsys.readouterr().out


def test_polyblur_wrapper_hands_the_package_its_layout_and_settings(monkeypatch):
    """Runs without the package (CI installs no bench extra): a stand-in ``polyblur`` records its call."""
    import sys
    import types

    import torch

    calls = []

    def deblur(x, **kwargs):
        calls.append((x.clone(), kwargs))
        return x * torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1)  # a different change per channel

    monkeypatch.setitem(sys.modules, "polyblur", types.SimpleNamespace(polyblur_deblurring=deblur))
    image = np.random.default_rng(0).random((5, 7, 3), dtype=np.float32)
    out = classical.polyblur_deblur(image, alpha=2.5, beta=3.5, n_iter=2, remove_halo=False, c=0.4, b=0.3, q=0.1)
    ((x, kwargs),) = calls
    assert tuple(x.shape) == (1, 3, 5, 7) and x.dtype == torch.float32
    np.testing.assert_array_equal(x[0].permute(1, 2, 0).numpy(), image)  # channels first, the same pixels
    assert kwargs == dict(n_iter=2, alpha=2.5, beta=3.5, remove_halo=False, c=0.4, b=0.3, q=0.1)
    assert out.shape == image.shape and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, image * np.float32([1.0, 0.5, 0.25]), rtol=1e-6)  # channels last again
