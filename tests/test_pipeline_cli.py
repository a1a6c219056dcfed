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
from test_pipeline_headerless_decode import description, write_headerless

from isp_collab.cli import main


def run(capsys, *args: str) -> tuple[int, list[str], str]:
    """Run ``isp-collab process ARGS``; returns exit code, non-empty stderr lines, stdout."""
    code = main(["process", *map(str, args)])
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def make_inputs(tmp_path: Path) -> Path:
    """``tmp_path/in`` with a small DNG (``good.dng``) and a small PNG (``good.png``)."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_dng(folder / "good.dng", random_mosaic(12, shape=(32, 48)), "GRBG", 12, 64)
    cv2.imwrite(str(folder / "good.png"), np.random.default_rng(0).integers(0, 256, (24, 32, 3)).astype(np.uint8))
    return folder


@pytest.fixture
def inputs(tmp_path) -> Path:
    return make_inputs(tmp_path)


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
    if name == "PNG cut before IEND":  # Pillow reads the header; libpng fails in the decoder, printing on fd 2
        (p := folder / "noend.png").write_bytes((folder / "good.png").read_bytes()[:-12])
        return p, [], r"cannot decode image \(truncated or corrupt; libpng error: PNG input buffer is incomplete\)"
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
    "PNG cut before IEND",
    "headerless size mismatch",
    "headerless bad JSON",
    "headerless missing key",
    "headerless without description",
    "pixel cap (RAW)",
    "pixel cap (PNG)",
    "pixel cap (headerless)",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_line_exit_2_and_no_output(capfd, tmp_path, inputs, case):
    # capfd: what C libraries (libpng, LibRaw) print on file descriptor 2 counts as a line too
    src, extra, reason = bad_case(case, inputs)
    out = tmp_path / "out"
    out.mkdir()
    code, err, _ = run(capfd, src, "-o", out / "result.png", "--stages", "none", "--compare", *extra)
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
    assert code == 2 and len(err) == 1 and "r.png: " in err[0] and "blocker is a file, not a folder" in err[0]


@pytest.mark.parametrize("named", [True, False])
def test_output_in_a_missing_folder_is_refused_not_created(capsys, tmp_path, inputs, named):
    """A typo in -o must not create a tree of folders: a named file needs its folder, an output
    folder its parent (as gather and the ONNX consumer)."""
    if named:
        dst, expected = tmp_path / "typo" / "sub" / "r.png", "output folder"
        code, err, _ = run(capsys, inputs / "good.png", "-o", dst, "--stages", "none")
    else:
        dst, expected = tmp_path / "typo" / "sub", "parent folder"
        code, err, _ = run(capsys, inputs, "-o", dst, "--stages", "none")
    assert code == 2 and len(err) == 1, err
    assert f"{dst}: {expected} {dst.parent} does not exist" in err[0]
    assert not (tmp_path / "typo").exists()
    code, err, _ = run(capsys, inputs, "-o", tmp_path / "new", "--stages", "none")  # one new folder is fine
    assert code == 0 and len(files_under(tmp_path / "new")) == 2


def test_unwritable_output_folder_is_refused_before_any_decoding(capsys, tmp_path, inputs, monkeypatch):
    import isp_collab.atomic as atomic
    import isp_collab.pipeline.pipeline as pp

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def no_decoding(*args, **kwargs):
        raise AssertionError("a file was decoded before the output folder was found unwritable")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)  # as root, chmod cannot make a folder unwritable
    monkeypatch.setattr(pp.Pipeline, "read", no_decoding)
    out = tmp_path / "locked"
    out.mkdir()
    code, err, _ = run(capsys, inputs / "good.png", "-o", out / "r.png", "--stages", "none")
    assert err == [f"isp-collab process: error: {out}: cannot write to this output folder (Permission denied)"]
    assert code == 2 and files_under(out) == []
    new = tmp_path / "new"  # folder mode: the folder to be created is probed where it would be made
    code, err, _ = run(capsys, inputs, "-o", new, "--stages", "none")
    assert err == [
        f"isp-collab process: error: {new}: cannot create this output folder in {tmp_path} (Permission denied)"
    ]
    assert code == 2 and not new.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(capsys, tmp_path, inputs):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        code, err, _ = run(capsys, inputs / "good.png", "-o", out / "r.png", "--stages", "none")
    finally:
        out.chmod(0o700)
    assert code == 2 and f"{out}: cannot write to this output folder" in err[0] and files_under(out) == []


def test_process_file_checks_its_folder_before_decoding(tmp_path, inputs, monkeypatch):
    import isp_collab.atomic as atomic
    from isp_collab.pipeline import OutputError, Pipeline

    monkeypatch.setattr(Pipeline, "read", lambda *a, **k: pytest.fail("decoded before the folder check"))
    monkeypatch.setattr(
        atomic.tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied"))
    )
    with pytest.raises(OutputError, match="cannot write to this output folder"):
        Pipeline().process_file(inputs / "good.png", tmp_path / "r.png")


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
    assert "3 of 4 inputs processed, 1 failed" in err[-1]
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
    import torch

    torch.set_num_threads(1)
    from isp_collab.models import create_model, save_model

    net = create_model("unet-tx", n=4)
    model = save_model(net, tmp_path / "identity", {"task": "sharpen", "n_trained": 4})
    lens_model = save_model(net, tmp_path / "identity-lens", {"task": "lens", "n_trained": 4})
    src = inputs / "good.dng"
    code, err, _ = run(capsys, src, "-o", tmp_path / "none.png", "--stages", "none")
    assert code == 0, err
    args = ["--model", model, "--n", "4", "--tile", "16", "--stages", "sharpen,lens,unsharp"]
    code, err, _ = run(capsys, src, "-o", tmp_path / "wrong.tif", *args, "--lens-model", model)
    assert code == 2 and len(err) == 1 and "a 'sharpen' model cannot run the lens stage" in err[0], err
    assert "identity/card.json" in err[0] and not (tmp_path / "wrong.tif").exists()
    assert err[0].endswith(f"(it needs a 'lens' model); run it with --stages sharpen --model {model}"), err
    code, err, _ = run(capsys, src, "-o", tmp_path / "sharp.tif", *args, "--lens-model", lens_model, "--compare")
    assert code == 0, err
    plain = cv2.imread(str(tmp_path / "none.png"), cv2.IMREAD_UNCHANGED)
    sharp = cv2.imread(str(tmp_path / "sharp.tif"), cv2.IMREAD_UNCHANGED)
    assert plain.dtype == np.uint8 and sharp.dtype == np.uint16 and sharp.shape == plain.shape == (32, 48, 3)
    assert (tmp_path / "sharp_compare.png").is_file()
    # an identity network changes nothing: the sharpen stage alone writes the unsharpened image
    code, err, _ = run(capsys, src, "-o", tmp_path / "same.png", "--model", model, "--n", "4", "--tile", "16")
    assert code == 0, err
    same = cv2.imread(str(tmp_path / "same.png"), cv2.IMREAD_UNCHANGED)
    assert np.abs(same.astype(int) - plain.astype(int)).max() <= 1
    code, err, _ = run(capsys, src, "-o", tmp_path / "x.png", "--stages", "sharpen,blur")
    assert code == 2 and "unknown stage 'blur'" in err[0]


def _png(path: Path, seed: int) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 12, 3)).astype(np.uint8)
    cv2.imwrite(str(path), pixels)
    return pixels


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stages", "none,sharpen"], "'none' runs no restoration; it cannot be combined"),
        (["--demosaic", "bilinear"], "--demosaic bilinear: applies to RAW inputs, and none of the inputs is RAW"),
    ],
)
def test_options_that_cannot_apply_are_refused(capsys, tmp_path, inputs, args, message):
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "x.png", *args)
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x.png").exists()
    if "--demosaic" in args:  # with a RAW among the inputs it applies
        code, err, _ = run(
            capsys, inputs / "good.png", inputs / "good.dng", "-o", tmp_path / "o", "--stages", "none", *args
        )
        assert code == 0, err


def test_a_file_named_twice_is_processed_once_and_the_user_told(capsys, tmp_path, inputs):
    src = inputs / "good.png"
    link = tmp_path / "link.png"
    link.symlink_to(src)
    code, err, _ = run(capsys, src, src, link, "-o", tmp_path / "o", "--stages", "none")
    assert code == 0 and files_under(tmp_path / "o") == ["good.png"]
    assert err == [
        f"isp-collab process: note: {src}: the same file as {src}, processed once",
        f"isp-collab process: note: {link}: the same file as {src}, processed once",
    ]
