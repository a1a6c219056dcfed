"""Headerless dumps vs LibRaw: which decoder reads a ``.raw`` file, finding its description, its colour warning."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_pipeline_headerless_decode import description, write_headerless

from isp_collab.cli import main
from isp_collab.pipeline import HeaderlessDecode, InputError, Pipeline, PipelineWarning
from isp_collab.pipeline.batch import expand_inputs
from isp_collab.pipeline.io import descriptions_beside, input_kind

CHART = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "raw" / "headerless" / "chart_1920x1080_10bit_RGGB.raw"
)
NO_CCM = r"no colour matrix \(ccm_cam_to_srgb\) in {}; camera RGB is used as sRGB \(identity\)"


@pytest.fixture
def no_libraw(monkeypatch):
    """Fail the test if anything hands a file to LibRaw."""
    import rawpy

    def imread(*args, **kwargs):
        raise AssertionError(f"LibRaw was asked to read {args[0] if args else kwargs}")

    monkeypatch.setattr(rawpy, "imread", imread)


def _dump(folder: Path, name: str) -> Path:
    """A 48x32 10-bit little-endian dump with no description beside it (no RAW header: it starts with samples)."""
    p = folder / name
    np.random.default_rng(0).integers(0, 1024, (32, 48)).astype("<u2").tofile(p)
    return p


@pytest.mark.parametrize("name", ["dump.raw", "dump.RAW", "dump.Raw"])
def test_undescribed_raw_is_refused_before_libraw(tmp_path, no_libraw, name):
    raw = _dump(tmp_path, name)
    assert input_kind(raw) == "headerless"  # not "raw": LibRaw would guess a layout from the file size
    with pytest.raises(InputError) as info:
        Pipeline().read(raw)
    assert str(info.value) == (
        f"{raw}: no sensor description found (a headerless dump needs dump.json or .toml beside it)"
    )
    assert [p.name for p in expand_inputs([tmp_path])] == [name]  # a folder's undescribed dump is reported, not skipped


def test_undescribed_raw_cli_is_one_line_exit_2_nothing_written(tmp_path, capsys, no_libraw):
    raw = _dump(tmp_path, "nojson.RAW")
    out = tmp_path / "x.png"
    assert main(["process", str(raw), "-o", str(out), "--stages", "none"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [
        f"isp-collab process: error: {raw}: no sensor description found "
        "(a headerless dump needs nojson.json or .toml beside it)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nojson.RAW"]  # nothing written


@pytest.mark.skipif(not CHART.is_file(), reason=f"shared chart dump not found at {CHART}")
def test_real_chart_dump_without_description_is_refused(tmp_path, capsys):
    """LibRaw opens this 4,147,200-byte dump by its size alone (wrong pattern, white 65535): it must not get it."""
    raw = tmp_path / "nojson.raw"
    shutil.copyfile(CHART, raw)
    out = tmp_path / "x.png"
    assert main(["process", str(raw), "-o", str(out), "--stages", "none"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].endswith(
        "nojson.raw: no sensor description found (a headerless dump needs nojson.json or .toml beside it)"
    ), err
    assert not out.exists()


def test_raw_with_a_libraw_header_still_goes_to_libraw(tmp_path):
    """A Panasonic/Leica ``.RAW`` ("IIU\\0" header) is a LibRaw format; without a description it is LibRaw's."""
    raw = tmp_path / "P1000001.RAW"
    raw.write_bytes(b"IIU\0" + bytes(range(256)) * 16)
    assert input_kind(raw) == "raw"
    with pytest.raises(InputError, match=r"P1000001\.RAW: .*\(a headerless dump needs P1000001\.json or \.toml"):
        Pipeline().read(raw)  # a broken one: LibRaw's reason, and the hint for a dump


@pytest.mark.parametrize(("suffix", "fmt"), [(".JSON", "json"), (".Json", "json"), (".TOML", "toml")])
def test_description_suffix_in_any_case_is_found(tmp_path, no_libraw, suffix, fmt):
    mosaic = np.random.default_rng(1).integers(0, 1024, (32, 48))
    raw = write_headerless(tmp_path, mosaic, description(), fmt=fmt)
    (tmp_path / f"frame.{fmt}").rename(tmp_path / f"frame{suffix}")
    assert input_kind(raw) == "headerless"
    with pytest.warns(PipelineWarning, match=NO_CCM.format(rf"frame\{suffix}")):  # named as it is spelt
        got, frame = HeaderlessDecode()(raw)
    np.testing.assert_array_equal(got, mosaic)
    assert frame.cfa_pattern == "RGGB" and frame.white_level == 1023
    assert [p.name for p in expand_inputs([tmp_path])] == ["frame.raw"]  # the description is not an input


def test_the_description_named_as_written_wins_over_a_case_variant(tmp_path):
    """frame.json beside frame.raw is found by name (no folder listing); a frame.JSON beside it is not a second
    candidate. Only when the name as written is absent is the folder searched for another case."""
    raw = write_headerless(tmp_path, np.zeros((32, 48)), description())
    (tmp_path / "frame.JSON").write_text("{not json")
    if len(list(tmp_path.iterdir())) < 3:
        pytest.skip("case-insensitive file system: frame.JSON is frame.json")
    assert descriptions_beside(raw) == [tmp_path / "frame.json"]
    (tmp_path / "frame.json").unlink()
    assert descriptions_beside(raw) == [tmp_path / "frame.JSON"]


