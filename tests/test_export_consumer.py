"""The torch-free consumer export/consume_onnx.py gives the same image as ``restore`` with torch, and imports no torch."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_export_onnx import TILE, N, artefact, exported

import isp_collab.restore as restore_mod
from isp_collab.export.calibration import validation_images
from isp_collab.models import load_model
from isp_collab.restore.detail import (
    LUMA_WEIGHTS,
    keep_local_level,
    postprocess_spec,
    transfer_luma_detail,
)

CONSUMER = Path(__file__).resolve().parents[1] / "export" / "consume_onnx.py"


def load_script(path: Path):
    """The export/ script at ``path`` as a module (export/ is not a package: users run these files)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def load_consumer():
    return load_script(CONSUMER)


def sample_image(h: int = 150, w: int = 203) -> np.ndarray:
    """A linear-RGB crop of a validation photo (random values when none is available)."""
    photos = validation_images(min_size=max(h, w))
    if photos:
        return np.ascontiguousarray(photos[0][1][:h, :w])
    return np.random.default_rng(0).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize(
    "shape,strategy,center",
    [
        ((150, 203), "spread", None),
        ((150, 203), "local", None),
        ((97, 130), "mirror", (40.0, 30.5)),
        ((40, 33), "spread", None),
    ],
)
def test_consumer_equals_restore(shape, strategy, center):
    consumer = load_consumer()
    image = sample_image(*shape)
    path = artefact("fp32").path
    out = consumer.OnnxRestorer(path)(image, strategy, center)
    ref = restore_mod.restore(
        image, load_model(exported()[0]), n=N, strategy=strategy, tile=TILE, backend="torch", center=center
    )
    assert out.shape == image.shape and out.dtype == np.float32
    assert float(np.abs(out - ref).max()) <= 1e-4
    assert float(np.abs(out - image).max()) > 1e-3  # the network did something


def test_consumer_subprocess_without_torch(tmp_path):
    image = sample_image()
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, image)
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['consume_onnx.py', {str(artefact('fp32').path)!r}, {str(src)!r}, {str(dst)!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(CONSUMER)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'isp_collab')))\n"
        "assert not bad, bad\n"
        "print('no torch')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "no torch" in r.stdout and "wrote" in r.stdout
    ref = restore_mod.restore(image, load_model(exported()[0]), n=N, tile=TILE, backend="torch")
    # a sharpening model's sidecar says detail = luma, then keep_level, as isp-collab process does by default
    expected = keep_local_level(image, transfer_luma_detail(image, ref))
    assert float(np.abs(np.load(dst) - expected).max()) <= 1e-4


def test_sidecar_records_the_postprocess_step():
    side = json.loads(artefact("fp32").sidecar.read_text())
    assert side["model"]["task"] == "sharpen"
    assert side["postprocess"]["detail"] == "luma"
    assert side["postprocess"]["luma_weights"] == pytest.approx(LUMA_WEIGHTS.tolist())
    assert side["postprocess"]["strength"] == 1.0 and "before + strength *" in side["postprocess"]["strength_rule"]
    assert side["postprocess"]["keep_level"] == {"box": 33, "passes": 3}
    assert "BORDER_REFLECT_101" in side["postprocess"]["keep_level_rule"]
    lens = postprocess_spec("lens-a")  # per channel, then keep_level, as the lens stage does by default
    assert lens["detail"] == "rgb" and lens["keep_level"] == {"box": 33, "passes": 3} and "strength" not in lens


