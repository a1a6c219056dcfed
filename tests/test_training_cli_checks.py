"""``isp-collab train``: recipe values and output folders are checked before anything runs (review of the
sixteenth session); a model that cannot be written, --no-progress and a corrupt checkpoint."""

from pathlib import Path

import pytest
from test_training_cli import TINY, args, error_line, images, lens_recipe, recipe_file

from isp_collab.cli import main
from isp_collab.training import finish


@pytest.mark.parametrize(
    ("append", "reason"),
    [
        ('[val]\nsigmas = ["a"]\n', "val.sigmas must be a non-empty list of positive numbers, got ['a']"),
        ("[val]\nsigmas = [[1]]\n", "val.sigmas must be a non-empty list of positive numbers"),
        ("[val]\nnoise_level = nan\n", "val.noise_level must be a finite number >= 0, got nan"),
        ("[val]\nnoise_level = -0.5\n", "val.noise_level must be a finite number >= 0, got -0.5"),
        ("[val]\nmax_images = 0\n", "val.max_images must be >= 1, got 0"),
        ("[val]\nseed = -1\n", "val.seed must be in 0..4294967295, got -1"),
        ("[data]\nmax_megabytes = 0\n", "data.max_megabytes must be >= 1, got 0"),
        ("[model]\nn = 65\n", "model.n must be between 1 and 64, got 65"),
        ('[task]\nname = "lens"\nlens = "lens-z"\n', "task.lens must be one of lens-a, lens-b or a calibration .npz"),
        ("[modle]\nn = 4\n", "unknown section(s) or top-level key(s) ['modle']"),
        (
            '[task]\nlens = "mylens.npz"\n',
            "task.lens only applies to the lens task, but task.name is 'sharpen' (set task.name = \"lens\"",
        ),
        ("[train]\npatches_per_step = 5\n", "multiple of model.n (equal patches per stack), got 5 for n = 2"),
        ("[model]\nn = 1\n", "train.collab_lr is for model.n > 1"),
    ],
)
def test_bad_recipe_values_are_one_line_errors_naming_the_key(tmp_path, capsys, append, reason):
    def edit(text: str) -> str:
        if append == "[model]\nn = 65\n":
            return text.replace("n = 2", "n = 65")
        if append == "[model]\nn = 1\n":
            return text.replace("n = 2", "n = 1").replace("[train]", "[train]\ncollab_lr = 2.0")
        if append.startswith("[train]"):
            return text.replace("patches_per_step = 4", append.split("\n")[1])
        if "noise_level" in append:  # read with white-noise validation only
            text = text.replace("[data]", '[data]\nnoise = "gaussian"', 1)
        for section in ("[val]", "[data]", "[model]"):  # a section given twice is a TOML error: merge into it
            if append.startswith(section) and section in text:
                return text.replace(section, append.rstrip("\n"), 1)
        return text + append

    if append.startswith("[task]"):
        recipe = recipe_file(tmp_path, lambda text: lens_recipe(text).replace('[task]\nname = "lens"', append))
    else:
        recipe = recipe_file(tmp_path, edit)
    assert main(args(tmp_path, recipe)) == 2
    line = error_line(capsys.readouterr().err)
    assert "r.toml" in line and reason in line, line
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_keys_of_the_other_task_are_refused(tmp_path, capsys):
    """A lens recipe setting the sharpening blur range would train without it: refused, naming the keys."""
    recipe = recipe_file(tmp_path, lambda text: lens_recipe(text).replace("[data]", "[data]\nsigma_max = 3.0", 1))
    assert main(args(tmp_path, recipe)) == 2
    line = error_line(capsys.readouterr().err)
    assert "r.toml: data.sigma_max only applies to the sharpen task, but task.name is 'lens'" in line, line
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()


