"""The library entry points refuse bad arguments in one line, before any work (a Python user's review)."""

import re

import numpy as np
import pytest
import torch

from isp_collab.export import export_model
from isp_collab.models import WeightsError, create_model, load_model
from isp_collab.pipeline.encode import encode_image
from isp_collab.restore import restore


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tile": 64.0}, "tile must be an integer, got 64.0"),
        ({"n": True}, "n must be an integer, got True"),
        ({"batch_size": 1.5}, "batch_size must be an integer, got 1.5"),
        ({"n": 1000}, "n must be an integer in 1..64, got 1000"),
        ({"exposure_target": float("nan")}, "exposure_target must be in [0, 1]"),
        ({"exposure_target": 5.0}, "exposure_target must be in [0, 1]"),
        ({"tile": 8192}, "at most 4096, got 8192"),
        ({"center": (1.0, 2.0, 3.0)}, "center must be 2 numbers"),
        ({"center": "mid"}, "center must be 2 numbers"),
        ({"center": (1.0, float("nan"))}, "center must be 2 finite numbers"),
        ({"onnx_path": "x.onnx", "backend": "torch"}, "onnx_path x.onnx is set but backend is 'torch'"),
        ({"onnx_path": "x.onnx", "device": "cuda"}, "this ONNX Runtime has no CUDA provider"),
    ],
)
def test_restore_refuses_bad_arguments(kwargs, message, cpu_only_onnxruntime):
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(ValueError, match=re.escape(message)):
        restore(image, create_model("unet-tx", n=4).eval(), **kwargs)


def test_the_network_refuses_a_stack_of_the_wrong_dtype_or_size():
    net = create_model("unet-tx", n=4).eval()
    for stack, message in (
        (torch.zeros(1, 2, 3, 16, 16, dtype=torch.float64), "expected a torch.float32 stack"),
        (torch.zeros(1, 2, 3, 16, 16, dtype=torch.uint8), "expected a torch.float32 stack"),
        (torch.zeros(1, 0, 3, 16, 16), "at least one patch, got B=1, N=0"),
    ):
        with pytest.raises(ValueError, match=message):
            net(stack)


def test_load_model_checks_its_device_first():
    if not torch.cuda.is_available():  # the other checks hold on any machine
        with pytest.raises(ValueError, match="CUDA is not available"):
            load_model("sharpen-unet-tx-n4", device="cuda")
    with pytest.raises(ValueError, match="not a device name"):
        load_model("sharpen-unet-tx-n4", device="gpu")
    with pytest.raises(WeightsError):  # the name is still checked
        load_model("no-such-model")


def test_encode_image_refuses_what_it_would_write_wrong():
    image = np.full((4, 4, 3), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"\.jpg cannot hold 16-bit samples"):
        encode_image(image, ".jpg", 16)
    with pytest.raises(ValueError, match=r"cannot encode '\.bmp'"):
        encode_image(image, ".bmp", 8)


def test_export_refuses_a_fractional_overlap(tmp_path):
    with pytest.raises(ValueError, match="overlap must be an integer number of pixels, got 8.5"):
        export_model("sharpen-unet-tx-n4", tile=64, overlap=8.5, formats=("onnx",), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_restore_refuses_an_object_that_is_no_model():
    with pytest.raises(TypeError, match="model must be a network"):
        restore(np.zeros((16, 16, 3), np.float32), object())  # was AttributeError: no attribute 'eval'


@pytest.mark.parametrize("args", [(10.5, 10, 8, 2), (10, 10, 8.0, 2), (10, 10, 8, 2.0)])
def test_make_grid_refuses_fractional_sizes(args):
    from isp_collab.restore.tiling import make_grid

    with pytest.raises(ValueError, match="must be an integer"):
        make_grid(*args)  # returned float tile starts


def test_restore_refuses_a_progress_of_another_type_and_a_backend_returning_a_tensor():
    image = np.full((32, 32, 3), 0.5, np.float32)
    for progress in ("yes", 1):  # showed a bar, as True does
        with pytest.raises(TypeError, match=f"progress must be True, False, None or a callable .*, got {progress!r}"):
            restore(image, create_model("unet-tx", n=1).eval(), progress=progress)

    class TensorBackend:
        n = tile = None
        multiple, card = 1, {"n_trained": 1}

        def run(self, stacks):
            return torch.from_numpy(stacks)

    message = "TensorBackend.run returned a Tensor: a backend returns a numpy array of its input's shape (1, 1, 3,"
    with pytest.raises(TypeError, match=re.escape(message)):  # was: transpose() takes 2 positional arguments
        restore(image, TensorBackend(), tile=32)


def test_restore_says_a_float64_value_is_past_float32s_range():
    import warnings

    image = np.full((16, 16, 3), 0.5)
    image[3, 4, 1] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cast's RuntimeWarning, then "contains NaN or infinite values"
        with pytest.raises(ValueError, match=re.escape("image holds values outside float32's range (|x| up to 1e+300")):
            restore(image, create_model("unet-tx", n=1).eval(), tile=16)


def test_pipeline_run_says_it_takes_a_path_and_what_takes_an_array():
    from isp_collab.pipeline import Pipeline

    with pytest.raises(TypeError, match=r"^Pipeline\.run and the decoders take a file path, got ndarray; .*for_image"):
        Pipeline().run(np.zeros((16, 16, 3), np.float32))  # was: a bare TypeError about os.PathLike
