"""export/collab_core.py, the algorithm of the reference consumer alone: the same image as the package's
``restore``, numpy only; and the sidecar's numeric ``postprocess.strength`` (older sidecars' text still read)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from test_export_consumer import assert_one_error_line, load_consumer, load_script, model_copy, run_main, sample_image
from test_export_onnx import TILE, N, artefact, exported

import isp_collab.restore as restore_mod
from isp_collab.models import load_model
from isp_collab.restore.exposure import EXPOSURE_TARGET, MAX_GAIN
from isp_collab.restore.tiling import default_overlap

CORE = Path(__file__).resolve().parents[1] / "export" / "collab_core.py"


def load_core():
    return load_script(CORE)


def onnx_run_stack():
    """The fixture export's fp32 ONNX file as a run_stack callable: (N, 3, T, T) -> (N, 3, T, T)."""
    session = ort.InferenceSession(str(artefact("fp32").path), providers=["CPUExecutionProvider"])
    return lambda stack: session.run(None, {"stack": stack[None]})[0][0]


@pytest.mark.parametrize(
    "shape,strategy,center",
    [
        ((75, 131), "spread", None),
        ((75, 131), "mirror", None),
        ((97, 131), "mirror", (70.0, 20.5)),  # off-centre: some mirror positions fall outside the image
    ],
)
def test_core_restore_equals_the_package_restore(shape, strategy, center):
    core = load_core()
    image = sample_image(*shape)
    out = core.restore(image, onnx_run_stack(), N, TILE, default_overlap(TILE), strategy, center)
    ref = restore_mod.restore(
        image, load_model(exported()[0]), n=N, strategy=strategy, tile=TILE, backend="torch", center=center
    )
    assert out.shape == image.shape and out.dtype == np.float32
    assert float(np.abs(out - ref).max()) <= 1e-4
    assert float(np.abs(out - image).max()) > 1e-3  # the network did something


def test_core_exposure_and_postprocess_equal_the_package():
    from isp_collab.restore.detail import transfer_luma_detail

    core = load_core()
    dark = sample_image(61, 83) * np.float32(0.05)
    assert core.exposure_gain(dark, EXPOSURE_TARGET, MAX_GAIN) > 1
    out = core.restore(
        dark, onnx_run_stack(), N, TILE, default_overlap(TILE), "spread", None, EXPOSURE_TARGET, MAX_GAIN
    )
    ref = restore_mod.restore(
        dark, load_model(exported()[0]), n=N, tile=TILE, backend="torch", exposure_target=EXPOSURE_TARGET
    )
    assert float(np.abs(out - ref).max()) <= 1e-5
    gains = (2.0, 1.0, 1.5)
    luma = core.postprocess(dark, out, "luma", gains)
    np.testing.assert_allclose(luma, transfer_luma_detail(dark, out, gains), atol=1e-7)
    np.testing.assert_allclose(
        core.postprocess(dark, out, "luma", gains, strength=0.5) - dark, 0.5 * (luma - dark), atol=1e-7
    )
    assert core.postprocess(dark, out, "rgb") is out


