"""``isp-collab process``: how outputs are named (never colliding, never replacing an input) and checked before
any file is decoded."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pipeline_cli import _png, files_under, make_inputs, run


@pytest.fixture
def inputs(tmp_path) -> Path:
    return make_inputs(tmp_path)


def test_output_mode_follows_the_arguments_not_the_file_count(capsys, tmp_path):
    folder = tmp_path / "one"
    _png(folder / "a.png", 0)
    # a folder input is folder mode even when it holds one file
    code, err, _ = run(capsys, folder, "-o", tmp_path / "outA", "--stages", "none")
    assert code == 0 and files_under(tmp_path / "outA") == ["a.png"], err
    code, err, _ = run(capsys, folder, "-o", tmp_path / "x.png", "--stages", "none")
    assert code == 2 and err == [
        f"isp-collab process: error: {folder}: a folder input needs an output "
        f"folder, not an image file name ({tmp_path / 'x.png'})"
    ]
    (link := tmp_path / "in.png").symlink_to(folder)  # a folder (here a link to one) named like an image: named
    code, err, _ = run(capsys, link, "-o", tmp_path / "x.png", "--stages", "none")
    assert code == 2 and err[0].startswith(f"isp-collab process: error: {link}: a folder input needs an output folder")
    assert not (tmp_path / "x.png").exists()
    # several files and an image file name: refused, not turned into a folder called x.png
    _png(tmp_path / "b.png", 1)
    code, err, _ = run(capsys, folder / "a.png", tmp_path / "b.png", "-o", tmp_path / "x.png", "--stages", "none")
    assert code == 2 and "2 inputs need an output folder" in err[0] and not (tmp_path / "x.png").exists()
    # one file and a name without suffix: a folder
    code, err, _ = run(capsys, folder / "a.png", "-o", tmp_path / "outB", "--stages", "none")
    assert code == 0 and files_under(tmp_path / "outB") == ["a.png"], err
    code, err, _ = run(capsys, folder / "a.png", "-o", tmp_path / "y.png", "--format", "jpg", "--stages", "none")
    assert code == 2 and err[0].endswith(f"--format jpg contradicts the output file name {tmp_path / 'y.png'}")


def test_empty_folder_is_one_failed_input_and_the_batch_goes_on(capsys, tmp_path):
    _png(tmp_path / "in" / "a.png", 0)
    (empty := tmp_path / "empty").mkdir()
    code, err, _ = run(capsys, tmp_path / "in", empty, "-o", tmp_path / "out", "--stages", "none")
    assert code == 2 and files_under(tmp_path / "out") == ["a.png"]
    assert (
        err[0]
        == f"isp-collab process: error: {empty}: folder holds no file to process (RAW, PNG/JPEG/TIFF or described .raw)"
    )
    assert err[-1] == "isp-collab process: 1 of 2 inputs processed, 1 failed"


def test_impossible_output_format_is_refused_before_any_decoding(capsys, tmp_path):
    (src := tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    code, err, _ = run(capsys, src, "-o", tmp_path / "x.jpg", "--bit-depth", "16", "--stages", "none")
    assert code == 2 and len(err) == 1 and err[0].endswith(".jpg cannot hold 16-bit samples (8-bit only)"), err
    code, err, _ = run(
        capsys, src, src, "-o", tmp_path / "o", "--format", "jpg", "--bit-depth", "16", "--stages", "none"
    )  # said of the two flags, not of one of the files it would write
    assert err == ["isp-collab process: error: --format jpg cannot hold --bit-depth 16 samples (8-bit only)"], err
    assert code == 2
    assert not (tmp_path / "o").exists()


def test_a_file_named_twice_or_inside_a_named_folder_is_processed_once(capsys, tmp_path):
    folder = tmp_path / "in"
    _png(folder / "a.png", 0)
    _png(folder / "b.png", 1)
    code, err, out = run(capsys, folder / "a.png", folder, folder / "a.png", "-o", tmp_path / "out", "--stages", "none")
    assert code == 0 and files_under(tmp_path / "out") == ["a.png", "b.png"], err
    assert len([line for line in out.splitlines() if line.strip()]) == 2, out


@pytest.mark.parametrize("overwrite", [False, True])
def test_batch_output_names_never_collide(capsys, tmp_path, overwrite):
    pixels = [_png(tmp_path / f"d{i}" / "a.png", i) for i in range(3)]
    out = tmp_path / "coll"
    flags = ["--stages", "none", *(["--overwrite"] if overwrite else [])]
    code, err, _ = run(capsys, *(tmp_path / f"d{i}" / "a.png" for i in range(3)), "-o", out, *flags)
    assert code == 0, err
    assert files_under(out) == ["a.png", "a_png.png", "a_png_2.png"]
    for name, expected in zip(["a.png", "a_png.png", "a_png_2.png"], pixels, strict=True):
        np.testing.assert_array_equal(cv2.imread(str(out / name)), expected)  # each input kept its own output


def test_compare_files_never_collide_with_outputs(capsys, tmp_path):
    folder = tmp_path / "in"
    a, a_compare = _png(folder / "a.png", 0), _png(folder / "a_compare.png", 1)
    out = tmp_path / "out"
    code, err, stdout = run(capsys, folder, "-o", out, "--stages", "none", "--compare", "--overwrite")
    assert code == 0, err
    assert files_under(out) == ["a.png", "a_compare.png", "a_compare_2.png", "a_compare_2_compare.png"]
    np.testing.assert_array_equal(cv2.imread(str(out / "a.png")), a)
    np.testing.assert_array_equal(cv2.imread(str(out / "a_compare_2.png")), a_compare)
    assert cv2.imread(str(out / "a_compare.png")).shape != a.shape  # a's before/after crop, not an image


def test_outputs_never_replace_another_input_of_the_run(capsys, tmp_path, inputs):
    before = (inputs / "good.png").read_bytes()
    # a folder processed into itself: a re-run would read the results back as inputs
    code, err, _ = run(capsys, inputs, "-o", inputs, "--stages", "none", "--overwrite")
    assert code == 2 and len(err) == 1 and "the output folder is also an input folder" in err[0], err
    assert files_under(inputs) == ["good.dng", "good.png"]
    # its files named one by one may go there; a re-run with --overwrite replaces, never multiplies
    for _ in range(2):
        code, err, _ = run(
            capsys, inputs / "good.dng", inputs / "good.png", "-o", inputs, "--stages", "none", "--overwrite"
        )
        assert code == 0, err
        assert (inputs / "good.png").read_bytes() == before  # good.dng's output went elsewhere
        assert files_under(inputs) == ["good.dng", "good.png", "good_2.png", "good_png.png"]
    (src := tmp_path / "r_compare.png").write_bytes(before)
    code, err, _ = run(capsys, src, "-o", tmp_path / "r.png", "--stages", "none", "--compare", "--overwrite")
    assert code == 2 and len(err) == 1 and "r_compare.png: the compare image would replace the input" in err[0]
    assert src.read_bytes() == before and not (tmp_path / "r.png").exists()


def test_an_output_never_replaces_its_own_input_even_with_overwrite(capsys, tmp_path, inputs):
    src = inputs / "good.png"
    before = src.read_bytes()
    code, err, _ = run(capsys, src, "-o", src, "--stages", "none", "--overwrite")
    assert code == 2 and len(err) == 1 and f"{src}: the output would replace its own input" in err[0], err
    link = tmp_path / "link.png"  # the same file under another name
    link.symlink_to(src)
    code, err, _ = run(capsys, src, "-o", link, "--stages", "none", "--overwrite")
    assert code == 2 and "would replace its own input" in err[0], err
    # an input named into the folder it sits in: refused too (renaming it would make re-runs multiply files)
    code, err, _ = run(capsys, src, inputs / "good.dng", "-o", inputs, "--stages", "none", "--overwrite")
    assert code == 2 and len(err) == 1 and "choose another output folder" in err[0], err
    assert src.read_bytes() == before and files_under(inputs) == ["good.dng", "good.png"]
    # names that differ only in case are two files on a case-sensitive file system: that is allowed there
    upper = tmp_path / "UP.PNG"
    upper.write_bytes(before)
    if not (tmp_path / "up.png").exists():
        code, err, _ = run(capsys, upper, "-o", tmp_path / "up.png", "--stages", "none")
        assert code == 0 and upper.read_bytes() == before, err
