"""Recipes and train's command line: parsing, one-line errors for bad recipes and flags, nothing written."""

import json
import re
from pathlib import Path

import pytest

from isp_collab.cli import main
from isp_collab.training import load_recipe

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "train" / "tiny.toml"


@pytest.mark.parametrize("recipe", sorted((ROOT / "train").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_parse(recipe):
    r = load_recipe(recipe)
    assert r.train.patches_per_step % r.model.n == 0


def test_bad_recipes_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out models/NAME and --run-dir runs/NAME land here, if anywhere
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\narch = 'unet-tx'\nnn = 4\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.toml" in err and "nn" in err and "\n" not in err
    bad.write_text("[model\n")
    assert main(["train", str(bad)]) == 2
    assert "not a valid TOML" in capsys.readouterr().err
    for text in ("", "name = 'x'\n"):  # nothing to train from: refused, not run on every default
        bad.write_text(text)
        assert main(["train", str(bad), "--run-dir", str(tmp_path / "empty-run")]) == 2
        assert "bad.toml: empty recipe" in capsys.readouterr().err
        assert not (tmp_path / "empty-run").exists()
    assert main(["train", str(tmp_path / "missing.toml")]) == 2
    assert main(["train", str(TINY), "--images", str(tmp_path / "nope")]) == 2
    (taken := tmp_path / "taken").mkdir()
    (taken / "model.safetensors").write_bytes(b"weights")
    capsys.readouterr()
    assert main(["train", str(TINY), "--out", str(taken)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{taken}: a trained model is already there; pass --out DIR for a new one" in err and "\n" not in err
    assert (taken / "model.safetensors").read_bytes() == b"weights"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--steps", "0"], "error: --steps must be a whole number >= 1, got 0"),
        (["--steps", "-5"], "error: --steps must be a whole number >= 1, got -5"),
        (["--lr", "0"], "error: --lr must be a finite number > 0, got 0.0"),
        (["--lr", "nan"], "error: --lr must be a finite number > 0, got nan"),
        (["--device", "foo"], "device 'foo': not a device name"),
    ],
)
def test_bad_overrides_are_one_line_errors_and_write_nothing(tmp_path, capsys, args, reason):
    out, run = tmp_path / "m", tmp_path / "r"
    assert main(["train", str(TINY), "--out", str(out), "--run-dir", str(run), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert reason in err and "\n" not in err
    assert not out.exists() and not (run / "last.pt").exists()


def test_ema_out_of_range_is_a_recipe_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("[train]", "[train]\nema = 1.0"))
    with pytest.raises(ValueError, match=r"bad.toml: train.ema must be in \[0, 1\)"):
        load_recipe(bad)


@pytest.mark.parametrize(
    ("line", "reason"),
    [('ema = "0.9"', "ema must be a number, got '0.9'"), ("grad_clip = true", "grad_clip must be a number, got True")],
)
def test_wrongly_typed_recipe_values_are_one_line_errors(tmp_path, line, reason):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("[train]", f"[train]\n{line}"))
    with pytest.raises(ValueError, match=rf"bad.toml \[train\]: {reason}"):
        load_recipe(bad)


@pytest.mark.parametrize(
    "edit,reason",
    [
        (("patch = 16", "patch = 6"), "data.patch must be a multiple of 8"),
        (("tile = 32", "tile = 20"), "val.tile must be a multiple of 8"),
        (("tiles_per_image = 2", "tiles_per_image = 3"), "val.tiles_per_image must be a positive multiple of model.n"),
        (("[val]\n", "[val]\nsigmas = []\n"), "val.sigmas must be a non-empty list"),
        (("[val]\n", "[val]\nborder = 40\n"), "val.border must be >= 0 and less than half"),
        (("[data]\n", "[data]\nsigma_min = 5.0\nsigma_max = 1.0\n"), "need 0 < data.sigma_min <= data.sigma_max"),
        (("patch = 16", "patch = 80000"), "data.patch must be a multiple of 8 for unet-tx, at most 1024"),  # OOM kill
        (("tile = 32", "tile = 800000"), "val.tile must be a multiple of 8 for unet-tx, at most 1024"),  # 662 GB
        (("[train]\n", "[train]\nseed = 18446744073709552\n"), "train.seed must be in 0..4294967295"),
        (("[data]\n", "[data]\nsigma_max = 40.0\n"), "need 0 < data.sigma_min <= data.sigma_max <= 16"),
        (("[train]\n", "[train]\nthreads = -3\n"), "train.threads must be >= 0"),
        (("[train]\n", "[train]\nlr = inf\n"), "need train.lr > 0"),
        (('arch = "unet-tx"', 'arch = "unet-q"'), "model.arch must be one of"),
        (('arch = "unet-tx"', 'arch = "unet-tx"\ncollab_init = "zero"'), "model.collab_init must be one of"),
        (('arch = "unet-tx"', 'arch = "unet-tx"\nmerge = "add"'), "model.merge must be one of"),
        (('arch = "unet-tx"', 'arch = "unet-tx"\nnorm = "group"'), "model.norm must be one of batch, none"),
    ],
)
def test_recipe_values_are_checked_before_anything_runs(tmp_path, edit, reason):
    text = TINY.read_text()
    assert edit[0] in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ValueError, match=r"bad.toml: " + re.escape(reason)):
        load_recipe(bad)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("model = 3\n", "model must be a [model] table, got 3"),  # was "'int' object is not iterable"
        ("[[train]]\nsteps = 4\n", "train must be a [train] table"),  # "unhashable type: 'dict'"
        ('nmae = "x"\n[model]\n', "unknown section(s) or top-level key(s) ['nmae']"),
    ],
)
def test_a_recipe_of_the_wrong_shape_is_said_so(tmp_path, text, reason):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"bad.toml: " + re.escape(reason)):
        load_recipe(bad)


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "..", 5])
def test_recipe_name_must_be_a_folder_name(tmp_path, name):
    bad = tmp_path / "bad.toml"
    bad.write_text(re.sub(r"^name = .*$", f"name = {json.dumps(name)}", TINY.read_text(), count=1, flags=re.M))
    with pytest.raises(ValueError, match="bad.toml: name must be"):
        load_recipe(bad)


def test_out_and_run_dir_that_are_files_are_refused_before_training(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for flag in ("--out", "--run-dir"):
        other = "--run-dir" if flag == "--out" else "--out"
        args = ["train", str(TINY), flag, str(afile), other, str(tmp_path / "x"), "--no-progress"]
        assert main(args) == 2
        assert f"afile: {flag} must be a folder, and this is a file" in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_lr_override_below_the_floor_lowers_the_floor(tmp_path, capsys):
    args = ["train", str(TINY), "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r"), "--no-progress"]
    assert main([*args, "--lr", "1e-6", "--steps", "1"]) == 0
    assert "lr_min 1e-05 lowered to --lr 1e-06" in capsys.readouterr().err
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert log[0]["recipe"]["train"]["lr_min"] == 1e-6


def test_a_recipe_without_batchnorm_trains_and_ships_that_network(tmp_path):
    from isp_collab.models import load_model
    from isp_collab.training import train

    recipe = tmp_path / "plain.toml"
    recipe.write_text(TINY.read_text().replace('arch = "unet-tx"', 'arch = "unet-tx"\nnorm = "none"', 1))
    r = load_recipe(recipe)
    r.train.steps = 2
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    model = load_model(tmp_path / "m")
    assert model.card["norm"] == "none" and model.config.norm == "none"
