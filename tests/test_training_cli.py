"""`isp-collab train` as a user meets it: data checks before anything is written, warnings and status
lines, --threads / --overwrite / --init / --steps, resume with paths typed differently, the card."""

import json
import re
import types
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from isp_collab.cli import main
from isp_collab.models import load_model
from isp_collab.training import load_recipe, train
from isp_collab.training import trainer as trainer_mod
from isp_collab.training.checkpoint import load_checkpoint, save_checkpoint
from isp_collab.training.resume import recipe_changes
from isp_collab.training.validation import evaluate

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "train" / "tiny.toml"


def images(folder: Path, count: int, size: int, seed: int = 0) -> Path:
    """``count`` random 8-bit RGB PNGs of ``size`` x ``size`` px in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(str(folder / f"img{i}.png"), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return folder


def recipe_file(tmp_path: Path, edit=lambda text: text, name: str = "r.toml") -> Path:
    path = tmp_path / name
    path.write_text(edit(TINY.read_text()))
    return path


def lens_recipe(text: str) -> str:
    return text.replace("n = 2", "n = 4").replace("tiles_per_image = 2\n", "") + '\n[task]\nname = "lens"\n'


def args(tmp_path: Path, recipe: Path = TINY, *extra: str, progress: bool = False) -> list[str]:
    out = ["train", str(recipe), "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r"), *extra]
    return out if progress else [*out, "--no-progress"]


def error_line(err: str) -> str:
    """The one error line; it must start a line of its own (not glued to a progress bar)."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("isp-collab train: error: "), err
    return lines[0]


# ------------------------------------------------------------------------------------------------
# data checked before anything is written (3, 9)


def test_lens_validation_photos_too_small_are_refused_before_training(tmp_path, capsys):
    small = images(tmp_path / "smallval", 2, 40)
    recipe = recipe_file(tmp_path, lens_recipe)
    assert main(args(tmp_path, recipe, "--val-images", str(small), progress=True)) == 2
    line = error_line(capsys.readouterr().err)
    assert f"{small}: no validation photo is at least 64x64 px" in line and "val.tile = 32" in line
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_an_empty_validation_set_is_an_error_not_nan():
    with pytest.raises(ValueError, match="empty validation set"):
        evaluate(torch.nn.Identity(), {}, 1, 0, torch.device("cpu"))


@pytest.mark.parametrize(
    ("flag", "size", "reason"),
    [
        ("--images", 12, "no image is at least 48x48 px (training crops are data.patch = 16 px plus 32 px"),
        ("--val-images", 20, "no validation photo is at least 32x32 px (val.tile)"),
    ],
)
def test_small_images_are_refused_before_the_run_dir_exists(tmp_path, capsys, flag, size, reason):
    folder = images(tmp_path / "tinyimgs", 2, size)
    assert main(args(tmp_path, TINY, flag, str(folder), progress=True)) == 2
    assert f"{folder}: {reason}" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_the_recipes_own_missing_image_folder_is_named(tmp_path, capsys):
    recipe = recipe_file(tmp_path, lambda t: t.replace("[data]\n", '[data]\nval_images = ["nonexist"]\n'))
    assert main(args(tmp_path, recipe)) == 2
    assert f"nonexist: image folder not found (data.val_images of {recipe})" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_an_error_during_training_is_printed_on_its_own_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trainer_mod.F, "l1_loss", lambda a, b: (a - b).abs().mean() * float("nan"))
    assert main(args(tmp_path, TINY, progress=True)) == 2
    assert "the loss became nan at step 1" in error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------------------
# throughput (4)


def test_patches_per_second_is_measured_over_the_steps_it_counts(tmp_path, monkeypatch):
    """10 steps of 4 patches, 1 s each on a fake clock: 4 patches/s (not 40: the last step only)."""
    clock = iter(range(10**6))
    monkeypatch.setattr(trainer_mod, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))
    shown = []

    class Bar:
        def __init__(self, *a, **k):
            pass

        def set_postfix(self, **kw):
            shown.append(kw)

        update = write = close = lambda self, *a, **k: None

    monkeypatch.setattr(trainer_mod, "tqdm", Bar)
    r = load_recipe(TINY)
    r.train.steps = r.train.val_every = r.train.ckpt_every = 10
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    assert [float(kw["patches_s"]) for kw in shown] == [4.0]


