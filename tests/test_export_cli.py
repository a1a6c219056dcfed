"""``isp-collab export``: success output, one-line errors with exit code 2, nothing left behind."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest
from test_export_onnx import NAME, TILE, artefact, exported  # noqa: F401 (fixtures)

import isp_collab.export.api as api
import isp_collab.export.build as build
from isp_collab.cli import main
from isp_collab.export import ExportError


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["export", *args])
    out, err = capsys.readouterr()
    return code, out, err


def tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (hidden ones included)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("isp-collab export: error")]
    assert code == 2 and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], err


@pytest.fixture
def model_dir() -> Path:
    return exported()[0]


def fake_export_onnx(model, path, n, tile, **kw):
    """Stands in for the (slow) exporter: copies the session's fp32 export (same model, N and tile)."""
    shutil.copyfile(artefact("fp32").path, path)
    return {"opset": 18, "ir_version": 10, "ops": {}, "fold_max_abs": 0.0, "seconds": 0.0}


def test_success_prints_paths_and_parity(capsys, tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)  # the real exporter is tested in test_export_onnx
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        capsys, "--model", str(model_dir), "--tile", str(TILE), "--format", "onnx", "--out", str(out)
    )
    assert code == 0
    onnx_path = out / f"{NAME}-n4-t{TILE}.onnx"
    assert onnx_path.is_file() and onnx_path.with_suffix(".json").is_file()
    assert str(onnx_path) in stdout and "max|diff| vs torch" in stdout
    before = tree(out)
    # existing artefacts: refused without --overwrite, untouched
    code, _, err = run_cli(
        capsys, "--model", str(model_dir), "--tile", str(TILE), "--format", "onnx", "--out", str(out)
    )
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert tree(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(before)


def test_overwrite_replaces_package_folders(capsys, tmp_path, model_dir, monkeypatch):
    """--overwrite swaps a Core ML package folder (here a stand-in built by a fake converter)."""

    def fake_coreml(model, path, n, tile, **kw):
        Path(path).mkdir()
        (Path(path) / "Manifest.json").write_text("new")
        return {"compute_precision": "FLOAT16", "minimum_deployment_target": "iOS16", "fold_max_abs": 0.0, "seconds": 0}

    monkeypatch.setattr("isp_collab.export.coreml_export.export_coreml", fake_coreml)
    monkeypatch.setattr(
        "isp_collab.export.coreml_export.validate_mlpackage", lambda *a: {"spec_version": 7, "ops": {"conv": 21}}
    )
    out = tmp_path / "out"
    old = out / f"{NAME}-n4-t{TILE}-coreml-fp16.mlpackage"
    old.mkdir(parents=True)
    (old / "stale.bin").write_text("old")
    args = ("--model", str(model_dir), "--tile", str(TILE), "--format", "coreml", "--out", str(out))
    code, _, err = run_cli(capsys, *args, "--overwrite")  # a folder that is no package: never replaced
    assert_one_line_error(code, err, "a folder is there, not an exported artefact; not replaced, even with --overwrite")
    (old / "Manifest.json").write_text("old")
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "already exists")
    assert (old / "stale.bin").is_file()
    code, stdout, _ = run_cli(capsys, *args, "--overwrite")
    assert code == 0 and "coreml fp16" in stdout
    assert sorted(p.name for p in old.iterdir()) == ["Manifest.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted([old.name, old.with_suffix(".json").name])


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--model", "no-such-model"], ["no-such-model"]),
        (["--n", "0"], ["error: --n must be", "0"]),
        (["--tile", "100"], ["error: --tile must be a positive multiple of 8", "100"]),
        (["--tile", "0"], ["error: --tile must be"]),
        (["--tile", "8192"], ["error: --tile must be at most 4096", "8192"]),
        (["--overlap", "200"], ["error: --overlap must be in [0, tile // 2", "200"]),
        (["--format", "tflite"], ["unknown export format", "tflite"]),
        (["--precision", "int4"], ["unknown precision", "int4"]),
        (["--format", "coreml", "--precision", "int8"], ["nothing to export"]),
    ],
)
def test_bad_arguments(capsys, tmp_path, model_dir, args, needles):
    out = tmp_path / "out"
    if "--model" not in args:
        args = ["--model", str(model_dir), *args]
    code, _, err = run_cli(capsys, *args, "--out", str(out))
    assert_one_line_error(code, err, *needles)
    assert not out.exists()


