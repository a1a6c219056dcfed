"""benchmarks/bench_export.py: bad options refused in one line before any export, no temporary folder left
behind, ``--keep DIR`` replacing nothing without ``--overwrite``, and a Command line that repeats the run."""

import tempfile

import pytest

import isp_collab.export as export_package


@pytest.fixture
def script(load_benchmark, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where bench-export-* folders would be left
    (tmp_path / "tmp").mkdir()
    return load_benchmark("bench_export")


def _left(tmp_path):
    return sorted(p.name for p in (tmp_path / "tmp").iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stacks", "0"], "--stacks must be >= 1, got 0"),
        (["--runs", "0"], "--runs must be >= 1, got 0"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--n", "0"], "--n must be >= 1, got 0"),
        (["--calibration-stacks", "0"], "--calibration-stacks must be >= 1, got 0"),
        (["--tile", "-64"], "--tile must be >= 1, got -64"),
        (["--tile", "60"], "tile must be a positive multiple of 8"),
        (["--model", "nope"], "nope: no such model"),
        (["--overwrite"], "--overwrite applies to the artefacts of --keep DIR only"),
    ],
)
def test_bad_options_are_one_line_before_any_export(tmp_path, capsys, monkeypatch, script, args, message):
    exported = []
    real = export_package.export_model
    monkeypatch.setattr(export_package, "export_model", lambda *a, **k: exported.append(1) or real(*a, **k))
    with pytest.raises(SystemExit) as stop:
        script.main([*args, "--no-coreml"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and message in err, err
    assert _left(tmp_path) == [] and len(exported) <= 1  # only export_model's own up-front refusals ran it


def test_a_failure_after_the_export_leaves_no_temporary_folder(tmp_path, monkeypatch, script):
    def export_then_fail(model, out_dir, **kwargs):
        (out_dir / "model.onnx").write_bytes(b"onnx")
        raise RuntimeError("the parity check failed")

    monkeypatch.setattr(export_package, "export_model", export_then_fail)
    with pytest.raises(RuntimeError, match="parity"):
        script.main(["--model", "sharpen-unet-tx-n1", "--n", "1", "--no-coreml"])
    assert _left(tmp_path) == []


def test_keep_replaces_no_artefact_without_overwrite(tmp_path, capsys, monkeypatch, script):
    from isp_collab.export.plan import artefact_name
    from isp_collab.export.sidecar import artefact_stem

    keep = tmp_path / "keep"
    keep.mkdir()
    mine = keep / artefact_name(artefact_stem("sharpen-unet-tx-n1", 1, 64), "onnx", "fp32")
    mine.write_bytes(b"my export")
    real = export_package.export_model

    def fp32_only(*args, **kwargs):  # refuses an existing artefact up front unless overwrite
        real(*args, **{**kwargs, "precisions": ("fp32",)})
        raise RuntimeError("exported over it")

    monkeypatch.setattr(export_package, "export_model", fp32_only)
    argv = ["--model", "sharpen-unet-tx-n1", "--n", "1", "--tile", "64", "--no-coreml", "--keep", str(keep)]
    with pytest.raises(SystemExit) as stop:
        script.main(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and f"{mine}: already exists (pass --overwrite to replace it)" in err
    assert mine.read_bytes() == b"my export"


def test_the_command_line_repeats_every_option(script):
    args = script.argparse.Namespace(
        model="m",
        n=4,
        tile=256,
        stacks=16,
        calibration_stacks=3,
        runs=20,
        threads=1,
        no_coreml=True,
        keep="k",
        overwrite=True,
    )
    assert script.command_line(args) == (
        ".venv/bin/python benchmarks/bench_export.py --model m --n 4 --tile 256 --stacks 16 --calibration-stacks 3 "
        "--runs 20 --threads 1 --no-coreml --keep k --overwrite"
    )