# ------------------------------------------------------------------------------------------------
# memory cap, validation photos, status lines (5, 18, 19)


def test_memory_cap_samples_every_folder_with_one_warning_and_the_card_counts(tmp_path, capsys):
    # 4 photos of 600x600x3 bytes (~1.03 MiB); a 3 MiB cap holds 2 of them: one of each folder
    a, b = images(tmp_path / "capA", 2, 600), images(tmp_path / "capB", 2, 600, seed=1)
    val = images(tmp_path / "val", 3, 64, seed=2)
    images(val, 1, 20, seed=3)  # img0.png replaced by one too small for the 32-px tiles
    recipe = recipe_file(tmp_path, lambda t: t.replace("[data]\n", "[data]\nmax_megabytes = 3\n"))
    assert main(args(tmp_path, recipe, "--images", str(a), str(b), "--val-images", str(val), "--steps", "1")) == 0
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if "warning" in line and "do not beat the blurry input" not in line]
    assert warnings == [
        f"isp-collab train: warning: {a}, {b}: loaded 2 of 4 images (a random sample of every folder): "
        "the memory cap of 3 MiB is reached (raise [data] max_megabytes = 3 to load more)"
    ]
    card = load_model(tmp_path / "m").card
    assert card["training_data"] == [str(a), str(b)]
    assert (card["training_images_used"], card["training_images_found"]) == (2, 4)
    assert card["validation_data"] == [str(val)]
    assert (card["validation_images_used"], card["validation_images_found"]) == (2, 3)
    assert np.isfinite(card["validation"]["mean_psnr"])


def test_photos_too_small_for_a_crop_are_skipped_with_a_note_and_the_card_counts_them_apart(tmp_path, capsys):
    # tiny's crops are 48 px (16 + 32 for the blur): one photo holds them, four do not
    folder = images(tmp_path / "mixed", 4, 40)
    images(tmp_path / "mixed" / "big", 1, 64, seed=1)
    assert main(args(tmp_path, TINY, "--images", str(folder), "--steps", "1")) == 0
    assert (
        f"note: 4 of 5 training photos in {folder} are smaller than 48x48 px and are skipped "
        "(training crops are data.patch = 16 px plus 32 px for the blur)"
    ) in capsys.readouterr().err.splitlines()
    card = load_model(tmp_path / "m").card
    assert (card["training_images_used"], card["training_images_too_small"], card["training_images_found"]) == (1, 4, 5)


def test_the_card_says_what_its_wall_clock_measures_and_older_cards_still_load(tmp_path):
    from isp_collab.training.finish import WALL_CLOCK_COVERS

    assert main(args(tmp_path, TINY, "--steps", "1")) == 0
    card_path = tmp_path / "m" / "card.json"
    card = json.loads(card_path.read_text())
    assert card["wall_clock_covers"] == WALL_CLOCK_COVERS and "training loop only" in WALL_CLOCK_COVERS
    assert "validating" in WALL_CLOCK_COVERS and card["wall_clock_s"] >= 0
    del card["wall_clock_covers"]  # a card written before the key
    card_path.write_text(json.dumps(card))
    assert load_model(tmp_path / "m").card["wall_clock_s"] == card["wall_clock_s"]


def test_image_folder_cap_takes_one_image_of_each_folder():
    from isp_collab.data.sources import _reading_order

    for seed in range(20):
        assert sorted(i // 2 for i in _reading_order([2, 2], seed)[:2]) == [0, 1]
        order = _reading_order([10, 1], seed)
        assert 10 in order[:2] and sorted(order) == list(range(11))  # every folder within the first files


def test_images_without_val_images_warn_and_status_lines_show_each_phase(tmp_path, capsys):
    folder = images(tmp_path / "okimgs", 2, 64)
    assert main(args(tmp_path, TINY, "--images", str(folder), "--steps", "1", progress=True)) == 0
    err = capsys.readouterr().err
    assert "isp-collab train: warning: --images without --val-images: validation, and the choice of the best " in err
    for line in (
        f"loading the training images from {folder}",
        "building the validation set from dead-leaves (procedural)",
        "final validation of the best weights (step 1)",
    ):
        assert line in err.splitlines()
    card = load_model(tmp_path / "m").card
    assert card["validation_data"] == ["dead-leaves (procedural)"] and card["validation_images_used"] == 1
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in log if "step" in rec] == [0, 1]  # the validation curve, next to the weights