def test_out_folder_is_created_but_not_a_tree_of_folders(capsys, tmp_path, model_dir, monkeypatch):
    """A typo in --out must not create folders in silence: only the last component may be new."""
    nested = tmp_path / "typo" / "out"
    code, _, err = run_cli(capsys, "--model", str(model_dir), "--tile", str(TILE), "--out", str(nested))
    assert_one_line_error(code, err, f"{nested}: parent folder {nested.parent} does not exist")
    assert not (tmp_path / "typo").exists()
    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)
    out = tmp_path / "out"
    code, *_ = run_cli(capsys, "--model", str(model_dir), "--tile", str(TILE), "--format", "onnx", "--out", str(out))
    assert code == 0 and out.is_dir()


@pytest.mark.parametrize("name", ["model.onnx", "m.mlpackage", "m.json"])
def test_out_named_like_a_file_is_refused(capsys, tmp_path, model_dir, name):
    """--out model.onnx made a folder called model.onnx with the files inside."""
    out = tmp_path / name
    code, _, err = run_cli(capsys, "--model", str(model_dir), "--tile", str(TILE), "--out", str(out))
    assert code == 2 and f"{out}: a file name; --out is the folder the files go to" in err
    assert not out.exists()


def test_stack_size_is_capped_like_the_other_commands(capsys, tmp_path, model_dir):
    from isp_collab.restore.tiling import MAX_N

    code, _, err = run_cli(
        capsys, "--model", str(model_dir), "--n", str(MAX_N + 1), "--tile", str(TILE), "--out", str(tmp_path / "o")
    )
    assert_one_line_error(code, err, f"--n must be an integer between 1 and {MAX_N}, got {MAX_N + 1}")
    assert not (tmp_path / "o").exists()


