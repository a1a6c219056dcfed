"""``isp-collab bench`` refuses, in one line and before any work: images too small for a lens region,
an action that would measure no model, an empty ``--out``, user images into the published results,
quick-tuned parameters in a full run, and an output folder it cannot write into."""

import json

import numpy as np
import pytest
from test_bench_guards import _images, _one_line_error, published  # noqa: F401 (a fixture)
from test_bench_lens_models import _lens_model

import isp_collab.bench.run as bench_run
from isp_collab.bench.data import BenchImage
from isp_collab.bench.lens import REGIONS, region_masks, run_lens
from isp_collab.bench.report import read_section
from isp_collab.cli import main


@pytest.mark.parametrize("shape", [(40, 40), (80, 80), (96, 96), (97, 97), (64, 400), (120, 90), (33, 200)])
@pytest.mark.parametrize("center", [None, (10.0, 20.0)])
def test_missing_regions_match_the_region_masks(shape, center):
    from isp_collab.bench.lens import missing_regions

    h, w = shape
    masks = region_masks(shape, center)
    inner = np.zeros(shape, dtype=bool)
    inner[16 : h - 16, 16 : w - 16] = True
    assert missing_regions(shape, 16, center) == [r for r in REGIONS if not (masks[r] & inner).any()]


def test_the_lens_minimum_is_where_the_edge_region_appears():
    from isp_collab.bench.lens import min_lens_side, missing_regions

    assert min_lens_side(16) == 97
    assert missing_regions((96, 96)) == ["edge"] and missing_regions((97, 97)) == []