# ------------------------------------------------------------------------------------------------
# --threads, resume (6, 7)


def test_threads_flag_sets_the_recipe_and_a_resume_may_change_threads_and_ckpt_every(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(trainer_mod.torch, "set_num_threads", calls.append)
    assert main(args(tmp_path, TINY, "--threads", "3", "--steps", "1")) == 0
    threads = trainer_mod.torch.get_num_threads()
    assert calls == [3, threads]  # set for the run, then given back to the caller
    assert load_checkpoint(tmp_path / "r" / "last.pt")["recipe"]["train"]["threads"] == 3
    err = capsys.readouterr().err  # --no-progress: no status lines either
    assert "loading" not in err and "building" not in err and "final validation" not in err
    with pytest.raises(SystemExit):
        main(args(tmp_path, TINY, "--threads", "0"))
    r = load_recipe(TINY)
    saved = asdict(r)
    r.train.threads, r.train.ckpt_every = 2, 7
    assert recipe_changes(saved, r) == []


def test_resume_accepts_the_same_folders_typed_differently(tmp_path, monkeypatch):
    folder = images(tmp_path / "okimgs", 2, 64)
    (work := tmp_path / "work").mkdir()
    monkeypatch.chdir(work)
    r = load_recipe(TINY)
    r.data.images = ["../okimgs"]  # as typed, relative to the working folder
    train(r, "m", run_dir="r", progress=False, stop_after=1)
    for typed in ("../okimgs/", str(folder), "../okimgs"):
        r.data.images = [typed]
        assert recipe_changes(load_checkpoint("r/last.pt")["recipe"], r, str(work)) == []
    # a checkpoint of the previous code (paths as typed, no working folder recorded), same folder: resumes
    ck = load_checkpoint("r/last.pt")
    del ck["cwd"]
    save_checkpoint("r/last.pt", ck)
    assert main(["train", str(TINY), "--images", "../okimgs", "--out", "m", "--run-dir", "r", "--resume",
                 "--no-progress"]) == 0  # fmt: skip


def test_resume_refuses_a_folder_moved_under_the_same_name(tmp_path, monkeypatch):
    images(tmp_path / "a" / "imgs", 2, 64)
    images(tmp_path / "b" / "imgs", 2, 64)
    monkeypatch.chdir(tmp_path / "a")
    r = load_recipe(TINY)
    r.data.images = ["imgs"]
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, stop_after=1)
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(ValueError, match=re.escape(f"data.images: ['{tmp_path / 'a' / 'imgs'}'] -> ['")):
        train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, resume=True)


# ------------------------------------------------------------------------------------------------
# --overwrite and finished runs (8)


def test_the_readme_smoke_command_runs_again_with_overwrite(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(TINY), "--no-progress", "--steps", "1"]) == 0
    first = load_model("models/tiny").card["weights_sha256"]
    assert main(["train", str(TINY), "--no-progress", "--steps", "1", "--out", "models/tiny2"]) == 2
    line = error_line(capsys.readouterr().err)
    assert (
        "runs/tiny: a finished run is there; pass --resume to write its model (again), --overwrite to train it again, or --run-dir DIR"
        in line
    )
    assert main(["train", str(TINY), "--no-progress", "--steps", "1", "--overwrite"]) == 0
    assert load_model("models/tiny").card["weights_sha256"] == first  # the same seeded run, again
    assert not Path("models/tiny2").exists()


def test_overwrite_does_not_restart_an_unfinished_run(tmp_path):
    r = load_recipe(TINY)
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, stop_after=1)
    with pytest.raises(FileExistsError, match=r"unfinished run is there \(step 1 of 4\); pass --resume .*--run-dir"):
        train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, overwrite=True)
    assert load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 1


# ------------------------------------------------------------------------------------------------
# --steps and warmup (10)


