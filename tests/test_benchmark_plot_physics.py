"""benchmarks/plot_physics.py: an ``--images`` folder that is missing or holds no image is refused, not
silently replaced by dead leaves; without ``--images`` the figure is of dead leaves, and says so."""

import pytest


@pytest.fixture
def script(load_benchmark):
    return load_benchmark("plot_physics")


@pytest.mark.parametrize(("case", "message"), [("missing", "no such folder"), ("empty", "no images found")])
def test_a_given_folder_without_images_is_refused(tmp_path, capsys, script, case, message):
    folder = tmp_path / "typo"
    if case == "empty":
        folder.mkdir()
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        script.main(["--images", str(folder), "--out-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and f"{folder}: {message}" in err
    assert not out.exists()


def test_without_images_the_figure_is_of_dead_leaves(tmp_path, capsys, script, monkeypatch):
    titles = []
    real = script.make_sharpen_stack

    def keep_title(args):
        fig = real(args)
        titles.append(fig._suptitle.get_text())
        return fig

    monkeypatch.setitem(script.FIGURES, "sharpen_stack", keep_title)
    script.main(["--out-dir", str(tmp_path), "--n", "2", "--patch", "32"])
    assert "dead leaves" in capsys.readouterr().out
    assert titles[0].startswith("sharpen stack of dead leaves:") and (tmp_path / "sharpen_stack.png").is_file()


def test_a_figure_already_there_is_kept_without_overwrite(tmp_path, capsys, script):
    old = tmp_path / "sharpen_stack.png"
    old.write_bytes(b"published")
    with pytest.raises(SystemExit) as stop:
        script.main(["--out-dir", str(tmp_path), "--n", "2", "--patch", "32"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and f"{old}: already there" in err and "--overwrite" in err
    assert old.read_bytes() == b"published"
    script.main(["--out-dir", str(tmp_path), "--n", "2", "--patch", "32", "--overwrite"])
    assert old.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["sharpen_stack.png"]  # no temp file left


@pytest.fixture
def psf_script(load_benchmark):
    return load_benchmark("plot_psf_field")


def test_psf_field_picture_kept_without_overwrite_and_bad_calibration_refused(tmp_path, capsys, psf_script):
    out = tmp_path / "field.png"
    out.write_bytes(b"published")
    with pytest.raises(SystemExit) as stop:
        psf_script.main(["--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and f"{out}: already there" in err and out.read_bytes() == b"published"
    bad = tmp_path / "lens.npz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(SystemExit) as stop:
        psf_script.main(["--calibration", str(bad), "--out", str(tmp_path / "new.png")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and f"{bad}: not a calibration" in err
    assert not (tmp_path / "new.png").exists()