@pytest.mark.parametrize("small", [(40, 40), (80, 80)])  # above the 33-px border minimum, below the lens one
def test_images_too_small_for_a_lens_region_are_refused_up_front(tmp_path, capsys, small):
    model = _lens_model(tmp_path / "models" / "mine", "lens-a")
    images = _images(tmp_path / "imgs", [(200, 200)])
    _images(images, [small], name="small")
    out = tmp_path / "out"
    assert main(["bench", "lens", "--quick", "--images", str(images), "--models", model, "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "small0.png" in err and "too small" in err and "no edge" in err and "97 px" in err
    assert not out.exists()


def test_the_lens_table_never_scores_an_empty_region():
    tiny = [BenchImage("folder/tiny", np.full((60, 60, 3), 0.5, np.float32))]
    with pytest.raises(ValueError, match="folder/tiny: 60x60 px is too small for the lens table: no edge"):
        run_lens(tiny, ["lens-a-unet-tx-n1"])


@pytest.mark.parametrize("action", ["lens", "training"])
def test_an_action_that_needs_a_model_refuses_models_naming_none(tmp_path, capsys, action):
    out = tmp_path / "out"
    assert main(["bench", action, "--quick", "--models", "--out", str(out)]) == 2
    assert f"`bench {action}` needs a model: --models names none" in _one_line_error(capsys)
    assert not out.exists()


def test_training_of_untrained_models_writes_a_placeholder(tmp_path):
    model = _lens_model(tmp_path / "models" / "untrained", "lens-a")  # no validation record in its card
    out = tmp_path / "out"
    assert main(["bench", "training", "--quick", "--models", model, "--out", str(out)]) == 0
    section = read_section((out / "RESULTS.md").read_text(), "training")
    assert section.startswith("## Training") and "Not measured: no trained model among --models" in section


def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:  # argparse's refusal: usage, then the reason
        main(["bench", "kernels", "--quick", "--out", ""])
    assert stop.value.code == 2 and "argument --out: an empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_user_images_are_refused_into_the_published_results(tmp_path, published, capsys):  # noqa: F811
    images = _images(tmp_path / "imgs", [(120, 120)])
    assert main(["bench", "quality", "--images", str(images)]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("isp-collab bench: error: --images would write") and "--out DIR" in err
    assert "--overwrite" in err and "published sections" in err
    assert sorted(p.name for p in published.iterdir()) == ["RESULTS.md"]


def test_quick_tuned_parameters_are_marked_and_refused_by_a_full_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "tune", "--quick", "--out", str(out)]) == 0
    record = json.loads((out / "classical_params.json").read_text())
    assert record["quick"] is True
    text = (out / "RESULTS.md").read_text()
    assert read_section(text, "classical-params").startswith("## Classical sharpeners: tuned parameters\n\n**Quick run")
    capsys.readouterr()
    for action in ("quality", "speed"):
        assert main(["bench", action, "--models", "--out", str(out)]) == 2
        err = _one_line_error(capsys)
        assert f"{out / 'classical_params.json'}: tuned by a quick run" in err and "without --quick" in err
    assert (out / "RESULTS.md").read_text() == text
    assert sorted(p.name for p in out.iterdir()) == ["RESULTS.md", "classical_params.json"]
    assert main(["bench", "quality", "--quick", "--models", "--out", str(out), "--overwrite"]) == 0  # quick: fine


def test_threads_beyond_the_cpus_are_warned_about(tmp_path, capsys, monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(bench_run, "bench_kernels", lambda opts: None)
    assert main(["bench", "kernels", "--quick", "--threads", "2", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning: --threads 2 exceeds the 1 CPUs here" in err[0]


def test_an_unwritable_out_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import tempfile

    ran = []
    monkeypatch.setattr(bench_run, "bench_kernels", ran.append)
    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and str(dir) == str(tmp_path / "out"):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert main(["bench", "kernels", "--quick", "--out", str(tmp_path / "out")]) == 2
    assert "out: cannot write into the output folder (Permission denied)" in _one_line_error(capsys)
    assert not ran and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["quality", "--size", "1024"], "--size does not apply to `bench quality` (only speed and all time an image)"),
        (["speed", "--size", "32"], "--size must be between 64 and 8192 px, got 32"),
    ],
)
def test_size_is_refused_where_nothing_is_timed_or_out_of_range(tmp_path, capsys, argv, message):
    assert main(["bench", *argv, "--quick", "--out", str(tmp_path / "out")]) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_a_file_given_as_images_or_out_is_named_as_a_file(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert main(["bench", "kernels", "--quick", "--images", str(a_file), "--out", str(tmp_path / "o")]) == 2
    assert f"{a_file}: not a folder (--images takes a folder" in _one_line_error(capsys)
    assert main(["bench", "kernels", "--quick", "--out", str(a_file)]) == 2
    assert f"{a_file}: a file, not a folder" in _one_line_error(capsys)
    assert a_file.read_text() == "x"


def test_a_size_whose_tiles_cannot_fill_a_stack_is_refused(tmp_path, capsys, monkeypatch):
    """torch caps a stack at the image's tiles, a static-N ONNX file repeats them: the rows would not compare."""
    ran = []
    monkeypatch.setattr(bench_run, "bench_speed", ran.append)
    argv = ["bench", "speed", "--quick", "--models", "sharpen-unet-tx-n1", "sharpen-unet-tx-n4"]
    assert main([*argv, "--size", "128", "--out", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys)
    assert "--size 128: on a 128x128 image restore runs sharpen-unet-tx-n4 (N=4) at N=1" in err
    assert "use --size 225 or larger" in err
    assert not ran and not (tmp_path / "out").exists()
    assert main([*argv, "--size", "225", "--out", str(tmp_path / "ok")]) == 0 and ran


def test_the_quick_size_fills_the_largest_stack_timed(tmp_path, monkeypatch):
    from isp_collab.bench import speed
    from isp_collab.bench.options import BenchOptions
    from isp_collab.restore import restore

    sizes = []

    def stop(specs, **kwargs):
        sizes.append(kwargs["size"])
        raise KeyboardInterrupt

    monkeypatch.setattr(speed, "run_speed", stop)
    for models in (["sharpen-unet-tx-n1"], ["sharpen-unet-tx-n1", "sharpen-unet-tx-n8"]):
        with pytest.raises(KeyboardInterrupt):
            bench_run.bench_speed(BenchOptions(out=tmp_path, quick=True, models=models, say=lambda s: None))
    assert sizes == [128, 449]

    class Count:  # a pass-through backend that records the stack size restore runs
        n = tile = None
        multiple, ran = 8, []

        def run(self, stacks):
            self.ran.append(stacks.shape[1])
            return stacks.copy()

    for side, full in ((448, False), (449, True)):
        Count.ran = []
        restore(np.zeros((side, side, 3), np.float32), Count(), n=8, strategy="spread", tile=256, overlap=32)
        assert (min(Count.ran) == 8) is full


def test_the_readme_states_the_refusals_as_the_code_makes_them():
    from pathlib import Path

    from isp_collab.bench.lens import min_lens_side
    from isp_collab.bench.metrics import DEFAULT_BORDER

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    into_published = readme[readme.index("The default `--out` is `benchmarks/`") :].split("use `--out DIR`")[0]
    for flag in ("--models", "--images", "--device", "--threads", "--size", "--quick"):  # _refuse_published's
        assert f"`{flag}" in into_published, flag
    assert f"{min_lens_side(DEFAULT_BORDER)} px a side for a square image once lens models are measured" in readme