def test_steps_shorter_than_the_warmup_lower_it_with_a_note(tmp_path, capsys):
    recipe = recipe_file(tmp_path, lambda t: t.replace("steps = 4", "steps = 60\nwarmup = 50"))
    assert main(args(tmp_path, recipe, "--steps", "3")) == 0
    assert "note: train.warmup 50 lowered to 1 for --steps 3" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "r" / "last.pt")["recipe"]["train"]["warmup"] == 1
    # a run that is refused prints its one error line, no note before it: a trained model is there, or
    # (another --out) the run folder holds a finished run
    for extra, reason in (((), "a trained model is already there"), (("--out", str(tmp_path / "m2")), "finished")):
        assert main([*args(tmp_path, recipe, "--steps", "3"), *extra]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and reason in err[0], err


def test_a_recipe_whose_warmup_is_all_its_steps_is_refused(tmp_path):
    bad = recipe_file(tmp_path, lambda t: t.replace("[train]\n", "[train]\nwarmup = 4\n"), name="bad.toml")
    with pytest.raises(ValueError, match=r"bad.toml: train.warmup must be less than train.steps .* warmup = 4 for 4"):
        load_recipe(bad)
    assert load_recipe(TINY).train.warmup == 1  # tiny.toml sets no warmup: the default fits its 4 steps


# ------------------------------------------------------------------------------------------------
# --init on resume (11)


def test_init_is_recorded_and_restored_on_resume_and_checked(tmp_path):
    n1 = load_recipe(TINY)
    n1.model.n, n1.train.steps = 1, 1
    train(n1, tmp_path / "n1", run_dir=tmp_path / "r1", progress=False)
    r = load_recipe(TINY)
    init = str(tmp_path / "n1")
    with pytest.raises(ValueError, match="no such model folder"):
        train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, init=tmp_path / "nonexistent")
    assert not (tmp_path / "r").exists()
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, stop_after=2, init=init)
    for other in (tmp_path / "nonexistent", TINY):
        with pytest.raises(ValueError, match=rf"the run was started with --init {re.escape(init)}; resume it without"):
            train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, resume=True, init=other)
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, resume=True, init=init + "/")
    assert load_model(tmp_path / "m").card["initialised_from"] == init
    # without --init, a resume keeps the recorded one
    train(r, tmp_path / "m2", run_dir=tmp_path / "r2", progress=False, stop_after=2, init=init)
    train(r, tmp_path / "m2", run_dir=tmp_path / "r2", progress=False, resume=True)
    assert load_model(tmp_path / "m2").card["initialised_from"] == init
    # a run started without --init refuses one on resume
    train(r, tmp_path / "m3", run_dir=tmp_path / "r3", progress=False, stop_after=1)
    with pytest.raises(ValueError, match="the run was started without --init"):
        train(r, tmp_path / "m3", run_dir=tmp_path / "r3", progress=False, resume=True, init=init)


def test_more_steps_for_a_finished_run_points_to_init(tmp_path, capsys):
    """A finished run's cosine schedule has ended: `--resume --steps MORE` says how to train on (--init)."""
    assert main(args(tmp_path, TINY, "--steps", "2")) == 0
    capsys.readouterr()
    assert main(args(tmp_path, TINY, "--steps", "4", "--resume", "--overwrite")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "finished its 2 steps" in err and "2 steps more" in err
    assert err.endswith("--init MODEL_FOLDER --run-dir NEW_DIR --steps 2")  # a new run counts from 0
    assert main(args(tmp_path, TINY, "--steps", "1", "--resume", "--overwrite")) == 2  # fewer: the plain refusal
    assert "other settings (train.steps: 2 -> 1)" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 2  # untouched
    # what it says works: a new run from the finished model
    on = ["--init", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r2"), "--out", str(tmp_path / "m2")]
    assert main(["train", str(TINY), "--steps", "2", *on, "--no-progress"]) == 0
    assert load_model(tmp_path / "m2").card["initialised_from"] == str(tmp_path / "m")


# ------------------------------------------------------------------------------------------------
# devices (12), checkpoint mode (17)


def test_unusable_devices_are_one_line_errors(tmp_path, capsys, monkeypatch):
    from isp_collab.device import pick_device

    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="device 'mps': not available in this PyTorch build"):
            pick_device("mps")
        assert main(args(tmp_path, TINY, "--device", "mps")) == 2
        assert "device 'mps': not available" in error_line(capsys.readouterr().err)
        assert not (tmp_path / "r").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"device 'cuda:1': this machine has 1 CUDA device\(s\)"):
        pick_device("cuda:1")
    assert pick_device("cuda:0") == torch.device("cuda:0")


def test_checkpoints_are_readable_by_others(tmp_path):
    save_checkpoint(tmp_path / "last.pt", {"step": 1})
    assert (tmp_path / "last.pt").stat().st_mode & 0o777 == 0o644
