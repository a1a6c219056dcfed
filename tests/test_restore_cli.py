"""``isp-collab gather``: the picture, and one-line errors with exit code 2 and nothing written."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from isp_collab.cli import main
from isp_collab.restore import draw_gathering, gather_stacks, make_grid


@pytest.fixture
def image(tmp_path):
    y, x = np.mgrid[0:300, 0:420]
    bgr = np.stack([x % 256, y % 256, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), bgr)
    return path


@pytest.mark.parametrize("strategy", ["spread", "local", "mirror"])
def test_gather_writes_the_picture(image, tmp_path, capsys, strategy):
    out = tmp_path / "stacks.png"
    argv = [str(image), "--strategy", strategy, "--n", "4", "--tile", "64", "--overlap", "16", "-o", str(out)]
    if strategy == "mirror":
        argv += ["--center", "150,100"]
    assert main(["gather", *argv]) == 0
    pic = cv2.imread(str(out))
    assert pic.shape == (300, 420, 3)
    assert not np.array_equal(pic, cv2.imread(str(image)))  # something was drawn
    msg = capsys.readouterr().out
    assert f"wrote {out}" in msg and f"stacks of N=4, strategy {strategy}" in msg
    assert list(tmp_path.glob("*.tmp")) == []  # no temp file left behind
    white = (pic == 255).all(axis=-1)  # the image's red is 90 everywhere: white is drawn
    centre_lines = white[:, 150].mean() > 0.9 and white[100, :].mean() > 0.9  # the axes through --center 150,100
    assert centre_lines == (strategy == "mirror")


@pytest.mark.parametrize(("n", "tile"), [("1", 256), ("4", 192), ("8", 160)])
def test_gather_draws_the_tile_process_uses_for_the_stack_size(image, tmp_path, capsys, n, tile):
    out = tmp_path / "stacks.png"
    assert main(["gather", str(image), "--n", n, "-o", str(out)]) == 0
    assert f"tile {tile}, overlap 32" in capsys.readouterr().out


def test_gather_model_draws_the_models_own_n_and_tile(image, tmp_path, capsys):
    """--model lens-a-unet-tx-n1 drew stacks of 4 on 192-px tiles where process runs N=1 on 256-px ones."""
    out = tmp_path / "stacks.png"
    assert main(["gather", str(image), "--model", "lens-a-unet-tx-n1", "-o", str(out)]) == 0
    msg = capsys.readouterr().out
    assert "tile 256, overlap 32" in msg and "of N=1, strategy mirror" in msg
    assert main(["gather", str(image), "--model", "lens-a-unet-tx-n4", "-o", str(out), "--overwrite"]) == 0
    msg = capsys.readouterr().out
    assert "tile 192, overlap 32" in msg and "of N=4, strategy mirror" in msg


def test_gather_caps_the_stack_at_the_images_tiles_as_restore_does(tmp_path, capsys):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((200, 250, 3), np.uint8))
    out = tmp_path / "stacks.png"
    assert main(["gather", str(small), "--n", "8", "-o", str(out)]) == 0
    assert "4 tiles (2x2, tile 160, overlap 32), 1 stack of N=4" in capsys.readouterr().out


def test_each_stack_gets_its_own_colour():
    img = np.full((200, 200, 3), 128, np.uint8)
    grid = make_grid(200, 200, tile=64, overlap=16)
    stacks = gather_stacks(grid, 4, "local")
    pic = draw_gathering(img, grid, stacks, numbers=False)
    assert pic.dtype == np.uint8 and pic.shape == img.shape
    colours = set()
    for s in stacks:
        y0, x0 = grid.position(s.tiles[0])
        y, x = max(y0, 0) + 20, max(x0, 0) + 20  # inside the first tile's cell
        colours.add(tuple(pic[y, x]))
    assert len(colours) == len(stacks)


def test_existing_output_is_refused_without_overwrite(image, tmp_path, capsys):
    out = tmp_path / "stacks.png"
    out.write_bytes(b"keep me")
    assert main(["gather", str(image), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "stacks.png: exists (use --overwrite" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b"keep me"
    assert main(["gather", str(image), "--tile", "64", "--overlap", "16", "-o", str(out), "--overwrite"]) == 0
    assert cv2.imread(str(out)).shape == (300, 420, 3)


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, [], "missing.png: no such file"),
        (b"", [], "empty.png: empty file"),
        (b"this is text, not pixels", [], "corrupt.png: cannot read image (not a PNG image or corrupt)"),
        ("ok", ["--center", "12"], "--center must be X,Y"),
        ("ok", ["--strategy", "mirror", "--center", "5000,10"], "outside"),
        ("ok", ["--center", "10,10"], "--center applies to --strategy mirror only"),
        ("ok", ["--n", "0"], "--n must be between 1 and 64, got 0"),
        ("ok", ["--n", "65"], "--n must be between 1 and 64, got 65"),
        ("ok", ["--tile", "100000"], "--tile must be between 1 and 4096, got 100000"),
        ("ok", ["--tile", "100"], "--tile must be a multiple of 8 (2**depth of the shipped networks), got 100"),
        ("ok", ["--tile", "64", "--overlap", "40"], "overlap must be"),
    ],
    ids=[
        "missing",
        "empty",
        "corrupt",
        "center-format",
        "center-outside",
        "center-not-mirror",
        "n",
        "n-big",
        "tile-big",
        "tile-multiple",
        "overlap",
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(image, tmp_path, capsys, make, args, message):
    names = {None: "missing.png", b"": "empty.png", b"this is text, not pixels": "corrupt.png", "ok": image.name}
    src = tmp_path / names[make]
    if isinstance(make, bytes):
        src.write_bytes(make)
    out = tmp_path / "out" / "stacks.png"
    out.parent.mkdir()
    assert main(["gather", str(src), *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    if make != "ok":
        assert str(src) in err  # names the file
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("kind", ["png", "dng"])
def test_truncated_input_is_one_line_even_from_c_libraries(image, tmp_path, capfd, kind):
    # capfd: what libpng / LibRaw print on file descriptor 2 counts too
    if kind == "png":
        whole = image.read_bytes()
    else:
        whole = (Path(__file__).resolve().parents[1] / "isp_collab" / "assets" / "blackmagic_pocket4k.dng").read_bytes()
    src = tmp_path / f"cut.{kind}"
    src.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "stacks.png"
    assert main(["gather", str(src), "-o", str(out)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(src) in err[0] and "truncated" in err[0], err
    assert not out.exists()


def test_bad_output_paths_are_refused(image, tmp_path, capsys):
    assert main(["gather", str(image), "-o", str(tmp_path / "stacks.xyz")]) == 2
    assert "unsupported output type" in capsys.readouterr().err
    assert main(["gather", str(image), "-o", str(tmp_path / "nowhere" / "stacks.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "a-file.png").write_bytes(b"x")
    assert main(["gather", str(image), "-o", str(tmp_path / "a-file.png" / "stacks.png")]) == 2
    assert "a-file.png is a file, not a folder" in capsys.readouterr().err
    before = image.read_bytes()
    assert main(["gather", str(image), "-o", str(image), "--overwrite"]) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert image.read_bytes() == before


def test_small_tile_gets_the_shared_default_overlap(image, tmp_path, capsys):
    out = tmp_path / "stacks.png"
    assert main(["gather", str(image), "--tile", "32", "-o", str(out)]) == 0  # was: overlap 32 > tile // 2
    assert "tile 32, overlap 8)" in capsys.readouterr().out  # default_overlap(32), as restore and process use
    assert main(["gather", str(image), "--tile", "64", "--overlap", "40", "-o", str(out), "--overwrite"]) == 2
    assert capsys.readouterr().err.strip().endswith("--overlap must be in [0, tile // 2 = 32], got 40")
    with pytest.raises(SystemExit):
        main(["gather", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "0..tile // 2 (default: 32 px or tile // 4, whichever is smaller)" in help_text  # as enforced above


def test_gather_decodes_as_process_does(tmp_path, capsys):
    from test_pipeline_headerless_decode import description, write_headerless

    raw = write_headerless(tmp_path, np.full((32, 48), 200), description())  # headerless dump + its .json
    assert main(["gather", str(raw), "--tile", "16", "-o", str(tmp_path / "h.png")]) == 0
    assert "48x32" in capsys.readouterr().out
    # the bundled DNG: its DefaultCrop (4096x2160 of 4128x2176), the image process restores
    dng = Path(__file__).resolve().parents[1] / "isp_collab" / "assets" / "blackmagic_pocket4k.dng"
    assert main(["gather", str(dng), "--strategy", "mirror", "-o", str(tmp_path / "d.jpg")]) == 0
    assert "4096x2160" in capsys.readouterr().out


def test_mirror_stack_size_warning_is_one_line(image, tmp_path, capsys):
    assert (
        main(["gather", str(image), "--strategy", "mirror", "--n", "3", "--tile", "64", "-o", str(tmp_path / "g.png")])
        == 0
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("isp-collab gather: warning: stack size 3 with mirror gathering"), err


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_gather_lays_the_grid_where_process_restores_a_turned_raw_file(tmp_path, capsys, monkeypatch, orientation):
    """process restores a RAW file on its unrotated sensor frame and turns the result upright at the end: gather
    draws that grid and those stacks, then turns the picture, the stack numbers written upright."""
    import torch
    from test_pipeline_dng import random_mosaic, write_dng

    import isp_collab.restore as restore_package
    import isp_collab.restore.api as restore_api
    from isp_collab.cli.gather import read_display_image
    from isp_collab.models import create_model, save_model
    from isp_collab.pipeline import Pipeline, Sharpen, apply_orientation
    from isp_collab.pipeline.frame import orient_box
    from isp_collab.restore.draw import draw_labels, gathering_labels

    torch.set_num_threads(1)
    dng = write_dng(tmp_path / "turned.dng", random_mosaic(12, shape=(64, 96)), "RGGB", 12, orientation=orientation)
    grids: dict[str, list] = {"process": [], "gather": []}

    def recorder(name, make):
        def record(*args, **kwargs):
            grids[name].append((*args, kwargs))
            return make(*args, **kwargs)

        return record

    monkeypatch.setattr(restore_api, "make_grid", recorder("process", restore_api.make_grid))
    monkeypatch.setattr(restore_package, "make_grid", recorder("gather", restore_package.make_grid))
    model = save_model(create_model("unet-tx", n=4), tmp_path / "m", {"task": "sharpen", "n_trained": 4})
    upright = Pipeline(sharpen=Sharpen(model=str(model), n=4, tile=32, overlap=8)).run(dng).image
    out = tmp_path / "stacks.png"
    argv = ["gather", str(dng), "--tile", "32", "--overlap", "8", "--n", "4", "-o", str(out)]
    assert main(argv) == 0
    # the sensor frame, as process tiles it
    assert grids["gather"] == grids["process"] == [(64, 96, 32, 8, None, {"symmetric": False})]
    picture = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert picture.shape == upright.shape  # shown upright, as process writes it
    rgb, turn = read_display_image(dng)
    assert turn == orientation and rgb.shape == (64, 96, 3)
    grid = make_grid(64, 96, 32, 8, None, symmetric=False)
    stacks = gather_stacks(grid, 4, "spread")
    expected = apply_orientation(draw_gathering(rgb, grid, stacks, numbers=False), orientation)
    labels = [
        label.__class__(label.text, orient_box(label.box, 64, 96, orientation), label.colour)
        for label in gathering_labels(grid, stacks)
    ]
    numbered = draw_labels(expected.copy(), labels)
    assert (numbered != expected).any()  # the cells are big enough for their numbers
    np.testing.assert_array_equal(picture, numbered)  # the numbers written after the turn: upright
    assert f"tiles on the unrotated 96x64 sensor frame, EXIF orientation {orientation}" in capsys.readouterr().out


def test_gather_model_lays_mirror_stacks_about_the_lens_models_optical_centre(tmp_path, capsys):
    """--model reads the card's optical_center (fractions of width and height), as process's lens stage does."""
    from isp_collab.models import create_model, save_model

    card = {"task": "lens", "n_trained": 4, "lens": "mine.npz", "optical_center": [0.75, 0.25]}
    model = save_model(create_model("unet-tx", n=4), tmp_path / "lens-model", card)
    src = tmp_path / "in.png"
    assert cv2.imwrite(str(src), np.full((64, 96, 3), 128, np.uint8))
    base = ["gather", str(src), "--tile", "32", "--n", "4", "--model", str(model)]
    assert main([*base, "--strategy", "mirror", "-o", str(tmp_path / "a.png")]) == 0
    assert "centre (71.5, 15.5)" in capsys.readouterr().out  # 0.75 * 96 - 0.5, 0.25 * 64 - 0.5
    assert main([*base, "-o", str(tmp_path / "b.png")]) == 0  # the model's own gathering, as process: mirror
    assert "strategy mirror, centre (71.5, 15.5)" in capsys.readouterr().out
    for flags, said in (
        (["--strategy", "spread"], f"--model {model} gives the optical centre of mirror gathering, and --strategy "),
        (["--strategy", "mirror", "--center", "10,10"], f"--model {model} gives the optical centre (its card's)"),
    ):
        assert main([*base, *flags, "-o", str(tmp_path / "c.png")]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c.png").exists()


def test_gather_model_defaults_to_the_shipped_lens_models_mirror_stacks(image, tmp_path, capsys):
    """--model LENS_MODEL alone was refused ("use it with mirror"), though process gathers as the model's card says."""
    out = tmp_path / "s.png"
    assert main(["gather", str(image), "--model", "lens-a-unet-tx-n4", "--tile", "64", "-o", str(out)]) == 0
    assert "strategy mirror, centre (" in capsys.readouterr().out and out.is_file()
    assert main(["gather", str(image), "--tile", "64", "-o", str(out), "--overwrite"]) == 0  # no --model: spread
    assert capsys.readouterr().out.strip().endswith("strategy spread")
    with pytest.raises(SystemExit):
        main(["gather", "--help"])
    assert "with --model, the model's own: mirror for a lens model" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("strategy", [[], ["--strategy", "mirror"]], ids=["default", "mirror"])
def test_gather_model_refuses_a_model_that_is_not_a_lens_model_in_its_own_terms(tmp_path, capsys, strategy):
    """A sharpening model was refused as one that "cannot run the lens stage": gather has no stages."""
    from isp_collab.models import create_model, save_model

    model = save_model(create_model("unet-tx", n=4), tmp_path / "sharp", {"task": "sharpen", "n_trained": 4})
    src, out = tmp_path / "in.png", tmp_path / "s.png"
    assert cv2.imwrite(str(src), np.full((64, 96, 3), 128, np.uint8))
    assert main(["gather", str(src), "--tile", "32", "--model", str(model), *strategy, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"{model / 'card.json'}: a 'sharpen' model, not a lens model: it has no optical centre" in err
    assert "stage" not in err and not out.exists()