def test_unwritable_out_folder(capsys, tmp_path, model_dir):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):  # a file, and a folder below a file (fails even for root)
        code, _, err = run_cli(capsys, "--model", str(model_dir), "--tile", str(TILE), "--out", str(out))
        assert_one_line_error(code, err, str(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_other_n_warns(capsys, tmp_path, model_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{NAME}-n2-t{TILE}.onnx").write_text("keep me")
    code, _, err = run_cli(
        capsys, "--model", str(model_dir), "--n", "2", "--tile", str(TILE), "--format", "onnx", "--out", str(out)
    )
    assert "quality at N=2 was not validated" in err
    assert_one_line_error(code, err, "already exists")
    assert (out / f"{NAME}-n2-t{TILE}.onnx").read_text() == "keep me"


def test_failure_mid_export_leaves_nothing(tmp_path, model_dir, monkeypatch, capsys):
    """A crash after artefacts were built in the temp folder, and a failed parity check: nothing written."""
    out = tmp_path / "a" / "out"

    def broken_int8(src, dst, reader, **kw):
        Path(dst).write_bytes(b"half-written")
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)
    monkeypatch.setattr("isp_collab.export.quantize.quantize_int8", broken_int8)
    with pytest.raises(RuntimeError, match="disk full"):
        api.export_model(model_dir, tile=TILE, formats=("onnx",), precisions=("fp32", "fp16", "int8"), out_dir=out)
    assert not (tmp_path / "a").exists()

    bad = {"random": {"max_abs": 0.5, "mean_abs": 0.1, "psnr_db": 10.0}, "real": {"max_abs": 0.5, "psnr_db": 10.0}}
    monkeypatch.setattr("isp_collab.export.parity.measure_parity", lambda *a, **k: dict(bad))
    with pytest.raises(ExportError, match="differs from PyTorch"):
        api.export_model(model_dir, tile=TILE, formats=("onnx",), out_dir=out)
    assert not (tmp_path / "a").exists()
    cli_out = tmp_path / "out"  # the CLI creates only the last folder of --out
    code, _, err = run_cli(
        capsys, "--model", str(model_dir), "--tile", str(TILE), "--format", "onnx", "--out", str(cli_out)
    )
    assert_one_line_error(code, err, "differs from PyTorch")
    assert not (tmp_path / "a").exists() and not cli_out.exists()


def test_sigterm_mid_export_cleans_up_like_ctrl_c(tmp_path, model_dir, monkeypatch, capsys):
    """kill (SIGTERM) during an export: exit 143 (128 + SIGTERM), no temporary folder or partial artefact left."""
    import os
    import signal
    import time

    def killed(model, path, n, tile, **kw):
        Path(path).write_bytes(b"half-written")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("SIGTERM did not interrupt the export")

    monkeypatch.setattr(build, "export_onnx", killed)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "--model", str(model_dir), "--tile", str(TILE), "--format", "onnx", "--out", str(out)
    )
    assert code == 143 and "terminated" in err
    assert not out.exists()
    assert signal.getsignal(signal.SIGTERM) is before  # restored for the caller


def _card_copy(model_dir: Path, dest: Path, **changes) -> Path:
    """A copy of the test model whose card has ``changes``."""
    shutil.copytree(model_dir, dest)
    card = json.loads((dest / "card.json").read_text())
    (dest / "card.json").write_text(json.dumps({**card, **changes}))
    return dest


def test_default_n_is_the_trained_one_and_the_sidecar_carries_provenance(tmp_path, model_dir, monkeypatch):
    seen = {}

    def fake_build(model, info, plan, tmp, stem, n, *rest):  # records what would be built
        seen.update(info=info, stem=stem, n=n)
        return []

    monkeypatch.setattr(api, "build_artefacts", fake_build)
    validation = {"mean_psnr": 34.2, "mean_blurry": 31.5, "restored": {}, "blurry": {}}
    m = _card_copy(model_dir, tmp_path / "m", n_trained=2, steps=3000, recipe_sha256="ab", validation=validation)
    api.export_model(m, tile=TILE, formats=("onnx",), out_dir=tmp_path / "o")
    assert seen["n"] == 2 and seen["stem"].endswith(f"-n2-t{TILE}")  # not 4: the card's N
    assert seen["info"]["training"] == {"recipe_sha256": "ab", "steps": 3000}
    assert seen["info"]["validation"] == validation
    # a mirror-gathered (lens) export at a stack size that splits mirror orbits says why
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.export_model(m, n=3, tile=TILE, formats=("onnx",), out_dir=tmp_path / "o", strategy="mirror")
    said = [str(w.message) for w in caught]
    assert any("stack size 3 with mirror gathering" in w for w in said) and any("not validated" in w for w in said)


def test_a_missing_coremltools_is_one_line_and_leaves_nothing(capsys, tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)
    monkeypatch.setitem(sys.modules, "coremltools", None)  # import coremltools -> ImportError
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "--model", str(model_dir), "--tile", str(TILE), "--out", str(out))
    assert_one_line_error(code, err, "Core ML export needs coremltools", "--format onnx")
    assert "Traceback" not in err and tree(out) == {}


def test_overlap_and_strategy_reach_the_sidecar_and_another_strategy_is_said(capsys, tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr(build, "export_onnx", fake_export_onnx)
    out = tmp_path / "out"
    args = ["--model", str(model_dir), "--tile", str(TILE), "--format", "onnx", "--out", str(out)]
    code, _, err = run_cli(capsys, *args, "--overlap", "8", "--strategy", "local")
    assert code == 0, err
    assert f"{NAME} is meant to run with spread stacks; the sidecar will tell runtimes to gather local" in err
    tiling = json.loads((out / f"{NAME}-n4-t{TILE}.json").read_text())["tiling"]
    assert tiling["overlap"] == 8 and tiling["strategy"] == "local"


@pytest.mark.parametrize("name", ["../evil", "sub/evil"])
def test_a_card_name_that_is_a_path_is_refused_and_nothing_is_written(capsys, tmp_path, model_dir, name):
    """The card's name makes the files' names: '../evil' wrote beside --out, replacing files there unasked."""
    model = tmp_path / "models" / "m"
    shutil.copytree(model_dir, model)
    card = json.loads((model / "card.json").read_text())
    (model / "card.json").write_text(json.dumps({**card, "name": name}))
    before = tree(tmp_path)
    code, _, err = run_cli(
        capsys, "--model", str(model), "--tile", str(TILE), "--format", "onnx", "--out", str(tmp_path / "out")
    )
    assert_one_line_error(code, err, "card.json", "name must be a plain file name")
    assert tree(tmp_path) == before
