"""``isp-collab bench`` refuses, before anything is written: runs that would replace the published results,
flags the action ignores, an unusable device, and images too small for the action."""

import cv2
import numpy as np
import pytest
import torch

import isp_collab.bench.data as bench_data
import isp_collab.device as device_module
from isp_collab.bench.data import BenchImage
from isp_collab.cli import CLIError, main


def _images(folder, sizes, name="im"):
    """Colour PNGs of the given (h, w) sizes in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{name}{i}.png"), (rng.random((h, w, 3)) * 255).astype(np.uint8))
    return folder


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    return err


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A stand-in for the checkout's benchmarks/ folder (the default --out) holding the published RESULTS.md."""
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "RESULTS.md").write_text("published\n")
    monkeypatch.setattr(bench_data, "BENCH_DIR", folder)
    return folder


@pytest.mark.parametrize(
    ("action", "args", "named"),
    [
        ("quality", ["--models"], "--models"),
        ("quality", ["--device", "cpu"], "--device"),
        ("quality", ["--threads", "2"], "--threads 2"),
        ("quality", ["--models", "--out", "PUBLISHED"], "--models"),
        ("quality", ["--quick", "--out", "PUBLISHED"], "--quick"),
        ("quality", ["--images", "IMAGES"], "--images"),
        ("speed", ["--size", "1024"], "--size 1024"),
    ],
)
def test_own_figures_never_replace_the_published_results(tmp_path, published, capsys, action, args, named):
    images = _images(tmp_path / "imgs", [(48, 48)])
    args = [{"PUBLISHED": str(published), "IMAGES": str(images)}.get(a, a) for a in args]
    assert main(["bench", action, *args]) == 2
    err = _one_line_error(capsys)
    # each flag on its own is what is refused, and named: the error lists exactly it
    assert err.startswith(f"isp-collab bench: error: {named} would write this run's figures"), err
    assert "published sections" in err and "--out DIR" in err and "--overwrite" in err
    assert sorted(p.name for p in published.iterdir()) == ["RESULTS.md"]
    assert (published / "RESULTS.md").read_text() == "published\n"


def test_overwrite_lets_a_run_replace_the_published_results(tmp_path, published):
    images = _images(tmp_path / "imgs", [(48, 48)])
    args = ["--quick", "--models", "--images", str(images), "--out", str(published), "--overwrite"]
    assert main(["bench", "quality", *args]) == 0
    assert "<!-- section:quality-imgs-" in (published / "RESULTS.md").read_text()


def _results_with(folder, *sections):
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(f"<!-- section:{s} -->\nearlier figures\n<!-- /section:{s} -->\n" for s in sections)
    (folder / "RESULTS.md").write_text(text)
    return text