def test_description_without_colour_matrix_warns_as_raw_files_do(tmp_path, capsys):
    raw = write_headerless(tmp_path, np.full((32, 48), 300), description())
    expected = "^" + re.escape(f"{raw}: ") + NO_CCM.format(r"frame\.json") + "$"
    with pytest.warns(PipelineWarning, match=expected):
        frame = HeaderlessDecode()(raw)[1]
    assert frame.cam_to_srgb is None
    assert main(["process", str(raw), "-o", str(tmp_path / "x.png"), "--stages", "none"]) == 0
    err = capsys.readouterr().err
    assert f"isp-collab process: warning: {raw}: no colour matrix (ccm_cam_to_srgb) in frame.json;" in err


def test_description_with_colour_matrix_does_not_warn(tmp_path):
    ccm = [[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]]
    raw = write_headerless(tmp_path, np.full((32, 48), 300), description(ccm_cam_to_srgb=ccm))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PipelineWarning)
        frame = HeaderlessDecode()(raw)[1]
    assert frame.cam_to_srgb is not None


def test_missing_white_balance_names_the_description_not_the_file(tmp_path):
    """A dump has no metadata of its own: the gains are missing from its description, and the warning says so."""
    ccm = [[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]]
    raw = write_headerless(tmp_path, np.full((32, 48), 300), description(ccm_cam_to_srgb=ccm))
    expected = "^" + re.escape(f"{raw}: no white balance (wb_gains_rgb) in frame.json; using gray world") + "$"
    with pytest.warns(PipelineWarning, match=expected):
        frame = Pipeline().read(raw)[1]
    assert frame.wb_source == "gray_world" and frame.description == tmp_path / "frame.json"


def test_orientation_in_the_description_turns_the_finished_image(tmp_path, capsys):
    """A sensor mounted upside down: ``orientation = 3`` turns the output 180°, as EXIF does for a file."""
    import cv2

    ccm = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    mosaic = np.tile(np.linspace(100, 900, 48), (32, 1))  # bright to the right
    outs = {}
    for orientation in (1, 3, 6):
        folder = tmp_path / str(orientation)
        folder.mkdir()
        desc = description(ccm_cam_to_srgb=ccm, wb_gains_rgb=[1.0, 1.0, 1.0], orientation=orientation)
        raw = write_headerless(folder, mosaic, desc)
        assert main(["process", str(raw), "-o", str(folder / "out.png"), "--stages", "none"]) == 0
        outs[orientation] = cv2.imread(str(folder / "out.png")).astype(float).mean(axis=2)
    assert outs[1].shape == outs[3].shape == (32, 48) and outs[6].shape == (48, 32)
    assert outs[1][:, -1].mean() > outs[1][:, 0].mean() and outs[3][:, 0].mean() > outs[3][:, -1].mean()
    np.testing.assert_array_equal(outs[3], outs[1][::-1, ::-1])
    raw = write_headerless(tmp_path, mosaic, description(orientation=9), name="bad")
    assert main(["process", str(raw), "-o", str(tmp_path / "bad.png")]) == 2
    assert "'orientation' must be an EXIF orientation 1..8, got 9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ccm", "problem"),
    [
        ([[0, 0, 0]] * 3, r"is singular \(rows \[\[0\.0, 0\.0, 0\.0\], "),  # was a black picture
        ([[0.4, 0.3, 0.3]] * 3, r"is singular"),  # every colour onto one grey: a flat picture
        ([[-1, 0, 0], [0, -1, 0], [0, 0, -1]], r"turns white black \(row sums \[-1\.0, -1\.0, -1\.0\]\)"),
    ],
)
def test_an_unusable_colour_matrix_is_replaced_by_the_identity_with_a_warning(tmp_path, ccm, problem):
    """As the RAW decoder does with a singular matrix: said, and camera RGB used as sRGB."""
    mosaic = np.random.default_rng(1).integers(64, 1024, (32, 48))
    gains = [1.5, 1.0, 1.2]
    raw = write_headerless(tmp_path, mosaic, description(ccm_cam_to_srgb=ccm, wb_gains_rgb=gains))
    expected = rf"^{re.escape(str(raw))}: the colour matrix \(ccm_cam_to_srgb\) in frame\.json {problem}.*; camera RGB "
    with pytest.warns(PipelineWarning, match=expected + r"is used as sRGB \(identity\)$"):
        image = Pipeline().run(raw).image
    identity = write_headerless(
        tmp_path, mosaic, description(ccm_cam_to_srgb=np.eye(3).tolist(), wb_gains_rgb=gains), name="identity"
    )
    np.testing.assert_array_equal(image, Pipeline().run(identity).image)


@pytest.mark.parametrize("black", [1022, [1000, 1000, 1000, 1020]])
def test_levels_leaving_a_sliver_of_the_bit_depth_are_warned_about(tmp_path, black):
    raw = write_headerless(tmp_path, np.full((32, 48), 300), description(black_level=black, white_level=1023))
    expected = rf"^{re.escape(str(raw))}: white_level 1023 - black_level 102[02] in frame\.json leaves [13] of the "
    with pytest.warns(PipelineWarning, match=expected + r"10-bit range 1023: samples outside it come out black or"):
        HeaderlessDecode()(raw)  # was an all-black picture without a word
