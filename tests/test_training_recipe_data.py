"""Recipes: image folders relative to the recipe file; validation photos spread over a large folder."""

import os
from pathlib import Path

import numpy as np

from isp_collab.cli import main
from isp_collab.training import load_recipe

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "train" / "tiny.toml"


def tiny():
    return load_recipe(TINY)


def test_recipe_image_folders_are_relative_to_the_recipe(tmp_path, monkeypatch):
    (tmp_path / "recipes").mkdir()
    recipe = tmp_path / "recipes" / "mine.toml"
    text = TINY.read_text().replace("[data]\n", '[data]\nimages = ["../photos", "/abs/photos"]\nval_images = ["val"]\n')
    recipe.write_text(text)
    monkeypatch.chdir(tmp_path / "recipes")  # anywhere but the recipe's parent
    r = load_recipe(Path("mine.toml"))
    assert r.data.images == ["../photos", "/abs/photos"] and r.data.val_images == ["val"]
    monkeypatch.chdir(tmp_path)
    r = load_recipe(Path("recipes/mine.toml"))
    assert r.data.images == ["photos", "/abs/photos"] and r.data.val_images == [os.path.join("recipes", "val")]


def test_recipe_image_folders_must_be_strings(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("[data]\n", "[data]\nimages = [3]\n"))
    assert main(["train", str(bad), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "images must be a list of folder paths" in err and str(bad) in err


def test_validation_photos_are_spread_over_a_large_folder(tmp_path):
    from PIL import Image

    from isp_collab.training.tasks import validation_photos

    folder = tmp_path / "val"
    folder.mkdir()
    for i in range(10):  # photo i is a flat grey of level 10 * i
        Image.fromarray(np.full((40, 40, 3), 10 * i, np.uint8)).save(folder / f"{i:02d}.png")
    r = tiny()
    r.data.val_images, r.val.max_images = [str(folder)], 4
    levels = [round(float(p.mean()) * 255) for p in validation_photos(r)]
    assert levels == [0, 20, 50, 70]  # not the first four (0, 10, 20, 30)