@pytest.mark.parametrize("action, held", [("speed", "speed"), ("lens", "lens"), ("all", "quality")])
def test_an_earlier_runs_sections_in_out_are_not_replaced_without_overwrite(tmp_path, capsys, action, held):
    out = tmp_path / "out"
    before = _results_with(out, held)
    assert main(["bench", action, "--quick", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert str(out / "RESULTS.md") in err and f"section(s) {held} " in err and "--overwrite" in err
    assert (out / "RESULTS.md").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["RESULTS.md"]


def test_sections_of_other_actions_or_other_images_do_not_block(tmp_path):
    import argparse

    from isp_collab.cli.bench import _refuse_replacing

    images = _images(tmp_path / "imgs", [(48, 48)])
    out = tmp_path / "out"
    _results_with(out, "speed", "kernel-estimation", "quality")  # sections of the committed image set
    args = argparse.Namespace(action="quality", images=images)
    _refuse_replacing(args, out, tmp_path / "benchmarks")  # quality-imgs-<hash> is not there: no refusal
    _refuse_replacing(argparse.Namespace(action="lens", images=None), out, tmp_path / "benchmarks")
    _refuse_replacing(argparse.Namespace(action="speed", images=None), out, out)  # the published folder
    with pytest.raises(CLIError, match=r"section\(s\) quality "):  # the control: its own section does block
        _refuse_replacing(argparse.Namespace(action="quality", images=None), out, tmp_path / "benchmarks")


@pytest.mark.parametrize(
    "action, flag",
    [
        ("kernels", ["--models", "sharpen-unet-tx-n4"]),
        ("tune", ["--models", "sharpen-unet-tx-n4"]),
        ("kernels", ["--device", "cpu"]),
        ("tune", ["--device", "cpu"]),
        ("speed", ["--device", "cpu"]),
    ],
)
def test_flags_the_action_ignores_are_refused(tmp_path, capsys, action, flag):
    out = tmp_path / "out"
    assert main(["bench", action, "--quick", "--out", str(out), *flag]) == 2
    err = _one_line_error(capsys)
    assert f"{flag[0]} does not apply to `bench {action}`" in err
    assert not out.exists()


def test_device_selection_error_is_one_line_before_any_output(tmp_path, capsys, monkeypatch):
    def refuse(requested=None):
        raise ValueError(f"device {requested!r}: not available in this PyTorch build or on this machine")

    monkeypatch.setattr(device_module, "pick_device", refuse)
    out = tmp_path / "out"
    assert main(["bench", "quality", "--quick", "--models", "--device", "mps", "--out", str(out)]) == 2
    assert "'mps': not available" in _one_line_error(capsys)
    assert not out.exists()


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_mps_support_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "quality", "--quick", "--models", "--device", "mps", "--out", str(out)]) == 2
    assert "mps" in _one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    "action, small",
    [
        ("quality", (20, 40)),  # a 16-px border on each side leaves nothing
        ("lens", (20, 40)),
        ("tune", (12, 12)),  # the 33x33 blurs pad by 16 px
        ("kernels", (64, 64)),  # 64-px crops away from kernel-sized margins
        ("training", (24, 24)),  # collaboration-gain tiles of 32 px
        ("all", (64, 64)),
    ],
)
def test_images_below_the_action_minimum_are_refused_up_front(tmp_path, capsys, action, small):
    images = _images(tmp_path / "imgs", [(200, 200)])
    _images(images, [small], name="small")
    out = tmp_path / "out"
    assert main(["bench", action, "--quick", "--images", str(images), "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "small0.png" in err and "too small" in err and f"bench {action if action != 'all' else ''}" in err
    assert not out.exists()


def test_a_truncated_image_is_one_line_before_anything_is_written(tmp_path, capfd):
    images = _images(tmp_path / "imgs", [(200, 200)])
    whole = (images / "im0.png").read_bytes()
    (images / "zz.png").write_bytes(whole[: len(whole) // 2])  # a valid header, cut data
    out = tmp_path / "out"
    assert main(["bench", "quality", "--quick", "--images", str(images), "--out", str(out)]) == 2
    err = capfd.readouterr().err.strip().splitlines()  # capfd: libpng's own fd-2 message counts too
    assert len(err) == 1 and "zz.png: cannot read the image (libpng error" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(
    "stage, side, message",
    [
        ("lens", 12, r"folder/tiny: image of 12x12 \(H x W\) is too small"),
        ("blur", 12, "folder/tiny: 12x12 px is too small for the 33x33 blurs"),
        ("scores", 30, "folder/tiny: border 16 leaves nothing of a 30x30 image"),
    ],
)
def test_size_errors_past_the_checks_name_the_image(stage, side, message):
    from isp_collab.bench import protocol, quality
    from isp_collab.bench.lens import lens_cases

    tiny = [BenchImage("folder/tiny", np.full((side, side, 3), 0.5, np.float32))]
    run = {
        "lens": lambda: next(lens_cases(tiny)),
        "blur": lambda: next(protocol.cases(tiny, ["sigma=1"])),
        "scores": lambda: quality.run_quality(tiny, {}, ["sigma=1"]),
    }[stage]
    with pytest.raises(ValueError, match=message):
        run()


def test_files_an_action_writes_are_not_replaced_without_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ksim_vs_n.png").write_bytes(b"my notes")
    assert main(["bench", "kernels", "--quick", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert f"{out / 'ksim_vs_n.png'}: already exists" in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["ksim_vs_n.png"] and (out / "ksim_vs_n.png").read_bytes() == (
        b"my notes"
    )


@pytest.mark.slow  # 26 s: a whole quick run
def test_every_file_a_run_writes_is_listed_for_the_overwrite_check(tmp_path):
    """ACTION_FILES must name what the actions really write, or the refusal above misses files."""
    from isp_collab.cli.bench import ACTION_FILES

    out = tmp_path / "out"
    assert main(["bench", "kernels", "--quick", "--out", str(out)]) == 0
    assert main(["bench", "speed", "--quick", "--models", "--out", str(out)]) == 0
    written = {p.name for p in out.iterdir()} - {"RESULTS.md"}
    listed = {f"{stem}{suffix}" for action in ("kernels", "speed") for stem, suffix in ACTION_FILES[action]}
    assert written == listed


def test_a_failure_half_way_leaves_the_output_folder_as_it_was(tmp_path, capsys, monkeypatch):
    import isp_collab.bench.run as bench_run
    from isp_collab.bench.report import read_section, write_section

    out = tmp_path / "out"
    out.mkdir()
    (out / "RESULTS.md").write_text("<!-- section:notes -->\nmine\n<!-- /section:notes -->\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(opts):
        (out / "user.json").write_text("written by someone else meanwhile")
        write_section(out / "RESULTS.md", "other-run", "theirs")  # another run into the same folder
        raise ValueError("model.safetensors: corrupted or truncated")

    monkeypatch.setattr(bench_run, "bench_training", broken)  # runs after kernels in `all`
    assert main(["bench", "all", "--quick", "--models", "--out", str(out)]) == 2
    assert "corrupted or truncated" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after.pop("user.json") == b"written by someone else meanwhile"  # not this run's file: kept
    results = after.pop("RESULTS.md").decode()
    assert after == {k: v for k, v in before.items() if k != "RESULTS.md"}  # the kernels plot removed
    assert read_section(results, "other-run") == "theirs" and read_section(results, "notes") == "mine"
    assert "kernel-estimation" not in results  # this run's section taken back
    new = tmp_path / "new"
    assert main(["bench", "all", "--quick", "--models", "--out", str(new)]) == 2
    assert not new.exists()  # a folder the run created is removed


def test_a_corrupt_model_or_one_of_the_wrong_task_is_refused_before_any_output(tmp_path, capsys):
    import shutil

    from isp_collab.models.weights import resolve_model_dir

    bad = tmp_path / "bad"
    shutil.copytree(resolve_model_dir("sharpen-unet-tx-n1"), bad)
    (bad / "model.safetensors").write_bytes(b"junk")
    out = tmp_path / "out"
    assert main(["bench", "all", "--quick", "--models", str(bad), "--out", str(out)]) == 2
    assert "model.safetensors" in _one_line_error(capsys) and not out.exists()
    assert main(["bench", "lens", "--quick", "--models", "sharpen-unet-tx-n1", "--out", str(out)]) == 2
    assert "`bench lens` needs a lens model" in _one_line_error(capsys) and not out.exists()


def test_out_in_a_missing_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "typo" / "out"
    assert main(["bench", "kernels", "--quick", "--out", str(out)]) == 2
    assert f"{out}: parent folder {out.parent} does not exist" in _one_line_error(capsys)
    assert not (tmp_path / "typo").exists()


def test_the_published_results_are_not_regenerated_without_polyblur(tmp_path, published, capsys, monkeypatch):
    import isp_collab.bench.classical as classical

    monkeypatch.setattr(classical, "polyblur_status", lambda: (False, "polyblur is not usable (ImportError: x)"))
    assert main(["bench", "tune"]) == 2
    assert "polyblur is not usable" in _one_line_error(capsys)
    assert sorted(p.name for p in published.iterdir()) == ["RESULTS.md"]


def test_two_models_of_one_row_label_are_refused(tmp_path, capsys):
    """Rows are keyed by a folder's last name: runs/a/m and runs/b/m would silently share one row."""
    from isp_collab.models import create_model, save_model

    for parent in ("a", "b"):
        save_model(create_model("unet-tx", n=1), tmp_path / parent / "m", {"n_trained": 1, "task": "sharpen"})
    out = tmp_path / "out"
    images = _images(tmp_path / "imgs", [(48, 48)])
    a, b = str(tmp_path / "a" / "m"), str(tmp_path / "b" / "m")
    for models in ([a, b], [a, a]):
        assert main(["bench", "quality", "--images", str(images), "--out", str(out), "--models", *models]) == 2
        err = _one_line_error(capsys)
        assert a in err and ("'m'" in err if models[1] == b else "given twice" in err)
        assert not out.exists()


def test_a_placeholder_of_an_earlier_run_does_not_block_filling_it_in(tmp_path, capsys):
    from isp_collab.bench.report import read_section

    out = tmp_path / "out"
    assert main(["bench", "quality", "--quick", "--models", "--out", str(out)]) == 0  # no lens model: a placeholder
    assert read_section((out / "RESULTS.md").read_text(), "lens").split("\n\n")[1].startswith("Not measured:")
    assert main(["bench", "lens", "--quick", "--models", "lens-a-unet-tx-n1", "--out", str(out)]) == 0
    assert "| lens-a-unet-tx-n1 |" in read_section((out / "RESULTS.md").read_text(), "lens")
    capsys.readouterr()
    # a measured section still needs --overwrite
    assert main(["bench", "lens", "--quick", "--models", "lens-a-unet-tx-n1", "--out", str(out)]) == 2
    assert "already holds section(s) lens of an earlier run" in _one_line_error(capsys)


def test_a_folder_of_greyscale_images_only_says_they_were_skipped(tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    for name in ("g1.png", "g2.png"):
        cv2.imwrite(str(images / name), np.full((64, 64), 128, np.uint8))
    out = tmp_path / "out"
    assert main(["bench", "quality", "--quick", "--images", str(images), "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert f"{images}: no colour images: 2 greyscale images skipped (g1.png, g2.png)" in err
    assert not out.exists()
