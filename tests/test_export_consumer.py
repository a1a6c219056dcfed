"""The torch-free consumer export/consume_onnx.py gives the same image as ``restore`` with torch, and imports no torch."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_export_onnx import TILE, N, artefact, exported  # noqa: F401 (fixtures)

restore_mod = pytest.importorskip("isp_collab.restore")
from isp_collab.export.calibration import validation_images  # noqa: E402
from isp_collab.models import load_model  # noqa: E402
from isp_collab.restore.detail import LUMA_WEIGHTS, postprocess_spec, transfer_luma_detail  # noqa: E402

CONSUMER = Path(__file__).resolve().parents[1] / "export" / "consume_onnx.py"


def load_consumer():
    spec = importlib.util.spec_from_file_location("consume_onnx", CONSUMER)
    module = importlib.util.module_from_spec(spec)
    sys.modules["consume_onnx"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


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
    # a sharpening model's sidecar says detail = luma, as isp-collab process does by default
    assert float(np.abs(np.load(dst) - transfer_luma_detail(image, ref)).max()) <= 1e-4


def test_sidecar_records_the_postprocess_step():
    import json

    side = json.loads(artefact("fp32").sidecar.read_text())
    assert side["model"]["task"] == "sharpen"
    assert side["postprocess"]["detail"] == "luma"
    assert side["postprocess"]["luma_weights"] == pytest.approx(LUMA_WEIGHTS.tolist())
    assert postprocess_spec("lens-a") == {"detail": "rgb", "description": postprocess_spec("lens")["description"]}


def test_consumer_detail_and_white_balance_gains(tmp_path, capsys):
    consumer = load_consumer()
    image = sample_image(64, 80)
    src = tmp_path / "in.npy"
    np.save(src, image)
    model = str(artefact("fp32").path)
    raw = consumer.OnnxRestorer(model)(image)
    outs = {}
    for name, extra in {"rgb": ["--detail", "rgb"], "luma-wb": ["--wb-gains", "2.0,1,1.5"]}.items():
        assert consumer.main([model, str(src), str(tmp_path / f"{name}.npy"), *extra]) == 0
        outs[name] = np.load(tmp_path / f"{name}.npy")
    np.testing.assert_array_equal(outs["rgb"], raw)
    expected = transfer_luma_detail(image, raw, (2.0, 1.0, 1.5))
    assert float(np.abs(outs["luma-wb"] - expected).max()) <= 1e-6
    assert float(np.abs(outs["luma-wb"] - raw).max()) > 1e-4  # the step changed something
    capsys.readouterr()
    for extra, message in [
        (["--wb-gains", "2,0,1"], "--wb-gains must be three positive numbers"),
        (["--wb-gains", "2,1"], "--wb-gains must be three positive numbers"),
        (["--detail", "rgb", "--wb-gains", "2,1,1"], "--wb-gains applies to --detail luma only"),
    ]:
        dst = tmp_path / "refused.npy"
        assert consumer.main([model, str(src), str(dst), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not dst.exists()


def test_consumer_refuses_mismatched_sidecar(tmp_path):
    import json
    import shutil

    consumer = load_consumer()
    art = artefact("fp32")
    onnx_copy = tmp_path / art.path.name
    shutil.copy(art.path, onnx_copy)
    side = json.loads(art.sidecar.read_text())
    side["tiling"]["n"] = N + 1
    onnx_copy.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(ValueError, match="does not match the sidecar"):
        consumer.OnnxRestorer(onnx_copy)
    with pytest.raises(FileNotFoundError, match="sidecar"):
        consumer.OnnxRestorer(art.path, sidecar=tmp_path / "missing.json")


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
    with pytest.raises(ValueError, match=r"out\.xyz: cannot encode"):
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
