"""Training on a measured lens (a calibration .npz): found beside the recipe, kept with the model, its
optical centre used for validation and by the lens stage."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from isp_collab.cli import main
from isp_collab.models import load_model
from isp_collab.physics.psf_field import make_lens, save_calibration
from isp_collab.pipeline.collaborative import LensCorrect
from isp_collab.pipeline.frame import Frame

TINY = Path(__file__).resolve().parents[1] / "train" / "tiny.toml"
SIZE = (96, 144)  # (H, W) of the calibration


@pytest.fixture
def lens_recipe(tmp_path):
    """A tiny lens recipe in its own folder naming ``cal.npz`` beside it, optical centre off the frame's."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    field = make_lens("lens-b", image_size=SIZE, grid=(5, 7), ksize=9)
    save_calibration(replace(field, center=(80.0, 40.0)), folder / "cal.npz")
    text = TINY.read_text().replace("n = 2", "n = 4") + '\n[task]\nname = "lens"\nlens = "cal.npz"\n'
    (folder / "lens.toml").write_text(text)
    return folder / "lens.toml"


def test_a_calibration_travels_with_the_model_and_its_centre_with_the_card(tmp_path, lens_recipe, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the recipe's folder: cal.npz is found beside the recipe
    out = tmp_path / "model"
    assert main(["train", str(lens_recipe), "--out", str(out), "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 0
    card = load_model(out).card
    assert card["lens"] == "cal.npz" and (out / "cal.npz").read_bytes() == (lens_recipe.parent / "cal.npz").read_bytes()
    assert card["optical_center"] == pytest.approx([80.5 / 144, 40.5 / 96], abs=1e-6)
    stage = LensCorrect(model=str(out), n=4, tile=32)
    stage.network()
    frame = Frame(source=tmp_path / "x.png", kind="rgb", height=192, width=288, bit_depth=8)
    assert stage.restore_kwargs(frame)["center"] == pytest.approx((80.5 / 144 * 288 - 0.5, 40.5 / 96 * 192 - 0.5))
    explicit = LensCorrect(model=str(out), n=4, tile=32, center=(10.0, 20.0))
    assert explicit.restore_kwargs(frame)["center"] == (10.0, 20.0)


def test_a_calibration_centre_outside_its_image_is_refused(tmp_path, lens_recipe, capsys):
    with np.load(lens_recipe.parent / "cal.npz") as cal:
        arrays = dict(cal)
    arrays["center"] = np.array([500.0, 40.0])
    np.savez(lens_recipe.parent / "cal.npz", **arrays)
    assert main(["train", str(lens_recipe), "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "lens.toml: task.lens:" in err and "cal.npz: center (500.0, 40.0) (x, y) is outside the 96x144" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()
