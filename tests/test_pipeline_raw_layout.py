"""Where a DNG's picture is: its default crop (inside an active area, spanning an axis, at odd origins), its
orientation (the mirrored ones too), and the files LibRaw decodes wrong, which are said so."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_pipeline_dng import random_mosaic, write_dng

from isp_collab.pipeline import InputError, PipelineWarning, RawDecode
from isp_collab.pipeline.raw import _check_strips
from isp_collab.pipeline.raw_layout import RawLayout

H, W = 40, 56


def _decode(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PipelineWarning)  # no colour matrix: not what these tests are about
        return RawDecode(**kw)(path)


@pytest.mark.parametrize("area", [(4, 6), (20, 30)])
def test_a_default_crop_inside_an_active_area_is_where_the_file_says(tmp_path, area):
    """LibRaw's crop margins count from the full frame, raw_image_visible from the active area: the crop landed
    (top, left) too far, and past the frame's edge it was silently cut short (146x102 for 198x136)."""
    top, left = area
    picture = random_mosaic(16, (H, W), seed=1)
    stored = np.full((H + top, W + left), 60000, np.uint16)  # the masked border: never part of the picture
    stored[top:, left:] = picture
    path = write_dng(
        tmp_path / "a.dng", stored, active_area=(top, left, top + H, left + W), crop=(8, 6, W - 16, H - 12)
    )
    mosaic, frame = _decode(path)
    np.testing.assert_array_equal(mosaic, picture[6 : H - 6, 8 : W - 8])
    assert frame.cfa_pattern == "RGGB"


@pytest.mark.parametrize(
    ("crop", "pattern"),
    [((4, 0, W - 8, H), "RGGB"), ((0, 4, W, H - 8), "RGGB"), ((3, 5, 41, 27), "BGGR"), ((1, 0, 41, 30), "GRBG")],
)
def test_every_default_crop_is_applied_exactly(tmp_path, crop, pattern):
    """LibRaw reports no crop that spans a whole axis (the full frame came out) and rounds odd ones to even (one
    pixel off and one smaller); the CFA pattern follows the crop's origin."""
    x, y, w, h = crop
    picture = random_mosaic(16, (H, W), seed=2)
    mosaic, frame = _decode(write_dng(tmp_path / "c.dng", picture, crop=crop))
    np.testing.assert_array_equal(mosaic, picture[y : y + h, x : x + w])
    assert frame.cfa_pattern == pattern


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_read_the_mirrored_ones_too(tmp_path, orientation):
    """Orientations 2, 4, 5 and 7 came out as 1 (5 and 7 without their quarter turn)."""
    path = write_dng(tmp_path / "o.dng", random_mosaic(12, (H, W)), bits=12, orientation=orientation)
    assert _decode(path)[1].orientation == orientation


def test_a_singular_colour_matrix_is_warned_about_not_applied(tmp_path):
    """ColorMatrix1 with every entry 0.3: LibRaw's camera->sRGB matrix has one non-zero row, and the picture came
    out pure red."""
    flat = [[3, 10]] * 9
    path = write_dng(tmp_path / "m.dng", random_mosaic(12, (H, W)), bits=12, matrix=flat)
    with pytest.warns(
        PipelineWarning,
        match=r"m\.dng: the camera->sRGB matrix LibRaw derives from the file.s colour matrix is singular",
    ):
        frame = RawDecode()(path)[1]
    assert frame.cam_to_srgb is None


def test_a_lossless_jpeg_dng_in_several_strips_is_refused_by_its_structure(tmp_path):
    """LibRaw decodes only the first strip of a lossless-JPEG DNG stored in several: the rest came out black, or
    held the previous file's data in a batch, with exit 0. Judged from the file's layout, not from the pixels.
    (LibRaw's decode itself is not reproduced here: pidng cannot write such a file.)"""
    with pytest.raises(InputError, match=r"x\.dng: a lossless-JPEG DNG in 10 strips, of which LibRaw decodes only"):
        _check_strips(RawLayout(ljpeg_strips=10), tmp_path / "x.dng")
    _check_strips(RawLayout(ljpeg_strips=1), tmp_path / "x.dng")  # one strip: decoded whole
    _check_strips(RawLayout(), tmp_path / "x.dng")  # uncompressed, or tiles


