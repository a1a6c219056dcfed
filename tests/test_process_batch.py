"""``isp-collab process`` over batches: --skip-existing re-runs, notes about what a batch leaves out, interrupts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pipeline_cli import _png, files_under, make_inputs, run


@pytest.fixture
def inputs(tmp_path) -> Path:
    return make_inputs(tmp_path)


def test_skip_existing_processes_only_the_new_inputs(capsys, tmp_path, inputs):
    """A re-run into the same folder: without a flag every existing output is an error; --skip-existing leaves
    them (byte for byte) and processes the new input; it cannot be combined with --overwrite."""
    import shutil

    out = tmp_path / "out"
    out.mkdir()
    assert run(capsys, inputs, "-o", out, "--stages", "none")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, err, _ = run(capsys, inputs, "-o", out, "--stages", "none")
    assert code == 2 and sum("exists" in line for line in err) == len(before), err
    shutil.copy(inputs / "good.png", inputs / "new.png")
    code, err, _ = run(capsys, inputs, "-o", out, "--stages", "none", "--skip-existing")
    assert code == 0 and err == [f"isp-collab process: note: {len(before)} input(s) skipped: their outputs exist"]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before
    assert (out / "new.png").is_file()
    code, err, _ = run(capsys, inputs, "-o", out, "--stages", "none", "--skip-existing", "--compare")
    assert code == 0 and "3 input(s) skipped" in err[0], err  # the output decides, not its compare image
    with pytest.raises(SystemExit):
        run(capsys, inputs, "-o", out, "--skip-existing", "--overwrite")


def test_skip_existing_goes_by_the_input_an_output_records_not_by_its_name(capsys, tmp_path):
    """RAW + JPEG shooting: IMG.png was IMG.tif's; a re-run with IMG.JPG added (sorted first, so planned to get
    IMG.png) skipped the JPEG as done and wrote the TIFF again as IMG_tif.png. Now the JPEG is processed (to a
    fresh name), the TIFF is skipped, and no file is replaced."""
    from isp_collab.pipeline.provenance import recorded_source, source_record

    folder, out = tmp_path / "card", tmp_path / "out"
    pixels = np.random.default_rng(0).integers(0, 256, (8, 12, 3)).astype(np.uint8)
    folder.mkdir()
    cv2.imwrite(str(folder / "IMG.tif"), pixels)
    assert run(capsys, folder, "-o", out, "--stages", "none")[0] == 0
    assert files_under(out) == ["IMG.png"] and recorded_source(out / "IMG.png") == source_record(folder / "IMG.tif")
    first = (out / "IMG.png").read_bytes()
    cv2.imwrite(str(folder / "IMG.JPG"), pixels[::-1])
    code, err, _ = run(capsys, folder, "-o", out, "--stages", "none", "--skip-existing")
    assert code == 0 and err == ["isp-collab process: note: 1 input(s) skipped: their outputs exist"], err
    assert files_under(out) == ["IMG.png", "IMG_2.png"] and (out / "IMG.png").read_bytes() == first
    assert recorded_source(out / "IMG_2.png") == source_record(folder / "IMG.JPG")
    code, err, _ = run(capsys, folder, "-o", out, "--stages", "none", "--skip-existing")  # all done now
    assert code == 0 and err[0] == "isp-collab process: note: 2 input(s) skipped: their outputs exist", err
    assert files_under(out) == ["IMG.png", "IMG_2.png"]


def test_skip_existing_does_not_take_a_compare_image_for_an_inputs_output(capsys, tmp_path):
    """Inputs a.png and a_compare.png with --compare: a's comparison is out/a_compare.png, the second input's
    output out/a_compare_2.png; a re-run without --compare skipped a_compare.png on a's comparison image."""
    folder, out = tmp_path / "in", tmp_path / "out"
    _png(folder / "a.png", 0)
    _png(folder / "a_compare.png", 1)
    assert run(capsys, folder, "-o", out, "--stages", "none", "--compare")[0] == 0
    names = files_under(out)
    assert names == ["a.png", "a_compare.png", "a_compare_2.png", "a_compare_2_compare.png"]
    code, err, _ = run(capsys, folder, "-o", out, "--stages", "none", "--skip-existing")
    assert code == 0 and err == ["isp-collab process: note: 2 input(s) skipped: their outputs exist"], err
    assert files_under(out) == names