def test_core_imports_numpy_only():
    code = (
        f"import sys; sys.path.insert(0, {str(CORE.parent)!r}); import collab_core\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'isp_collab', 'onnxruntime', 'cv2'))\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["shot.kdc", "shot.NEF", "shot.dng"])
def test_a_raw_file_opencv_could_decode_is_refused_by_its_suffix(tmp_path, name):
    """A RAW file was refused only when OpenCV failed to decode it: a Kodak .kdc's 96x64 embedded thumbnail (a
    TIFF) decoded, and the consumer restored and wrote that thumbnail."""
    import cv2

    image_files = load_script(CORE.parent / "image_files.py")
    ok, tiff = cv2.imencode(".tif", np.full((64, 96, 3), 128, np.uint8))
    assert ok
    src = tmp_path / name
    src.write_bytes(tiff.tobytes())
    assert cv2.imdecode(np.fromfile(src, np.uint8), cv2.IMREAD_UNCHANGED) is not None  # OpenCV reads it
    with pytest.raises(ValueError) as e:
        image_files.read_image(src)
    assert str(e.value) == f"{src}: a camera RAW file; this consumer reads PNG / JPEG / TIFF (use isp-collab process)"
    (tmp_path / "shot.tif").write_bytes(tiff.tobytes())  # the same bytes named as what they are: read
    assert image_files.read_image(tmp_path / "shot.tif")[0].shape == (64, 96, 3)


def test_the_consumer_knows_every_raw_suffix_the_package_does():
    """A suffix missing here (.dcr, .k25: Kodak, like .kdc) let OpenCV restore a RAW file's thumbnail."""
    from isp_collab.pipeline.io import RAW_EXTENSIONS

    assert set(RAW_EXTENSIONS) == load_script(CORE.parent / "image_files.py").RAW_SUFFIXES


def test_consumer_runs_from_another_folder(tmp_path):
    """``python export/consume_onnx.py`` finds collab_core.py beside it whatever the working folder."""
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, sample_image(40, 33))
    consumer = CORE.parent / "consume_onnx.py"
    r = subprocess.run(
        [sys.executable, str(consumer), str(artefact("fp32").path), "in.npy", "out.npy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert dst.is_file()


def test_consumer_takes_the_sidecars_strength_and_reads_older_sidecars(tmp_path, capsys):
    consumer = load_consumer()
    onnx, src = model_copy(tmp_path / "m"), tmp_path / "in.npy"
    np.save(src, sample_image(40, 33))
    sidecar = onnx.with_suffix(".json")
    side = json.loads(sidecar.read_text())
    assert side["postprocess"]["strength"] == 1.0

    def run(name: str, postprocess: dict, *extra: str) -> np.ndarray:
        sidecar.write_text(json.dumps(side | {"postprocess": side["postprocess"] | postprocess}))
        code, err = run_main(consumer, capsys, onnx, src, tmp_path / f"{name}.npy", *extra)
        assert code == 0, err
        return np.load(tmp_path / f"{name}.npy")

    default = run("default", {})
    older = {"strength": "optional tuning, after the detail step: result = before + s * (result - before)"}
    np.testing.assert_array_equal(run("older", older), default)  # text, as older sidecars had: 1
    np.testing.assert_array_equal(run("side-half", {"strength": 0.5}), run("flag-half", {}, "--strength", "0.5"))
    np.testing.assert_array_equal(run("flag-wins", {"strength": 0.5}, "--strength", "1"), default)
    sidecar.write_text(json.dumps(side | {"postprocess": side["postprocess"] | {"strength": 3}}))
    code, err = run_main(consumer, capsys, onnx, src, tmp_path / "bad.npy")
    assert_one_error_line(code, err, f"{sidecar}: postprocess.strength must be a number in [0, 2], got 3")


def test_a_strategy_other_than_the_sidecars_runs_but_is_said(tmp_path, capsys):
    from test_export_consumer import artefact, load_consumer, run_main, sample_image

    consumer = load_consumer()
    src, out = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, sample_image(40, 33))
    code, err = run_main(consumer, capsys, artefact("fp32").path, src, out, "--strategy", "local")
    assert code == 0 and out.exists()
    assert "says to gather spread stacks (the model's task: sharpen); --strategy local runs it otherwise" in err
    code, err = run_main(consumer, capsys, artefact("fp32").path, src, tmp_path / "o2.npy", "--strategy", "spread")
    assert code == 0 and "warning" not in err


def test_a_frame_unlike_the_lens_calibrations_runs_but_is_said(tmp_path, capsys):
    """The calibration frame is the sensor's (H x W): compared in the sensor's orientation, as process compares it
    (a file its EXIF orientation turns upright is turned back; one stored as it is shown is not)."""
    import json

    from PIL import Image
    from test_export_consumer import artefact, load_consumer, run_main, sample_image

    consumer = load_consumer()
    np.save(tmp_path / "in.npy", sample_image(40, 33))  # H 40, W 33, stored as shown
    exif = Image.Exif()
    exif[0x0112] = 6  # a quarter turn: stored 33 x 40, shown 40 x 33
    Image.fromarray(np.zeros((33, 40, 3), np.uint8)).save(tmp_path / "turned.png", exif=exif.tobytes())
    model = artefact("fp32").path
    side = json.loads(model.with_suffix(".json").read_text())
    said = {}
    for name in ("in.npy", "turned.png"):
        for frame in ([40, 33], [33, 40], [80, 66]):  # upright, sensor-turned, another size
            side["model"]["lens_frame"] = frame
            (sidecar := tmp_path / f"{frame[0]}.json").write_text(json.dumps(side))
            out = tmp_path / f"o{frame[0]}{Path(name).suffix}"
            code, err = run_main(consumer, capsys, model, tmp_path / name, out, "--sidecar", sidecar, "--overwrite")
            assert code == 0, err
            said[name, frame[0]] = "calibrated on" in err
    assert said == {
        **{("in.npy", 40): False, ("in.npy", 33): True, ("in.npy", 80): True},
        **{("turned.png", 40): True, ("turned.png", 33): False, ("turned.png", 80): True},
    }


@pytest.mark.parametrize(("shape", "n"), [((0, 5, 3), 4), ((4, 5), 4), ((4, 5, 3), 0)])
def test_core_restore_refuses_an_empty_image_or_no_stack_size(shape, n):
    """(were IndexError / ZeroDivisionError deep inside; found by a clean-room port of the README)"""
    core = load_script(CORE)
    with pytest.raises(ValueError, match="non-empty H x W x 3 image and n >= 1"):
        core.restore(np.zeros(shape, np.float32), lambda s: s, n, 16, 4)