def _linear_raw_dng(path, rgb: np.ndarray, neutral=(0.5, 1.0, 0.625)):
    """A LinearRaw DNG (3 samples per pixel, already demosaicked: Apple ProRAW's kind) of ``rgb`` (H, W, 3) uint16."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, DNGVersion, PhotometricInterpretation
    from test_pipeline_dng import IDENTITY

    h, w, _ = rgb.shape
    t = DNGTags()
    for tag, value in (
        (Tag.ImageWidth, w),
        (Tag.ImageLength, h),
        (Tag.TileWidth, w),
        (Tag.TileLength, h),
        (Tag.Orientation, 1),
        (Tag.PhotometricInterpretation, PhotometricInterpretation.Linear_Raw),
        (Tag.SamplesPerPixel, 3),
        (Tag.BitsPerSample, [16, 16, 16]),
        (Tag.BlackLevel, 0),
        (Tag.WhiteLevel, 65535),
        (Tag.ColorMatrix1, IDENTITY),
        (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65),
        (Tag.AsShotNeutral, [[round(v * 1000), 1000] for v in neutral]),
        (Tag.DNGVersion, DNGVersion.V1_4),
        (Tag.Make, "isp-collab"),
        (Tag.Model, "linear"),
    ):
        t.set(tag, value)
    writer = RAW2DNG()
    writer.options(t, path="", compress=False)
    path.write_bytes(bytes(writer.convert(rgb)))
    return path


def test_a_linear_raw_dng_is_read_as_the_camera_rgb_it_holds(tmp_path, capsys):
    """An Apple ProRAW-style DNG (LinearRaw) was refused as 'not a Bayer mosaic' though LibRaw reads it exactly."""
    from isp_collab.cli import main
    from isp_collab.pipeline import Pipeline

    rgb = (np.random.default_rng(3).random((H, W, 3)) * 60000).astype(np.uint16)
    path = _linear_raw_dng(tmp_path / "p.dng", rgb)
    image, frame = _decode(path)
    np.testing.assert_array_equal(image, rgb)
    assert frame.cfa_pattern is None and frame.wb_gains == pytest.approx((2.0, 1.0, 1.6), rel=1e-3)
    linear, frame, _ = Pipeline().read(path)  # no demosaicking: the samples, normalised
    np.testing.assert_allclose(linear, rgb / 65535, atol=1e-6)
    assert main(["process", str(path), "-o", str(tmp_path / "p.png")]) == 0, capsys.readouterr().err


def test_the_white_level_is_where_the_sensor_clips():
    """A sensor that saturates at 97% of its stated white level: blown whites came out [255, 249, 255], pink (green
    normalised below 1, red and blue lifted past it by the white balance)."""
    from isp_collab.pipeline.raw import saturation_level

    rng = np.random.default_rng(0)
    mosaic = rng.integers(0, 60000, (64, 64)).astype(np.uint16)
    mosaic[:8, :8] = 63500  # a clipped highlight: its samples pile up at one value
    assert saturation_level(mosaic, 65535, 0) == 63500
    mosaic[:8, :8] = rng.integers(63000, 63500, (8, 8))  # bright, not clipped: no pile-up
    assert saturation_level(mosaic, 65535, 0) == 65535
    flat = np.full((64, 64), 30000, np.uint16)  # a flat grey far below white is not a clipping point
    assert saturation_level(flat, 65535, 0) == 65535
    assert saturation_level(np.full((64, 64), 65535, np.uint16), 65535, 0) == 65535  # at the white level itself
    tail = np.full((64, 64), 60000, np.uint16)  # a bright flat area, denoised: its largest value is a thin tail
    tail[::4, ::4] = 60001  # 256 samples: a pile-up by count, but 15 times fewer than the level below
    assert saturation_level(tail, 65535, 0) == 65535


@pytest.mark.parametrize("area", [(1, 0), (0, 1), (3, 5), (2, 4)])
def test_an_odd_active_area_is_read_whole_with_its_black_levels_on_their_sites(tmp_path, area):
    """Four black levels repeating from an ActiveArea that starts on an odd row or column: LibRaw maps them onto
    the wrong colours (98 levels off on a chart patch), and its visible area drops that first row / column."""
    top, left = area
    pattern = np.array([[400, 700], [1000, 1300]])
    picture = random_mosaic(14, (H, W), seed=4)  # signal above black, < 2**14
    stored = np.full((H + top, W + left), 900, np.uint16)
    stored[top:, left:] = picture + np.tile(pattern, (H // 2, W // 2))  # the pattern repeats from the active area
    black = pattern.ravel().tolist()
    path = write_dng(tmp_path / "b.dng", stored, black=black, white=20000, active_area=(top, left, top + H, left + W))
    mosaic, frame = _decode(path)
    assert mosaic.shape == (H, W) and frame.cfa_pattern == "RGGB" and frame.black_level == tuple(black)
    np.testing.assert_array_equal(mosaic.astype(int) - np.tile(pattern, (H // 2, W // 2)), picture)


def test_a_crop_from_an_odd_active_areas_first_row_is_exact(tmp_path):
    """LibRaw starts the visible area one row into an active area at an odd row: a crop from its first row fell
    outside and was dropped whole, silently (the full frame came out); the whole frame is sliced now."""
    picture = random_mosaic(16, (H, W), seed=5)
    stored = np.full((H + 1, W), 60000, np.uint16)
    stored[1:] = picture
    path = write_dng(tmp_path / "o.dng", stored, active_area=(1, 0, H + 1, W), crop=(0, 0, W - 8, H - 8))
    mosaic, _ = _decode(path)
    np.testing.assert_array_equal(mosaic, picture[: H - 8, : W - 8])


def test_the_layout_is_read_from_the_main_raw_page_and_survives_a_malformed_black_tag():
    """A DNG 1.6 'enhanced' LinearRaw page (NewSubFileType 16) beside the raw won the page choice by its 3x samples:
    crop, active area and black levels came from the page LibRaw did not decode. A malformed BlackLevelRepeatDim
    wiped the whole layout (the multi-strip refusal with it); an empty delta tag made the black levels NaN."""
    from types import SimpleNamespace

    from isp_collab.pipeline.raw_layout import _black_pattern, _is_main_raw

    def tag(value, dtype=3):
        return SimpleNamespace(value=value, dtype=dtype)

    assert _is_main_raw(SimpleNamespace(photometric=32803, tags={254: tag(0)}))
    assert _is_main_raw(SimpleNamespace(photometric=34892, tags={}))
    assert not _is_main_raw(SimpleNamespace(photometric=34892, tags={254: tag(16)}))  # the enhanced copy
    assert not _is_main_raw(SimpleNamespace(photometric=32803, tags={254: tag(1)}))  # a reduced preview
    assert _black_pattern({50713: tag((2, 2)), 50714: tag((1, 2, 3, 4))}) == (2, 2, (1.0, 2.0, 3.0, 4.0))
    assert _black_pattern({50713: tag(2), 50714: tag((1, 2, 3, 4))}) is None  # one value for two dimensions
    assert _black_pattern({50714: tag(5), 50715: tag(())}) == (1, 1, (5.0,))  # an empty delta: nothing added


def test_a_dngs_stated_neutral_white_balance_is_kept_not_taken_for_none(tmp_path):
    """AsShotNeutral 1, 1, 1 (camera RGB already balanced) was read as LibRaw's 'no white balance' placeholder:
    gray world then cast a grey of 168 to [170, 168, 175]. A DNG without the tag still has none."""
    rgb = (np.random.default_rng(4).random((H, W, 3)) * 60000).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PipelineWarning)  # no "no white balance in the file" warning
        frame = RawDecode()(_linear_raw_dng(tmp_path / "n.dng", rgb, neutral=(1.0, 1.0, 1.0)))[1]
    assert frame.wb_gains == (1.0, 1.0, 1.0) and frame.wb_source == "as_shot"
    assert RawLayout.of(tmp_path / "n.dng").as_shot_neutral
    path = write_dng(tmp_path / "none.dng", random_mosaic(12), neutral=None)
    assert not RawLayout.of(path).as_shot_neutral and _decode(path)[1].wb_gains is None


def test_a_raw_file_whose_image_directories_loop_is_refused_not_read_forever(tmp_path):
    """A DNG whose first directory's next-IFD offset points at itself (4 bytes changed): tifffile yields that page
    again and again, and the reading hung, its memory growing past 3 GB."""
    import struct

    path = write_dng(tmp_path / "loop.dng", random_mosaic(12, (H, W)), bits=12)
    data = bytearray(path.read_bytes())
    first = struct.unpack_from("<I", data, 4)[0]  # little-endian: the first IFD's offset, its entry count there
    count = struct.unpack_from("<H", data, first)[0]
    struct.pack_into("<I", data, first + 2 + 12 * count, first)  # its next-IFD offset: itself
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"loop\.dng: a damaged RAW file: its image directories loop .*{first}"):
        RawDecode()(path)
