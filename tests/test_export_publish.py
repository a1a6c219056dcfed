"""Export publishing (all or nothing, never replacing without overwrite), stale temp folders, input
checks of ``export_model``, calibration in the network's input domain and the quality figures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_export_cli import assert_one_line_error, fake_export_onnx, run_cli, tree
from test_export_onnx import NAME, TILE, artefact, exported  # noqa: F401 (fixtures)

import isp_collab.export.api as api
import isp_collab.export.build as build
import isp_collab.export.staging as staging
from isp_collab.export.calibration import validation_dir, validation_stacks


def files(tmp_path: Path, names: list[str], text: str) -> list[Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    paths = [tmp_path / n for n in names]
    for p in paths:
        p.write_text(text)
    return paths


def test_publish_without_overwrite_never_replaces_and_rolls_back(tmp_path):
    """A destination that appeared during the build stops the publish; what was already placed is removed."""
    srcs = files(tmp_path / "tmp", ["a.json", "a.onnx", "b.json"], "new")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.json").write_text("someone else's")
    with pytest.raises(FileExistsError, match=r"b\.json: appeared while the export was running"):
        staging.publish([(s, out / s.name) for s in srcs], tmp_path / "tmp", overwrite=False)
    assert sorted(p.name for p in out.iterdir()) == ["b.json"] and (out / "b.json").read_text() == "someone else's"


def test_publish_failure_with_overwrite_restores_the_old_files(tmp_path, monkeypatch):
    srcs = files(tmp_path / "tmp", ["a.json", "a.onnx", "b.json"], "new")
    out = tmp_path / "out"
    old = files(out, ["a.json", "a.onnx", "b.json"], "old")
    real_place = staging._place

    def failing_third(src, dst):
        if src.name == "b.json":
            raise OSError(28, "No space left on device", str(dst))
        real_place(src, dst)

    monkeypatch.setattr(staging, "_place", failing_third)
    with pytest.raises(OSError, match="No space left"):
        staging.publish([(s, out / s.name) for s in srcs], tmp_path / "tmp", overwrite=True)
    assert all(p.read_text() == "old" for p in old) and sorted(p.name for p in out.iterdir()) == [
        "a.json",
        "a.onnx",
        "b.json",
    ]


def test_a_write_failure_while_publishing_is_one_line_and_leaves_the_old_export(
    capsys, tmp_path, model_dir, monkeypatch
):
    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)
    out = tmp_path / "out"
    args = (
        "--model",
        str(model_dir),
        "--tile",
        str(TILE),
        "--format",
        "onnx",
        "--precision",
        "fp32,fp16",
        "--out",
        str(out),
    )
    assert run_cli(capsys, *args)[0] == 0
    before = tree(out)
    real_place = staging._place

    def failing_fp16(src, dst):
        if "fp16" in src.name and src.suffix == ".onnx":
            raise OSError(5, "Input/output error", str(dst))
        real_place(src, dst)

    monkeypatch.setattr(staging, "_place", failing_fp16)
    code, _, err = run_cli(capsys, *args, "--overwrite")
    assert_one_line_error(code, err, "fp16.onnx: cannot write (Input/output error); nothing written")
    assert tree(out) == before


def test_stale_temp_folders_of_killed_exports_are_swept(tmp_path):
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, alive, unknown = out / ".export-dead.tmp", out / ".export-alive.tmp", out / ".export-old.tmp"
    for folder, pid in ((stale, dead.stdout.strip()), (alive, str(os.getpid())), (unknown, None)):
        folder.mkdir(parents=True)
        if pid:
            (folder / "pid").write_text(pid)
    _, tmp = staging.prepare_out_dir(out)
    assert not stale.exists() and alive.is_dir() and unknown.is_dir() and tmp.is_dir()
    assert (tmp / "pid").read_text() == str(os.getpid())


def test_model_folder_named_dot_exports_under_its_own_name(tmp_path, monkeypatch, model_dir):
    folder = tmp_path / "my-sharpener"
    shutil.copytree(model_dir, folder)
    card = json.loads((folder / "card.json").read_text())
    card.pop("name", None)
    (folder / "card.json").write_text(json.dumps(card))
    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)
    monkeypatch.chdir(folder)
    (art,) = api.export_model(".", tile=TILE, formats=("onnx",), out_dir=tmp_path / "o")
    assert art.path.name == f"my-sharpener-n4-t{TILE}.onnx"


def test_card_recommended_strategy_is_the_default():
    assert api.default_strategy({"task": "sharpen", "recommended_strategy": "local"}) == "local"
    assert api.default_strategy({"task": "lens"}) == "mirror" and api.default_strategy({"task": "sharpen"}) == "spread"


def test_a_calibrated_lens_model_hands_its_centre_and_frame_to_the_sidecar(tmp_path):
    from isp_collab.models import create_model, load_model, save_model

    card = {"task": "lens", "n_trained": 4, "optical_center": [0.4, 0.55], "lens_frame": [3000, 4000]}
    folder = save_model(create_model("unet-tx", n=4), tmp_path / "mylens", card)
    info = api._sidecar_model_block(load_model(folder), folder)
    assert info["optical_center"] == [0.4, 0.55] and info["lens_frame"] == [3000, 4000]


def test_stacks_too_large_for_memory_are_refused_before_any_work(tmp_path, model_dir):
    with pytest.raises(ValueError, match=r"\[1, 64, 3, 4096, 4096\] stack needs about 1933 GB"):
        api.export_model(model_dir, n=64, tile=4096, formats=("onnx",), out_dir=tmp_path / "o")
    # 8 x 2048² (34 Mpx) passed the old cap of 8 x 4096² stack pixels but would need ~60 GB: refused now
    with pytest.raises(ValueError, match=r"needs about 60 GB .* at most 4 x 2048²"):
        api.export_model(model_dir, n=8, tile=2048, formats=("onnx",), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_stack_beyond_the_available_memory_is_refused_and_running_out_is_one_line(tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr(api, "available_memory_gb", lambda: 1.0)  # 4 x 512² needs about 1.9 GB
    with pytest.raises(ValueError, match=r"\[1, 4, 3, 512, 512\] stack needs about 1\.9 GB .* has 1\.0 GB available"):
        api.export_model(model_dir, n=4, tile=512, formats=("onnx",), out_dir=tmp_path / "o")
    monkeypatch.setattr(api, "available_memory_gb", lambda: None)

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(api, "build_artefacts", out_of_memory)
    with pytest.raises(
        api.ExportError, match=r"^out of memory checking a \[1, 4, 3, 64, 64\] stack .* nothing written$"
    ):
        api.export_model(model_dir, n=4, tile=64, formats=("onnx",), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_missing_calibration_folders_are_errors_and_synthetic_stacks_warn(tmp_path, model_dir, monkeypatch):
    with pytest.raises(ValueError, match=r"nowhere: calibration image folder not found"):
        api.export_model(model_dir, tile=TILE, formats=("onnx",), out_dir=tmp_path / "o", calibration_images="nowhere")
    monkeypatch.setenv("ISP_COLLAB_VAL_IMAGES", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="ISP_COLLAB_VAL_IMAGES names no folder"):
        validation_dir()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("ISP_COLLAB_VAL_IMAGES", str(tmp_path / "empty"))
    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)
    with pytest.warns(UserWarning, match="use synthetic images"):
        (art,) = api.export_model(model_dir, tile=TILE, formats=("onnx",), out_dir=tmp_path / "o")
    assert art.parity["real_kind"] == "synthetic"


@pytest.mark.parametrize(
    ("contents", "reason"),
    [
        ({}, "no image files"),
        ({"broken.png": b"not a png", "notes.txt": b"x"}, "1 unreadable (first: broken.png)"),
        ({"grey.png": "grey"}, "1 greyscale"),
        ({"tiny.png": "tiny"}, f"1 smaller than {TILE} px a side"),
    ],
)
def test_a_named_calibration_folder_without_usable_photos_is_an_error(tmp_path, model_dir, capsys, contents, reason):
    """A folder the user named never falls back to synthetic calibration in silence."""
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, what in contents.items():
        if isinstance(what, bytes):
            (folder / name).write_bytes(what)
        elif what == "grey":
            cv2.imwrite(str(folder / name), np.repeat(rng.integers(0, 255, (TILE, TILE, 1), np.uint8), 3, axis=2))
        else:
            cv2.imwrite(str(folder / name), rng.integers(0, 255, (TILE // 2, TILE // 2, 3), np.uint8))
    with pytest.raises(ValueError, match=rf"photos: .*{reason.replace('(', '.').replace(')', '.')}"):
        api.export_model(model_dir, tile=TILE, formats=("onnx",), out_dir=tmp_path / "o", calibration_images=folder)
    code, _, err = run_cli(
        capsys, "--model", str(model_dir), "--tile", str(TILE), "--format", "onnx", "--out", str(tmp_path / "o"),
        "--calibration-images", str(folder),
    )  # fmt: skip
    assert_one_line_error(code, err, str(folder), reason)
    assert not (tmp_path / "o").exists()


def test_calibration_stacks_are_linear_camera_rgb_and_unclipped():
    camera = validation_stacks(2, 32, 3, seed=5)
    srgb = validation_stacks(2, 32, 3, seed=5, domain="linear-srgb")
    assert [s.name for s in camera] == [s.name for s in srgb] and not camera[0].name.startswith("synthetic")
    for c, s in zip(camera, srgb, strict=True):
        assert c.sharp.min() >= 0 and c.sharp.max() <= 1 and not np.allclose(c.sharp, s.sharp)

    def green_over_red(stacks):
        return sum(s.sharp[0, :, 1].mean() for s in stacks) / sum(s.sharp[0, :, 0].mean() for s in stacks)

    assert green_over_red(camera) > 1.3 * green_over_red(srgb)  # before white balance: red gains undone
    assert min(s.blurry.min() for s in camera) < 0  # noise is not clipped away


def test_every_onnx_variant_records_its_restoration_quality():
    for precision in ("fp32", "fp16", "int8"):
        quality = artefact(precision).parity["quality"]
        assert (
            quality["psnr_db"] > 20
            and abs(quality["delta_db"] - (quality["psnr_db"] - quality["torch_psnr_db"])) < 2e-3
        )
        assert (precision == "fp32") == ("tolerance_db" not in quality)
        assert 20 < quality["blurry_psnr_db"] != quality["psnr_db"] and "darker frames" in quality["scope"]
    assert abs(artefact("fp32").parity["quality"]["delta_db"]) < 1e-3


@pytest.fixture
def model_dir() -> Path:
    return exported()[0]


def test_process_tiles_an_exported_file_as_its_sidecar_says(tmp_path, model_dir, monkeypatch):
    """overlap and strategy recorded at export are what ``process --onnx`` uses (as the consumer does)."""
    from isp_collab.pipeline import Frame
    from isp_collab.pipeline.collaborative import Sharpen
    from isp_collab.restore.exposure import EXPOSURE_TARGET

    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)
    (art,) = api.export_model(
        model_dir, tile=TILE, formats=("onnx",), out_dir=tmp_path / "o", overlap=8, strategy="local"
    )
    frame = Frame(source=tmp_path / "x.png", kind="rgb", height=100, width=120, bit_depth=8)
    assert Sharpen(onnx_path=str(art.path)).restore_kwargs(frame) == dict(
        n=None, strategy="local", tile=None, overlap=8, exposure_target=EXPOSURE_TARGET
    )
    assert Sharpen(onnx_path=str(art.path), overlap=16).restore_kwargs(frame)["overlap"] == 16  # set here: wins
    assert Sharpen().restore_kwargs(frame) == dict(
        n=None, strategy="spread", tile=None, exposure_target=EXPOSURE_TARGET
    )