def test_a_config_without_restoration_tables_says_that_nothing_is_restored(capsys, tmp_path, inputs):
    """A file that only set [output] bit_depth turned the default sharpening off, without a word."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[output]\nbit_depth = 16\n")
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "a.png", "--config", cfg)
    assert code == 0 and err == [
        f"isp-collab process: note: {cfg} has no [sharpen], [lens] or [unsharp] table, so no restoration runs "
        "(add [sharpen] for the default sharpening, or pass --stages sharpen)"
    ], err
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "b.png", "--config", cfg, "--stages", "none")
    assert code == 0 and err == [], err  # asked for: nothing to say
    cfg.write_text("[output]\nbit_depth = 16\n[unsharp]\n")
    code, err, _ = run(capsys, inputs / "good.png", "-o", tmp_path / "c.png", "--config", cfg)
    assert code == 0 and err == [], err


def test_subfolders_of_an_input_folder_are_named_as_not_processed(capsys, tmp_path):
    folder = tmp_path / "card"
    _png(folder / "a.png", 0)
    _png(folder / "DCIM" / "b.png", 1)
    (folder / ".hidden").mkdir()
    code, err, _ = run(capsys, folder, "-o", tmp_path / "out", "--stages", "none")
    assert code == 0 and files_under(tmp_path / "out") == ["a.png"]
    assert err == [
        f"isp-collab process: note: {folder}: 1 subfolder not processed (DCIM; folders are read one level deep: "
        "name a subfolder as an input to process it)"
    ], err


def test_an_interrupted_batch_says_how_far_it_got(capsys, tmp_path, monkeypatch):
    from isp_collab.pipeline import Pipeline

    folder = tmp_path / "in"
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _png(folder / name, i)
    real = Pipeline.process_file

    def interrupted_at_b(self, src, dst, **kwargs):
        if Path(src).name == "b.png":
            raise KeyboardInterrupt
        return real(self, src, dst, **kwargs)

    monkeypatch.setattr(Pipeline, "process_file", interrupted_at_b)
    code, err, _ = run(capsys, folder, "-o", tmp_path / "out", "--stages", "none")
    assert code == 130 and files_under(tmp_path / "out") == ["a.png"]
    assert err[-2:] == [
        "isp-collab process: 1 of 3 inputs written before the interruption (b.png and after not; --skip-existing "
        "picks up where it stopped)",
        "isp-collab process: interrupted",
    ], err


def test_skip_existing_tells_apart_inputs_of_one_name_from_two_folders(capsys, tmp_path):
    """Cameras reuse IMG_0001.JPG across cards. b/IMG.png processed alone gives out/IMG.png; a re-run with a/
    first plans a/IMG.png there: matched by name alone, a was taken as done and b processed again."""
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    _png(a / "IMG.png", 0)
    _png(b / "IMG.png", 1)
    assert run(capsys, b, "-o", out, "--stages", "none")[0] == 0
    first = (out / "IMG.png").read_bytes()
    code, err, _ = run(capsys, a, b, "-o", out, "--stages", "none", "--skip-existing")
    assert code == 0 and err == ["isp-collab process: note: 1 input(s) skipped: their outputs exist"], err
    assert files_under(out) == ["IMG.png", "IMG_2.png"] and (out / "IMG.png").read_bytes() == first
    np.testing.assert_array_equal(cv2.imread(str(out / "IMG_2.png")), cv2.imread(str(a / "IMG.png")))


def test_skip_existing_counts_no_file_without_a_record_as_done(capsys, tmp_path):
    """A batch of a.png and a_compare.png with --compare stopped after a: out/a_compare.png is a's comparison
    image, and a re-run took it for the second input's output. Files without a record are never done (nor
    replaced)."""
    folder, out = tmp_path / "in", tmp_path / "out"
    _png(folder / "a.png", 0)
    _png(folder / "a_compare.png", 1)
    assert run(capsys, folder / "a.png", "-o", out, "--stages", "none", "--compare")[0] == 0
    assert files_under(out) == ["a.png", "a_compare.png"]
    crop = (out / "a_compare.png").read_bytes()
    code, err, _ = run(capsys, folder, "-o", out, "--stages", "none", "--skip-existing")
    assert code == 0 and err == ["isp-collab process: note: 1 input(s) skipped: their outputs exist"], err
    assert files_under(out) == ["a.png", "a_compare.png", "a_compare_2.png"]
    assert (out / "a_compare.png").read_bytes() == crop


def test_skip_existing_does_not_hide_an_output_that_is_its_input(capsys, tmp_path):
    src = tmp_path / "x.png"
    _png(src, 0)
    code, err, _ = run(capsys, src, "-o", src, "--stages", "none", "--skip-existing")
    assert code == 2 and err == [
        f"isp-collab process: error: {src}: the output would replace its own input; choose another output"
    ]


@pytest.mark.parametrize("flags", [(), ("--skip-existing",)])
def test_a_missing_input_is_said_missing_whatever_its_output(capsys, tmp_path, flags):
    """With its named output already there, a missing input was 'skipped: outputs exist' (exit 0) under
    --skip-existing, and without it reported as 'output exists' instead of missing."""
    done = tmp_path / "done.png"
    done.write_bytes(b"kept")
    code, err, _ = run(capsys, tmp_path / "nope.png", "-o", done, "--stages", "none", *flags)
    assert code == 2 and err == [f"isp-collab process: error: {tmp_path / 'nope.png'}: no such file"], err
    assert done.read_bytes() == b"kept"


@pytest.mark.parametrize("output", ["", " "])
def test_an_empty_output_name_is_refused_not_taken_as_the_current_folder(capsys, tmp_path, inputs, output):
    with pytest.raises(SystemExit) as stop:
        run(capsys, inputs / "good.png", "-o", output, "--stages", "none")
    assert stop.value.code == 2 and "an empty path" in capsys.readouterr().err


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("Unable to allocate 1.61 GiB for an array with shape (432000000,) and data type float32"),
        cv2.error("OpenCV(5.1.0) alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate 432000000 bytes"),
    ],
)
def test_an_input_that_runs_out_of_memory_is_one_line_exit_2_and_the_batch_goes_on(
    capsys, tmp_path, monkeypatch, error
):
    """A 144 MP PNG (under the pixel cap) ran out of memory under a 6 GB limit: exit 1, "Unable to allocate 1.61 GiB
    (MemoryError)". Now its size is said, and what to do, as for another bad input."""
    from isp_collab.pipeline import stages

    folder = tmp_path / "in"
    _png(folder / "a.png", 0)
    cv2.imwrite(str(folder / "big.png"), np.zeros((300, 400, 3), np.uint8))
    real = stages.srgb_to_linear

    def short_of_memory(image):
        if image.shape[:2] == (300, 400):
            raise error
        return real(image)

    monkeypatch.setattr(stages, "srgb_to_linear", short_of_memory)
    code, err, _ = run(capsys, folder, "-o", tmp_path / "out", "--stages", "none")
    assert code == 2 and files_under(tmp_path / "out") == ["a.png"], err
    assert err == [
        f"isp-collab process: error: {folder / 'big.png'}: ran out of memory processing 400x300 = 0.1 MP (use a "
        "smaller image, or --max-pixels to refuse images this large before they are decoded)",
        "isp-collab process: 1 of 2 inputs processed, 1 failed",
    ]
