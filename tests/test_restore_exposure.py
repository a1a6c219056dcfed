"""Dark frames are restored at the gain that brings them to the training exposure, then divided back."""

import numpy as np
import pytest
import torch

from isp_collab.models import create_model
from isp_collab.restore import TorchBackend, restore
from isp_collab.restore.exposure import EXPOSURE_TARGET, MAX_GAIN, exposure_gain, exposure_level


def _random_model():
    torch.manual_seed(0)
    model = create_model("unet-tx", n=2)
    with torch.no_grad():  # far from the identity, and with biases: not scale-equivariant, as trained networks
        model.outc.weight.normal_(0, 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0, 0.1)
    return TorchBackend(model)


def _scene(scale: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((80, 96, 3), dtype=np.float32) * 0.6 + 0.2) * np.float32(scale)


def test_gain_brings_a_dark_frame_to_the_target_and_leaves_a_bright_one():
    bright, dark = _scene(1.0), _scene(0.1)
    assert exposure_level(bright) > EXPOSURE_TARGET and exposure_gain(bright) == 1.0
    assert exposure_gain(dark) == pytest.approx(EXPOSURE_TARGET / exposure_level(dark))
    assert exposure_gain(_scene(1e-4)) == MAX_GAIN  # capped
    assert exposure_gain(np.zeros((8, 8, 3), np.float32)) == 1.0 and exposure_gain(dark, target=0) == 1.0


def test_restore_runs_a_dark_frame_brightened_and_divides_back():
    net = _random_model()
    dark, bright = _scene(0.1), _scene(1.0)
    g = exposure_gain(dark)
    out = restore(dark, net, n=2, tile=32, exposure_target=EXPOSURE_TARGET)
    np.testing.assert_allclose(out, restore(dark * np.float32(g), net, n=2, tile=32) / g, atol=1e-6)
    assert np.abs(out - restore(dark, net, n=2, tile=32)).max() > 1e-4  # the gain mattered
    np.testing.assert_array_equal(  # a frame at the usual exposure is restored exactly as without the option
        restore(bright, net, n=2, tile=32, exposure_target=EXPOSURE_TARGET), restore(bright, net, n=2, tile=32)
    )
    with pytest.raises(ValueError, match=r"exposure_target must be in \[0, 1\]"):
        restore(dark, net, n=2, tile=32, exposure_target=-1)


def test_the_stages_default_is_on_and_the_option_is_checked():
    from isp_collab.pipeline import LensCorrect, Pipeline, Sharpen

    assert Sharpen().exposure_target == LensCorrect().exposure_target == EXPOSURE_TARGET
    assert Pipeline.from_dict({"sharpen": {"exposure_target": 0}}).sharpen.exposure_target == 0  # off
    with pytest.raises(ValueError, match=r"exposure_target must be in \[0, 1\]"):
        Pipeline.from_dict({"sharpen": {"exposure_target": 2}})
