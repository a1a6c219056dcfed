"""``isp-collab process``: the bad-input corpus (one line naming the file, exit 2, nothing written) and batches."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pipeline_dng import random_mosaic, write_dng
from test_pipeline_io import description, write_headerless

from isp_collab.cli import main


def run(capsys, *args: str) -> tuple[int, list[str], str]:
    """Run ``isp-collab process ARGS``; returns exit code, non-empty stderr lines, stdout."""
    code = main(["process", *map(str, args)])
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    write_dng(folder / "good.dng", random_mosaic(12, shape=(32, 48)), "GRBG", 12, 64)
    cv2.imwrite(str(folder / "good.png"), np.random.default_rng(0).integers(0, 256, (24, 32, 3)).astype(np.uint8))
    return folder


def _headerless(folder: Path, name: str, **change) -> Path:
    raw = write_headerless(folder, np.zeros((32, 48)), description(), name=name)
    if change:
        (folder / f"{name}.json").write_text(json.dumps(description(**change)))
    return raw


def bad_case(name: str, folder: Path) -> tuple[Path, list[str], str]:
    """Make bad input ``name`` in ``folder``: (input path, extra args, expected reason regex)."""
    good = folder / "good.dng"
    if name == "missing file":
        return folder / "nope.dng", [], "no such file"
    if name == "zero-byte file":
        (p := folder / "empty.dng").write_bytes(b"")
        return p, [], r"empty file \(0 bytes\)"
    if name == "truncated DNG":
        (p := folder / "cut.dng").write_bytes(good.read_bytes()[:700])
        return p, [], "truncated or corrupt|truncated RAW file|not a RAW file|cannot read as RAW"
    if name == "text file named .dng":
        (p := folder / "notes.dng").write_text("hello, I am not a raw file\n")
        return p, [], "a text file, not a RAW file"
    if name == "random bytes named .nef":
        (p := folder / "noise.nef").write_bytes(
            np.random.default_rng(0).integers(0, 256, 5000).astype(np.uint8).tobytes()
        )
        return p, [], "not a RAW file LibRaw can read|cannot read as RAW"
    if name == "PNG named .dng":
        (p := folder / "image.dng").write_bytes((folder / "good.png").read_bytes())
        return p, [], "not a RAW file LibRaw can read|cannot read as RAW"
    if name == "unsupported extension":
        (p := folder / "doc.xyz").write_bytes(b"abc")
        return p, [], "unsupported file type '.xyz'"
    if name == "corrupt PNG":
        (p := folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
        return p, [], "cannot (read|decode) image"
    if name == "truncated PNG":
        (p := folder / "half.png").write_bytes((folder / "good.png").read_bytes()[:200])
        return p, [], "cannot (read|decode) image"
    if name == "headerless size mismatch":
        return _headerless(folder, "size", width=40), [], "file has 3072 bytes but size.json describes"
    if name == "headerless bad JSON":
        p = _headerless(folder, "json")
        (folder / "json.json").write_text('{"width": 48, "height": ')
        return p, [], r"json\.json: not a valid JSON sensor description"
    if name == "headerless missing key":
        p = _headerless(folder, "key")
        d = description()
        del d["cfa_pattern"]
        (folder / "key.json").write_text(json.dumps(d))
        return p, [], "missing key 'cfa_pattern'"
    if name == "headerless without description":
        (p := folder / "bare.raw").write_bytes(bytes(3072))
        return p, [], r"needs bare\.json or \.toml beside it"
    if name == "pixel cap (RAW)":
        return good, ["--max-pixels", "1000"], "exceeds the pixel cap"
    if name == "pixel cap (PNG)":
        return folder / "good.png", ["--max-pixels", "100"], "exceeds the pixel cap"
    if name == "pixel cap (headerless)":
        return _headerless(folder, "big"), ["--max-pixels", "1000"], "exceeds the pixel cap"
    raise AssertionError(name)


BAD_INPUTS = [
    "missing file",
    "zero-byte file",
    "truncated DNG",
    "text file named .dng",
    "random bytes named .nef",
    "PNG named .dng",
    "unsupported extension",
    "corrupt PNG",
    "truncated PNG",
    "headerless size mismatch",
    "headerless bad JSON",
    "headerless missing key",
    "headerless without description",
    "pixel cap (RAW)",
    "pixel cap (PNG)",
    "pixel cap (headerless)",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_line_exit_2_and_no_output(capsys, tmp_path, inputs, case):
    src, extra, reason = bad_case(case, inputs)
    out = tmp_path / "out"
    code, err, _ = run(capsys, src, "-o", out / "result.png", "--stages", "none", "--compare", *extra)
    assert code == 2, err
    assert len(err) == 1, err
    assert src.name in err[0] and err[0].startswith("isp-collab process: error: ")

    assert re.search(reason, err[0]), err[0]
    assert not out.exists() or files_under(out) == []


def test_existing_output_is_not_overwritten(capsys, tmp_path, inputs):
    dst = tmp_path / "result.png"
    dst.write_bytes(b"precious")
    code, err, _ = run(capsys, inputs / "good.png", "-o", dst, "--stages", "none")
    assert code == 2 and len(err) == 1 and "result.png: output exists (pass --overwrite" in err[0]
    assert dst.read_bytes() == b"precious"
    code, err, _ = run(capsys, inputs / "good.png", "-o", dst, "--stages", "none", "--overwrite")
    assert code == 0 and dst.read_bytes()[:4] == b"\x89PNG"


def test_existing_compare_output_blocks_before_any_work(capsys, tmp_path, inputs):
    (tmp_path / "r_compare.png").write_bytes(b"precious")
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "r.png", "--stages", "none", "--compare")
    assert code == 2 and "r_compare.png: output exists" in err[0]
    assert (tmp_path / "r_compare.png").read_bytes() == b"precious"
    assert not (tmp_path / "r.png").exists()


def test_output_under_a_file_is_refused(capsys, tmp_path, inputs):
    (tmp_path / "blocker").write_text("x")
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "blocker" / "r.png", "--stages", "none")
    assert (
        code == 2 and len(err) == 1 and "r.png: cannot create output" in err[0] and "blocker is not a folder" in err[0]
    )


def test_unwritable_output_folder(capsys, tmp_path, inputs, monkeypatch):
    import isp_collab.pipeline.io as pio

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pio.tempfile, "mkstemp", refuse)  # as root, chmod cannot make a folder unwritable
    out = tmp_path / "locked"
    code, err, _ = run(capsys, inputs / "good.png", "-o", out / "r.png", "--stages", "none")
    assert code == 2 and len(err) == 1 and "r.png: cannot write to" in err[0] and "Permission denied" in err[0]
    assert not out.exists() or files_under(out) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(capsys, tmp_path, inputs):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        code, err, _ = run(capsys, inputs / "good.png", "-o", out / "r.png", "--stages", "none")
    finally:
        out.chmod(0o700)
    assert code == 2 and "r.png: cannot write" in err[0] and files_under(out) == []


def test_unsupported_output_type(capsys, tmp_path, inputs):
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "r.bmp", "--stages", "none")
    assert code == 2 and err[0].startswith(f"isp-collab process: error: {tmp_path / 'r.bmp'}: cannot write '.bmp'")
    assert not (tmp_path / "r.bmp").exists()


def test_bad_config_and_model_are_reported_once(capsys, tmp_path, inputs):
    cfg = tmp_path / "p.toml"
    cfg.write_text("[sharpen]\nmodle = 1\n")
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "r.png", "--config", cfg)
    assert code == 2 and len(err) == 1 and "p.toml: [sharpen] has unknown key 'modle'" in err[0]
    code, err, _ = run(capsys, inputs, "-o", tmp_path / "o", "--model", tmp_path / "no-model")
    assert code == 2 and len(err) == 1 and "no-model" in err[0]
    assert not (tmp_path / "o").exists() and not (tmp_path / "r.png").exists()


def test_batch_reports_bad_files_by_name_and_finishes_the_others(capsys, tmp_path, inputs):
    (inputs / "broken.dng").write_text("not raw")
    _headerless(inputs, "bench")
    out = tmp_path / "out"
    code, err, stdout = run(capsys, inputs, "-o", out, "--stages", "none", "--compare", "--timings")
    assert code == 2
    assert [line for line in err if "error" in line] == [
        f"isp-collab process: error: {inputs / 'broken.dng'}: a text file, not a RAW file"
    ]
    assert "3 of 4 files processed, 1 failed" in err[-1]
    expected = [
        "bench.png",
        "bench_compare.png",
        "good.png",
        "good_compare.png",
        "good_png.png",
        "good_png_compare.png",
    ]
    assert files_under(out) == expected
    assert "demosaic" in stdout and "good_png.png" in stdout
    for name in expected:
        assert cv2.imread(str(out / name)) is not None


def test_process_raw_with_identity_model(capsys, tmp_path, inputs):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from isp_collab.models import create_model, save_model

    model = save_model(create_model("unet-tx", n=4), tmp_path / "identity", {"task": "sharpen", "n_trained": 4})
    src = inputs / "good.dng"
    code, err, _ = run(capsys, src, "-o", tmp_path / "none.png", "--stages", "none")
    assert code == 0, err
    args = ["--model", model, "--n", "4", "--tile", "16", "--stages", "sharpen,lens,unsharp"]
    code, err, _ = run(capsys, src, "-o", tmp_path / "sharp.tif", *args, "--lens-model", model, "--compare")
    assert code == 0, err
    plain = cv2.imread(str(tmp_path / "none.png"), cv2.IMREAD_UNCHANGED)
    sharp = cv2.imread(str(tmp_path / "sharp.tif"), cv2.IMREAD_UNCHANGED)
    assert plain.dtype == np.uint8 and sharp.dtype == np.uint16 and sharp.shape == plain.shape == (32, 48, 3)
    assert (tmp_path / "sharp_compare.png").is_file()
    code, err, _ = run(capsys, src, "-o", tmp_path / "x.png", "--stages", "sharpen,blur")
    assert code == 2 and "unknown stage 'blur'" in err[0]
