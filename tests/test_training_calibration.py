"""Training on a measured lens (a calibration .npz): found beside the recipe, kept with the model, its
optical centre used for validation and by the lens stage."""

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from isp_collab.cli import main
from isp_collab.models import load_model
from isp_collab.physics.psf_field import make_lens, save_calibration
from isp_collab.pipeline import LensCorrect
from isp_collab.pipeline.frame import Frame
from isp_collab.pipeline.io import PipelineWarning

TINY = Path(__file__).resolve().parents[1] / "train" / "tiny.toml"
SIZE = (96, 144)  # (H, W) of the calibration


@pytest.fixture
def lens_recipe(tmp_path):
    """A tiny lens recipe in its own folder naming ``cal.npz`` beside it, optical centre off the frame's."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    field = make_lens("lens-b", image_size=SIZE, grid=(5, 7), ksize=9)
    save_calibration(replace(field, center=(80.0, 40.0)), folder / "cal.npz")
    text = TINY.read_text().replace("n = 2", "n = 4").replace("tiles_per_image = 2\n", "")
    text += '\n[task]\nname = "lens"\nlens = "cal.npz"\n'
    (folder / "lens.toml").write_text(text)
    return folder / "lens.toml"


def test_a_calibration_travels_with_the_model_and_its_centre_with_the_card(tmp_path, lens_recipe, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the recipe's folder: cal.npz is found beside the recipe
    out = tmp_path / "model"
    assert main(["train", str(lens_recipe), "--out", str(out), "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 0
    card = load_model(out).card
    assert card["lens"] == "cal.npz" and (out / "cal.npz").read_bytes() == (lens_recipe.parent / "cal.npz").read_bytes()
    assert card["optical_center"] == pytest.approx([80.5 / 144, 40.5 / 96], abs=1e-6)
    # mirror stacks reach 63.5 px either side of x = 80.5 and 40.5 px either side of y = 40.5
    assert card["frame_not_trained"] == pytest.approx(1 - (2 * 63.5) * (2 * 40.5) / (144 * 96), abs=1e-4)
    stage = LensCorrect(model=str(out), n=4, tile=32)
    stage.network()
    frame = Frame(source=tmp_path / "x.png", kind="rgb", height=192, width=288, bit_depth=8)
    # a frame twice the calibration's size: the centre scales with it, and the user is told the PSFs do not
    assert card["lens_frame"] == [96, 144]
    with pytest.warns(PipelineWarning, match=r"x.png: the lens model .* calibration of 96x144 \(H x W\) frames, and "):
        kw = stage.restore_kwargs(frame)
    assert kw["center"] == pytest.approx((80.5 / 144 * 288 - 0.5, 40.5 / 96 * 192 - 0.5))
    with warnings.catch_warnings():  # the calibration's size, also as an image turned upright (EXIF 6)
        warnings.simplefilter("error")
        stage.restore_kwargs(Frame(source=tmp_path / "y.png", kind="rgb", height=96, width=144, bit_depth=8))
        stage.restore_kwargs(Frame(source=tmp_path / "y.png", kind="rgb", height=144, width=96, bit_depth=8, turned=6))
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


def test_a_resume_finds_the_calibration_from_another_folder_and_refuses_an_edited_one(
    tmp_path, lens_recipe, monkeypatch
):
    from isp_collab.training import load_recipe, train

    def recipe():
        r = load_recipe(lens_recipe.name if Path.cwd() == lens_recipe.parent else lens_recipe)
        r.train.steps = 4
        return r

    monkeypatch.chdir(lens_recipe.parent)  # started as "lens.toml" naming "cal.npz", from the recipe's folder
    for run in ("r", "r2"):
        train(recipe(), tmp_path / f"m-{run}", run_dir=tmp_path / run, progress=False, stop_after=2)
    monkeypatch.chdir(tmp_path)  # resumed by the recipe's full path: the same calibration
    assert train(recipe(), tmp_path / "m-r", run_dir=tmp_path / "r", progress=False, resume=True)["finished"]
    assert load_model(tmp_path / "m-r").card["lens_sha256"]
    field = make_lens("lens-b", image_size=SIZE, grid=(5, 7), ksize=9)
    save_calibration(replace(field, center=(70.0, 50.0)), lens_recipe.parent / "cal.npz")  # edited since
    with pytest.raises(ValueError, match=r"the calibration .*cal\.npz changed since the run started"):
        train(recipe(), tmp_path / "m-r2", run_dir=tmp_path / "r2", progress=False, resume=True)


def test_a_cards_bare_calibration_name_is_the_model_folders_file_first(tmp_path):
    from isp_collab.models.weights import calibration_candidates

    model = tmp_path / "model"
    assert calibration_candidates("cal.npz", model) == [model / "cal.npz", Path("cal.npz")]
    assert calibration_candidates("lenses/cal.npz", model) == [
        Path("lenses/cal.npz"),
        model / "lenses/cal.npz",
        model / "cal.npz",
    ]
    assert calibration_candidates(str(tmp_path / "x.npz"), model) == [tmp_path / "x.npz"]


@pytest.mark.parametrize("turned", range(1, 9))
def test_the_trained_centre_turns_with_an_image_turned_upright_at_decode(turned):
    """The card's centre is the sensor's; an ordinary image turned by its EXIF orientation takes it along."""
    from isp_collab.pipeline.frame import apply_orientation

    stage = LensCorrect()
    stage._model_card = {"optical_center": [2.5 / 8, 1.5 / 8]}  # the centre of pixel (row 1, col 2), 8 x 8 sensor
    sensor = np.zeros((8, 8))
    sensor[1, 2] = 1
    upright = apply_orientation(sensor, turned)
    frame = Frame(source=Path("x.jpg"), kind="rgb", height=8, width=8, bit_depth=8, turned=turned)
    x, y = stage._optical_center(frame)
    row, col = np.argwhere(upright == 1)[0]
    assert (x, y) == pytest.approx((col, row))  # the same pixel


def test_an_off_centre_axis_warns_of_the_frame_its_mirror_stacks_miss(lens_recipe):
    from isp_collab.training import load_recipe
    from isp_collab.training.tasks import build_task

    with pytest.warns(UserWarning, match=r"never reach 25\.6% of the frame"):
        build_task(load_recipe(lens_recipe))


def test_an_off_centre_axis_notes_the_field_regions_validation_has_no_tiles_for(tmp_path, lens_recipe, capsys):
    # centre (80, 40) of 144 x 96: on the 256-px validation photos mirror tiles reach field radius 0.65 < 2/3
    argv = ["train", str(lens_recipe), "--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r")]
    assert main([*argv, "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    note = (
        "note: validation has no tiles in the field's edge (above 2/3) region, so no figures for it: mirror tiles "
        f"of val.tile = 32 px about the optical centre of {lens_recipe.parent / 'cal.npz'} fit in the frame only at "
        "field radius 0.11 to 0.65 (1 = the farthest corner)"
    )
    assert note in err, err
    assert set(load_model(tmp_path / "m").card["validation"]["restored"]) == {"centre", "intermediate"}
    # a centred axis: every region has tiles, and no note
    save_calibration(make_lens("lens-b", image_size=SIZE, grid=(5, 7), ksize=9), lens_recipe.parent / "cal.npz")
    argv = ["train", str(lens_recipe), "--out", str(tmp_path / "m2"), "--run-dir", str(tmp_path / "r2")]
    assert main([*argv, "--no-progress"]) == 0
    assert "no tiles" not in capsys.readouterr().err
    assert set(load_model(tmp_path / "m2").card["validation"]["restored"]) == {"centre", "intermediate", "edge"}
