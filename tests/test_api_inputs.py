"""What a Python user embedding the package meets (an ISP integrator's review): odd array layouts,
numpy scalars, frames for arrays in memory, arguments that contradict each other, global state."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from isp_collab.models import create_model, load_model
from isp_collab.models.weights import models_dir, shipped_models
from isp_collab.pipeline import Frame, LensCorrect, Sharpen, linear_to_srgb, srgb_to_linear
from isp_collab.pipeline.encode import Encode
from isp_collab.pipeline.stages import ColorCorrect, Tone, UnsharpMask, WhiteBalance
from isp_collab.restore import restore

README = Path(__file__).resolve().parents[1] / "README.md"


def test_colour_curves_take_any_memory_layout_and_refuse_integer_codes():
    rng = np.random.default_rng(0)
    chw = rng.random((3, 24, 32), dtype=np.float32)
    for view in (chw.transpose(1, 2, 0), np.rot90(chw.transpose(1, 2, 0)), np.asfortranarray(chw[0])):
        for curve in (srgb_to_linear, linear_to_srgb):
            np.testing.assert_array_equal(curve(view), curve(view.copy()))  # OpenCV refused these layouts
    assert Tone()(np.rot90(chw.transpose(1, 2, 0)).copy(), Frame.for_image(np.zeros((32, 24, 3)))).shape == (32, 24, 3)
    for codes in (np.array([[[0, 128, 255]]], np.uint8), np.array([[[0, 40000, 65535]]], np.uint16)):
        with pytest.raises(TypeError, match=f"expected float values in \\[0, 1\\], got {codes.dtype}"):
            srgb_to_linear(codes)  # was [0, 1, 1] without a word


def test_a_frame_for_an_array_and_a_frame_of_another_size_refused():
    image = np.random.default_rng(1).random((48, 64, 3), dtype=np.float32)
    frame = Frame.for_image(image, wb_gains=(2.0, 1.0, 1.5))
    assert (frame.height, frame.width, frame.kind, frame.wb_gains) == (48, 64, "raw", (2.0, 1.0, 1.5))
    out = Sharpen(tile=32)(image, frame)
    assert out.shape == image.shape and out.dtype == np.float32
    for stage in (Sharpen(tile=32), LensCorrect(tile=32)):
        with pytest.raises(ValueError, match=re.escape(f"{stage.name}: the image is 40x30 but its frame says 64x48")):
            stage(image[:30, :40], frame)
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) image"):
        Frame.for_image(image[..., 0])


def test_a_frame_for_an_array_refuses_a_bad_kind_centre_or_matrix_naming_the_field():
    image = np.full((8, 8, 3), 0.25, np.float32)
    for fields, message in (  # each ran, to fail later in a stage (a cv2.error for the matrix) or not at all
        ({"kind": "bogus"}, "kind must be 'raw' or 'rgb', got 'bogus'"),
        ({"optical_center": "mid"}, "optical_center must be 2 finite numbers (x, y) in pixels, got 'mid'"),
        ({"optical_center": (np.nan, 1)}, "optical_center must be 2 finite numbers (x, y) in pixels"),
        ({"cam_to_srgb": ((1, 0), (0, 1))}, "cam_to_srgb must be 3 rows of 3 finite numbers, got ((1, 0), (0, 1))"),
        ({"cam_to_srgb": np.eye(2)}, "cam_to_srgb must be 3 rows of 3 finite numbers, got [[1.0, 0.0], [0.0, 1.0]]"),
    ):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
            Frame.for_image(image, **fields)
    frame = Frame.for_image(image, kind="rgb", optical_center=np.array([3, 4.5]), cam_to_srgb=2 * np.eye(3))
    assert (frame.height, frame.center) == (8, (3.0, 4.5)) and frame.cam_to_srgb == (
        (2.0, 0.0, 0.0),
        (0.0, 2.0, 0.0),
        (0.0, 0.0, 2.0),
    )
    np.testing.assert_allclose(ColorCorrect()(image, frame), 0.5)


def test_numpy_scalars_are_numbers_and_strings_are_refused_naming_the_setting():
    image = np.random.default_rng(2).random((32, 32, 3), dtype=np.float32)
    frame = Frame.for_image(image)
    full = Sharpen(tile=32)(image, frame)
    half = Sharpen(tile=32, strength=np.float32(0.5), exposure_target=np.float32(0.2))(image, frame)
    np.testing.assert_allclose(
        half, image + 0.5 * (Sharpen(tile=32, exposure_target=0.2)(image, frame) - image), atol=1e-6
    )
    assert np.abs(full - image).max() > 1e-3  # the stage did change the image
    image = np.full((16, 16, 3), 0.5, np.float32)
    restore(image, create_model("unet-tx", n=1).eval(), exposure_target=np.float32(0.25), tile=16)
    for make, message in (
        (lambda: Tone(exposure_ev="1"), "tone.exposure_ev must be a number, got '1'"),
        (lambda: UnsharpMask(sigma="1"), "unsharp.sigma must be a number, got '1'"),
        (lambda: WhiteBalance(gains="abc"), "white_balance.gains must be 3 positive finite numbers, got 'abc'"),
        (lambda: WhiteBalance(gains=("2", 1, 1)), "white_balance.gains must be a number, got '2'"),
        (lambda: WhiteBalance(gains=(1e308, 1, 1)), "white_balance.gains must be within 100x of each other"),
        (lambda: Encode(jpeg_quality="90"), "output.jpeg_quality must be an integer in 1..100, got '90'"),
        (lambda: Sharpen(strength="1"), "sharpen.strength must be a number, got '1'"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            make()


def test_sharpen_at_strength_zero_returns_a_copy_not_the_callers_array():
    image = np.full((32, 32, 3), 0.5, np.float32)
    out = Sharpen(strength=0)(image, Frame.for_image(image))
    out[:] = 0
    assert image.min() == 0.5


def test_restore_refuses_an_onnx_file_on_torch_or_cuda_and_a_backend_with_onnx_path(tmp_path, cpu_only_onnxruntime):
    image = np.zeros((16, 16, 3), np.float32)
    onnx = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match=re.escape(f"{onnx}: an ONNX file runs on the onnx backend, not 'torch'")):
        restore(image, onnx, backend="torch")
    with pytest.raises(ValueError, match="this ONNX Runtime has no CUDA provider"):
        restore(image, onnx, device="cuda")  # refused before the (missing) file is opened
    from isp_collab.restore import TorchBackend

    runner = TorchBackend(create_model("unet-tx", n=1).eval(), "cpu")
    with pytest.raises(ValueError, match="model is already a backend"):
        restore(image, runner, onnx_path=onnx)


def test_the_network_names_a_numpy_stack_as_the_wrong_type():
    with pytest.raises(TypeError, match="expected a torch.Tensor stack .*, got ndarray"):
        create_model("unet-tx", n=1)(np.zeros((1, 1, 3, 16, 16), np.float32))


def test_load_model_leaves_the_callers_random_generator_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load_model("sharpen-unet-tx-n1")
    assert torch.equal(torch.rand(3), expected)


def test_the_models_folder_is_read_from_the_environment_at_each_call(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(models_dir() / "sharpen-unet-tx-n1", tmp_path / "mine")
    monkeypatch.setenv("ISP_COLLAB_MODELS", str(tmp_path))  # after import: still seen
    assert models_dir() == tmp_path and shipped_models() == ["mine"]
    assert load_model("mine").card["n_trained"] == 1


def test_the_readme_python_example_runs_as_written():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, "README has no Python example"
    code = blocks[0].replace("(1080, 1920, 3)", "(96, 128, 3)")  # the same lines on a small image
    assert "(96, 128, 3)" in code
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102 - the README's own example
    assert scope["sharp"].shape == (96, 128, 3) and scope["sharp"].dtype == np.float32


def test_decoding_from_several_threads_leaves_pillows_cap_and_fd2_as_they_were(tmp_path):
    import os
    import threading

    import cv2
    from PIL import Image

    from isp_collab.pipeline import ImageDecode

    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    cap, fd2 = Image.MAX_IMAGE_PIXELS, os.fstat(2).st_ino
    decode = ImageDecode()
    shapes: list[tuple[int, ...]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(100):
                shapes.append(decode(path)[0].shape)
        except BaseException as e:  # noqa: BLE001 - a thread's exception is only a warning to pytest
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and shapes == [(8, 8, 3)] * 400
    assert cap == Image.MAX_IMAGE_PIXELS and cap is not None
    assert os.fstat(2).st_ino == fd2


def test_colour_curves_keep_the_shape_of_scalars_and_take_python_numbers():
    assert srgb_to_linear(np.float32(0.5)).shape == ()
    np.testing.assert_allclose(linear_to_srgb([0, 1]), [0.0, 1.0], atol=1e-6)
    assert linear_to_srgb(1).shape == ()


def test_restore_refuses_two_onnx_files_and_a_device_for_a_backend(tmp_path, cpu_only_onnxruntime):
    from isp_collab.restore import TorchBackend

    image = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="two ONNX files, pass one"):
        restore(image, tmp_path / "a.onnx", onnx_path=tmp_path / "b.onnx")
    runner = TorchBackend(create_model("unet-tx", n=1).eval(), "cpu")
    with pytest.raises(ValueError, match="model is already a backend"):
        restore(image, runner, device="cpu")
    with pytest.raises(ValueError, match="this ONNX Runtime has no CUDA provider"):
        restore(image, tmp_path / "a.onnx", device=torch.device("cuda"))


def test_a_header_read_silences_pillow_alone_and_lifts_its_cap_only_for_a_file_past_it(tmp_path):
    """The header read ignored every UserWarning (every PipelineWarning of the process's other threads with them)
    and lifted Pillow's process-wide decompression-bomb cap for every image; now only Pillow's own warnings, and
    the cap only for an image Pillow would refuse (a 200 MP PNG header)."""
    import warnings

    import cv2
    from PIL import Image
    from test_pipeline_io import _png_header_only

    from isp_collab.pipeline import PipelineWarning
    from isp_collab.pipeline.decode import pillow_header

    small = tmp_path / "a.png"
    cv2.imwrite(str(small), np.zeros((8, 8, 3), np.uint8))
    cap = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pillow_header(small) as im:
            warnings.warn("another stage's warning", PipelineWarning, stacklevel=1)
            assert cap == Image.MAX_IMAGE_PIXELS and im.size == (8, 8)
    assert [str(w.message) for w in caught] == ["another stage's warning"]

    huge = _png_header_only(tmp_path / "huge.png", 20000, 10000)  # 200 MP: past Pillow's refusal at 2 x 89.5 MP
    with pillow_header(huge) as im:
        assert im.size == (20000, 10000) and cap == Image.MAX_IMAGE_PIXELS  # lifted while it was opened only
    assert cap == Image.MAX_IMAGE_PIXELS