def test_consumer_detail_and_white_balance_gains(tmp_path, capsys):
    consumer = load_consumer()
    image = sample_image(64, 80)
    src = tmp_path / "in.npy"
    np.save(src, image)
    model = str(artefact("fp32").path)
    raw = consumer.OnnxRestorer(model)(image)
    outs = {}
    runs = {  # without the sidecar's keep_level step (tested in test_export_consumer_level.py)
        "rgb": ["--detail", "rgb", "--no-keep-level"],
        "luma-wb": ["--wb-gains", "2.0,1,1.5", "--no-keep-level"],
        "half": ["--detail", "rgb", "--strength", "0.5", "--no-keep-level"],
    }
    for name, extra in runs.items():
        assert consumer.main([model, str(src), str(tmp_path / f"{name}.npy"), *extra]) == 0
        outs[name] = np.load(tmp_path / f"{name}.npy")
    np.testing.assert_array_equal(outs["rgb"], raw)
    expected = transfer_luma_detail(image, raw, (2.0, 1.0, 1.5))
    assert float(np.abs(outs["luma-wb"] - expected).max()) <= 1e-6
    assert float(np.abs(outs["luma-wb"] - raw).max()) > 1e-4  # the step changed something
    np.testing.assert_allclose(outs["half"] - image, 0.5 * (raw - image), atol=1e-6)  # --strength 0.5
    capsys.readouterr()
    for extra, message in [
        (["--wb-gains", "2,0,1"], "--wb-gains: must be three positive numbers"),
        (["--wb-gains", "2,1"], "--wb-gains: must be three positive numbers"),
        (["--detail", "rgb", "--wb-gains", "2,1,1"], "--wb-gains: applies to --detail luma only"),
        (["--strength", "-1"], "--strength: must be in [0, 2], got -1"),
    ]:
        dst = tmp_path / "refused.npy"
        assert consumer.main([model, str(src), str(dst), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not dst.exists()


def test_consumer_never_overwrites_without_the_flag_and_writes_atomically(tmp_path, capsys):
    consumer = load_consumer()
    src, dst = tmp_path / "in.npy", tmp_path / "out.png"
    np.save(src, sample_image(40, 33))
    dst.write_bytes(b"keep me")
    assert consumer.main([str(artefact("fp32").path), str(src), str(dst)]) == 2
    assert "out.png: output exists (pass --overwrite" in capsys.readouterr().err
    assert dst.read_bytes() == b"keep me"
    assert consumer.main([str(artefact("fp32").path), str(src), str(dst), "--overwrite"]) == 0
    assert dst.read_bytes()[:4] == b"\x89PNG"
    assert dst.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    with pytest.raises(ValueError, match=r"out\.xyz: cannot write \.xyz"):
        consumer.write_image(tmp_path / "out.xyz", sample_image(8, 8))


def test_consumer_failed_write_leaves_no_temporary(tmp_path, monkeypatch):
    consumer = load_consumer()

    def broken_link(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(consumer.os, "link", broken_link)
    with pytest.raises(OSError, match="No space left"):
        consumer.write_image(tmp_path / "out.npy", sample_image(8, 8))
    assert list(tmp_path.iterdir()) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def model_copy(folder: Path, name: str = "m") -> Path:
    """A copy of the fp32 export and its sidecar in ``folder`` (to break one of them); the .onnx path."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx = folder / f"{name}.onnx"
    shutil.copy(artefact("fp32").path, onnx)
    shutil.copy(artefact("fp32").sidecar, onnx.with_suffix(".json"))
    return onnx


def run_main(consumer, capsys, *args) -> tuple[int, str]:
    """(exit status, stderr) of ``consume_onnx.main(args)``."""
    capsys.readouterr()
    code = consumer.main([str(a) for a in args])
    return code, capsys.readouterr().err


def assert_one_error_line(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    assert err.startswith(f"consume_onnx: error: {expected}") and err.count("\n") == 1, err


def test_consumer_refuses_non_finite_and_non_float_input(tmp_path, capsys):  # review finding 6
    import cv2

    consumer = load_consumer()
    model, image, out = artefact("fp32").path, sample_image(40, 33), tmp_path / "out.npy"
    nan = image.copy()
    nan[3, 4, 1] = np.nan
    cases = {
        "nan.npy": (nan, "contains NaN or infinite values"),
        "inf.npy": (np.where(image > 0.5, np.inf, image), "contains NaN or infinite values"),
        "u8.npy": ((image * 255).astype(np.uint8), "must be float linear RGB"),
        "grey.npy": (image[..., 0], "must be a non-empty H x W x 3 image"),
        "nan.tif": (nan, "contains NaN or infinite values"),
    }
    for name, (array, reason) in cases.items():
        src = tmp_path / name
        if src.suffix == ".npy":
            np.save(src, array)
        else:
            assert cv2.imwrite(str(src), array[..., ::-1])  # a float TIFF
        assert_one_error_line(*run_main(consumer, capsys, model, src, out), f"{src}: {reason}")
        assert not out.exists()
    with pytest.raises(ValueError, match="must be float linear RGB"):
        consumer.OnnxRestorer(model)((image * 255).astype(np.uint8))


def test_consumer_bad_files_and_flags_give_one_error_line(tmp_path, capsys):  # review finding 7
    consumer = load_consumer()
    src, out = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, sample_image(40, 33))
    model = model_copy(tmp_path / "ok")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("hello")  # numpy said it "contains pickled (object) data"
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    corrupt = model_copy(tmp_path / "corrupt")
    corrupt.write_text("not an ONNX file")
    missing = model_copy(tmp_path / "missing")
    missing.unlink()
    not_json = model_copy(tmp_path / "not-json")
    not_json.with_suffix(".json").write_text("{not json")
    nodir = tmp_path / "nodir" / "o.npy"
    cases = [
        ((model, tmp_path / "empty.npy", out), f"{tmp_path / 'empty.npy'}: not a .npy file (no NumPy header"),
        ((model, tmp_path / "text.npy", out), f"{tmp_path / 'text.npy'}: not a .npy file (no NumPy header"),
        ((model, tmp_path / "pickled.npy", out), f"{tmp_path / 'pickled.npy'}: cannot read the .npy file"),
        ((corrupt, src, out), f"{corrupt}: cannot load the ONNX model"),
        ((missing, src, out), f"{missing}: no such ONNX model file"),
        ((not_json, src, out), f"{not_json.with_suffix('.json')}: sidecar is not JSON"),
        ((model, src, out, "--center", "abc"), "--center: must be two numbers X,Y"),
        ((model, src, nodir), f"{nodir}: the output folder {nodir.parent} does not exist"),
        (
            (model, src, src, "--overwrite"),
            f"{src}: the output is the input image (not replaced, even with --overwrite)",
        ),
        ((model, tmp_path / "shot.dng", out), f"{tmp_path / 'shot.dng'}: a camera RAW file; this consumer reads PNG"),
    ]
    (tmp_path / "shot.dng").write_bytes(b"II*\x00 not really a dng")
    kept = src.read_bytes()
    for args, expected in cases:
        assert_one_error_line(*run_main(consumer, capsys, *args), expected)
        assert not out.exists()
    assert src.read_bytes() == kept


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_consumer_writes_greyscale_as_greyscale_and_warns_about_alpha(tmp_path, capsys, mode):  # finding 8
    import cv2
    from PIL import Image

    consumer = load_consumer()
    model = artefact("fp32").path
    grey = (np.random.default_rng(1).random((24, 40)) * 255).astype(np.uint8)
    alpha = np.full_like(grey, 200)
    planes = {"L": grey, "LA": np.dstack([grey, alpha]), "RGBA": np.dstack([grey, grey // 2, grey, alpha])}[mode]
    src = tmp_path / "in.png"
    Image.fromarray(planes, mode).save(src)
    code, err = run_main(consumer, capsys, model, src, tmp_path / "out.png")
    assert code == 0, err
    assert ("in.png: the alpha channel is dropped" in err) == (mode != "L")
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    if mode == "RGBA":
        assert out.shape == (24, 40, 3)
        return
    assert run_main(consumer, capsys, model, src, tmp_path / "out.npy")[0] == 0  # the same run, linear RGB
    srgb = consumer.linear_to_srgb(np.load(tmp_path / "out.npy"))
    expected = np.round(cv2.cvtColor(srgb, cv2.COLOR_RGB2GRAY) * 255)  # the luma isp-collab process writes
    assert out.shape == (24, 40) and float(np.abs(out - expected).max()) <= 1


def test_consumer_refuses_flags_it_would_ignore(tmp_path, capsys):  # review finding 13
    consumer = load_consumer()
    model, src, out = artefact("fp32").path, tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, sample_image(40, 33))
    cases = [
        (("--center", "10,12"), "--center: applies to --strategy mirror only (this run gathers with spread)"),
        (("--center", "10,12,30", "--strategy", "mirror"), "--center: must be two numbers X,Y"),
        (("--center", "40,12", "--strategy", "mirror"), "--center: (40, 12) (x, y) is outside the 40x33 (H x W) image"),
        (("--threads", "0"), "--threads: must be >= 1, got 0"),
        (("--threads", "-2"), "--threads: must be >= 1, got -2"),
    ]
    for extra, expected in cases:
        assert_one_error_line(*run_main(consumer, capsys, model, src, out, *extra), expected)
        assert not out.exists()
    with pytest.raises(ValueError, match="threads must be >= 1"):
        consumer.OnnxRestorer(model, threads=0)
    code, err = run_main(
        consumer, capsys, model, src, out, "--strategy", "mirror", "--center", "10,12", "--threads", "1"
    )
    assert code == 0, err


def test_consumer_refuses_exr(tmp_path, capsys):  # review finding 14: OpenCV's wheels have no OpenEXR
    consumer = load_consumer()
    model, src = artefact("fp32").path, tmp_path / "in.npy"
    np.save(src, sample_image(40, 33))
    for args, name in [((src, tmp_path / "out.exr"), "out.exr"), ((tmp_path / "in.exr", tmp_path / "o.npy"), "in.exr")]:
        code, err = run_main(consumer, capsys, model, *args)
        assert_one_error_line(code, err, f"{tmp_path / name}: the .exr format is not supported")
    with pytest.raises(SystemExit):
        consumer.main(["--help"])
    assert ".exr" not in capsys.readouterr().out


def test_consumer_truncated_png_is_one_line_even_from_libpng(tmp_path, capfd):
    """libpng prints its own complaint on file descriptor 2; the consumer's one line is all the user sees."""
    import cv2

    consumer = load_consumer()
    ok, buf = cv2.imencode(".png", (sample_image(64, 64) * 255).astype(np.uint8))
    src = tmp_path / "cut.png"
    src.write_bytes(buf.tobytes()[: int(len(buf) * 0.9)])
    assert consumer.main([str(model_copy(tmp_path / "ok")), str(src), str(tmp_path / "o.png")]) == 2
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and f"{src}: cannot decode the image" in err[0], err


def test_consumer_brightens_a_dark_frame_as_process_does(tmp_path):
    """The sidecar's preprocess step: a dark frame gives what restore(..., exposure_target) gives."""
    from isp_collab.restore.exposure import EXPOSURE_TARGET, exposure_gain

    consumer = load_consumer()
    image = sample_image(64, 80) * np.float32(0.05)
    assert exposure_gain(image) > 1
    src, dst = tmp_path / "dark.npy", tmp_path / "out.npy"
    np.save(src, image)
    assert consumer.main([str(artefact("fp32").path), str(src), str(dst), "--detail", "rgb", "--no-keep-level"]) == 0
    ref = restore_mod.restore(
        image, load_model(exported()[0]), n=N, tile=TILE, backend="torch", exposure_target=EXPOSURE_TARGET
    )
    assert float(np.abs(np.load(dst) - ref).max()) <= 1e-5
    side = json.loads(artefact("fp32").sidecar.read_text())
    assert side["preprocess"]["exposure_target"] == EXPOSURE_TARGET