def test_out_and_run_dir_are_checked_before_training(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for flag, folder, reason in (
        ("--run-dir", tmp_path / "afile" / "sub", "afile is a file, not a folder"),
        ("--out", tmp_path / "afile" / "sub", "afile is a file, not a folder"),
        ("--out", tmp_path / "typo" / "deep" / "o", f"parent folder {tmp_path / 'typo' / 'deep'} does not exist"),
        ("--run-dir", tmp_path / "typo" / "deep" / "r", f"parent folder {tmp_path / 'typo' / 'deep'} does not exist"),
    ):
        argv = args(tmp_path)
        argv[argv.index(flag) + 1] = str(folder)
        assert main(argv) == 2
        line = error_line(capsys.readouterr().err)
        assert str(folder) in line and reason in line, line
        assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists() and not (tmp_path / "typo").exists()


def test_out_is_a_new_or_empty_folder_or_a_model_and_never_an_image_folder(tmp_path, capsys):
    photos, val = images(tmp_path / "photos", 2, 64), images(tmp_path / "data" / "val", 2, 64, seed=1)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    data = ["--images", str(photos), "--val-images", str(val), "--steps", "1"]
    image_folder = "--out must not be, lie inside or hold the image folder"
    for out, extra, reason in (
        (photos, [], f"{image_folder} {photos} (data.images)"),
        (photos, ["--overwrite"], f"{image_folder} {photos} (data.images)"),
        (photos / "model", [], f"{image_folder} {photos} (data.images)"),
        (tmp_path / "data", ["--overwrite"], f"{image_folder} {val} (data.val_images)"),
        (tmp_path / "notes", ["--overwrite"], "--out holds other files and no model; give a new or empty folder"),
        (tmp_path / "r", [], "--out must not be, lie inside or hold the run folder"),  # checkpoints: refused at once
        (tmp_path, [], "--out must not be, lie inside or hold"),
    ):
        argv = args(tmp_path, TINY, *data, *extra)
        argv[argv.index("--out") + 1] = str(out)
        assert main(argv) == 2
        line = error_line(capsys.readouterr().err)
        assert line.startswith(f"isp-collab train: error: {out}: ") and reason in line, line
    assert sorted(p.name for p in photos.iterdir()) == ["img0.png", "img1.png"]  # nothing written there
    assert [p.name for p in (tmp_path / "notes").iterdir()] == ["todo.txt"]
    assert not (tmp_path / "r").exists()
    (tmp_path / "m").mkdir()  # an empty folder is fine (hidden files aside), and so is a model folder with --overwrite
    (tmp_path / "m" / ".DS_Store").write_bytes(b"finder")
    assert main(args(tmp_path, TINY, *data)) == 0
    assert main([*args(tmp_path, TINY, *data), "--run-dir", str(tmp_path / "r2"), "--overwrite"]) == 0


def test_a_model_that_cannot_be_written_keeps_the_run_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def failing_save(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(finish, "save_model", failing_save)
    assert main(args(tmp_path)) == 2
    line = error_line(capsys.readouterr().err)
    assert "--resume --out DIR" in line and str(tmp_path / "r") in line, line
    monkeypatch.undo()
    assert main([*args(tmp_path), "--resume"]) == 0  # the finished run writes its model
    assert (tmp_path / "m" / "model.safetensors").is_file()


def test_no_progress_prints_no_status_lines_and_a_corrupt_checkpoint_names_the_way_out(tmp_path, capsys):
    assert main(args(tmp_path)) == 0
    out, err = capsys.readouterr()
    status = [line for line in (out + err).splitlines() if "step " in line and "warning: " not in line]
    assert not status, status  # the result lines only (and warnings)
    (tmp_path / "r" / "last.pt").write_bytes(b"junk")
    assert main([*args(tmp_path), "--out", str(tmp_path / "m2")]) == 2
    line = error_line(capsys.readouterr().err)
    assert "last.pt: unreadable checkpoint (" in line and "--run-dir DIR for a new run" in line, line


def test_every_recipe_key_is_documented():
    """docs/recipes.md has a row for every key of every section (a new key cannot go unexplained)."""
    from dataclasses import fields

    from isp_collab.training import config

    text = (Path(__file__).resolve().parents[1] / "docs" / "recipes.md").read_text()
    sections = {"model": config.ModelSection, "task": config.TaskSection, "data": config.DataSection}
    sections |= {"train": config.TrainSection, "val": config.ValSection}
    for name, cls in sections.items():
        part = text.split(f"## `[{name}]`")[1].split("\n## ")[0]
        missing = [f.name for f in fields(cls) if f"`{f.name}`" not in part]
        assert not missing, f"[{name}] keys missing from docs/recipes.md: {missing}"


def test_validation_keys_a_recipe_would_ignore_are_refused(tmp_path):
    """val.tiles_per_image is the sharpen validation's (lens cuts mirror tiles on a grid); val.noise_level is the
    white noise of gaussian-noise validation only: set where nothing reads them, they are one-line errors."""
    from isp_collab.training import load_recipe

    lens = tmp_path / "lens.toml"
    lens.write_text(TINY.read_text().replace("n = 2", "n = 4") + '\n[task]\nname = "lens"\n')
    with pytest.raises(ValueError, match="val.tiles_per_image only applies to the sharpen task"):
        load_recipe(lens)
    noisy = tmp_path / "noisy.toml"
    noisy.write_text(TINY.read_text().replace("[val]\n", "[val]\nnoise_level = 0.01\n"))
    with pytest.raises(ValueError, match="val.noise_level is the white noise .* 'demosaic' noise"):
        load_recipe(noisy)
    noisy.write_text(
        TINY.read_text()
        .replace("[val]\n", "[val]\nnoise_level = 0.01\n")
        .replace("[data]\n", '[data]\nnoise = "gaussian"\n')
    )
    assert load_recipe(noisy).val.noise_level == 0.01
    noisy.write_text(noisy.read_text().replace('noise = "gaussian"', 'noise = "Gaussian"'))  # a typo: named as such
    with pytest.raises(ValueError, match="data.noise must be one of"):
        load_recipe(noisy)
