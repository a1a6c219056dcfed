"""RawDecode on DNGs written with pidng from known mosaics: every Bayer pattern, bit depth and black level.

What pidng 4.0.9 cannot express, and how the tests deal with it:
- its 14-bit packer is wrong (``pack14`` strides by 6 pixels instead of 4), so :func:`write_dng`
  swaps in a correct one while writing 14-bit files;
- ``BlackLevel`` is written as SHORT only: no fractional (RATIONAL) black levels;
- LJ92 compression needs the separate ``ljpegCompress`` module: only uncompressed DNGs;
- LibRaw refuses images under 22 pixels a side, so the mosaics are 32x48 or larger.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from isp_collab.pipeline import CFA_PATTERNS, Demosaic, InputError, RawDecode, normalize_mosaic

pidng_core = pytest.importorskip("pidng.core")
from pidng.defs import CalibrationIlluminant, DNGVersion, PhotometricInterpretation  # noqa: E402

CFA_CODES = {"RGGB": [0, 1, 1, 2], "BGGR": [2, 1, 1, 0], "GRBG": [1, 0, 2, 1], "GBRG": [1, 2, 0, 1]}
IDENTITY = [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]


def _pack14(data: np.ndarray) -> np.ndarray:
    """Big-endian 14-bit packing, 4 pixels -> 7 bytes (what pidng's pack14 should do)."""
    d = data.astype(np.uint16)
    a, b, c, e = (d[:, i::4] for i in range(4))
    out = np.zeros((d.shape[0], d.shape[1] * 7 // 4), dtype=np.uint8)
    out[:, 0::7] = a >> 6
    out[:, 1::7] = ((a & 0x3F) << 2) | (b >> 12)
    out[:, 2::7] = (b >> 4) & 0xFF
    out[:, 3::7] = ((b & 0xF) << 4) | (c >> 10)
    out[:, 4::7] = (c >> 2) & 0xFF
    out[:, 5::7] = ((c & 0x3) << 6) | (e >> 8)
    out[:, 6::7] = e & 0xFF
    return out


def write_dng(
    path: Path,
    mosaic: np.ndarray,
    pattern: str = "RGGB",
    bits: int = 16,
    black: int | list[int] = 0,
    white: int | None = None,
    neutral: tuple[float, float, float] | None = (0.5, 1.0, 0.625),
    orientation: int = 1,
    crop: tuple[int, int, int, int] | None = None,
    artist: str | None = None,
    active_area: tuple[int, int, int, int] | None = None,
    matrix: list | None = None,
) -> Path:
    """Write ``mosaic`` ((H, W) uint16) as an uncompressed Bayer DNG with pidng.

    black: one level or 4 per 2x2 site (BlackLevelRepeatDim 2x2); neutral: AsShotNeutral (R, G, B);
    crop: (x, y, w, h) DefaultCropOrigin/Size (relative to the active area); active_area: (top, left, bottom,
    right) ActiveArea; matrix: ColorMatrix1 as pidng takes it (default identity). artist: the Artist tag, UTF-8 (pidng writes ASCII only: an ASCII
    placeholder of the same length is replaced in the file's bytes).
    """
    from pidng.core import RAW2DNG, DNGTags, Tag

    h, w = mosaic.shape
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, orientation)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, bits)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFA_CODES[pattern])
    if isinstance(black, list):
        t.set(Tag.BlackLevelRepeatDim, [2, 2])
    t.set(Tag.BlackLevel, black)
    t.set(Tag.WhiteLevel, white if white is not None else 2**bits - 1)
    t.set(Tag.ColorMatrix1, IDENTITY if matrix is None else matrix)
    if active_area is not None:
        t.set(Tag.ActiveArea, list(active_area))
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    if neutral is not None:  # None: no AsShotNeutral tag
        t.set(Tag.AsShotNeutral, [[round(v * 1000), 1000] for v in neutral])
    if crop is not None:
        t.set(Tag.DefaultCropOrigin, list(crop[:2]))
        t.set(Tag.DefaultCropSize, list(crop[2:]))
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.Make, "isp-collab")
    t.set(Tag.Model, "synthetic")
    placeholder = "#" * len(artist.encode()) if artist else None
    if placeholder:
        t.set(Tag.Artist, placeholder)
    t.set(Tag.ExposureTime, [[1, 125]])
    t.set(Tag.FNumber, [[28, 10]])
    t.set(Tag.PhotographicSensitivity, [400, 400])  # tag 34855, ISOSpeedRatings: two shorts, not a rational
    writer = RAW2DNG()
    writer.options(t, path="", compress=False)
    original = pidng_core.pack14
    pidng_core.pack14 = _pack14
    try:
        buf = writer.convert(mosaic.astype(np.uint16))
    finally:
        pidng_core.pack14 = original
    data = bytes(buf)
    if placeholder:
        assert data.count(placeholder.encode()) == 1
        data = data.replace(placeholder.encode(), artist.encode())
    path.write_bytes(data)
    return path


def random_mosaic(bits: int, shape=(32, 48), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**bits, shape).astype(np.uint16)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("bits", [8, 10, 12, 14, 16])
@pytest.mark.parametrize("black_fraction", [0.0, 1 / 16])
def test_dng_decodes_pixel_exact(tmp_path, pattern, bits, black_fraction):
    mosaic = random_mosaic(bits, seed=bits)
    black = int(black_fraction * 2**bits)
    path = write_dng(tmp_path / "m.dng", mosaic, pattern, bits, black)
    got, frame = RawDecode()(path)
    assert got.dtype == np.uint16 and got.shape == mosaic.shape
    np.testing.assert_array_equal(got, mosaic)
    assert frame.kind == "raw" and frame.cfa_pattern == pattern
    assert frame.black_level == (black,) * 4
    assert frame.white_level == 2**bits - 1
    assert frame.bit_depth == bits
    assert frame.source == path and frame.orientation == 1


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_per_site_black_levels(tmp_path, pattern):
    mosaic = random_mosaic(12, seed=3)
    per_site = [60, 70, 80, 90]  # BlackLevel for the 2x2 sites in row-major order
    frame = RawDecode()(write_dng(tmp_path / "b.dng", mosaic, pattern, 12, per_site))[1]
    assert frame.black_level == tuple(per_site)
    norm = normalize_mosaic(mosaic, frame)
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        want = np.clip((mosaic[i::2, j::2].astype(np.float64) - per_site[k]) / (4095 - per_site[k]), 0, 1)
        np.testing.assert_allclose(norm[i::2, j::2], want, atol=1e-6)


def test_white_balance_and_matrix(tmp_path):
    path = write_dng(tmp_path / "wb.dng", random_mosaic(16), neutral=(0.5, 1.0, 0.625))
    frame = RawDecode()(path)[1]
    assert frame.wb_source == "as_shot"
    np.testing.assert_allclose(frame.wb_gains, (2.0, 1.0, 1.6), rtol=1e-3)  # gains = 1 / AsShotNeutral
    ccm = frame.ccm
    assert ccm.shape == (3, 3)
    np.testing.assert_allclose(ccm.sum(axis=1), 1.0, atol=1e-3)  # rows keep white white


def test_default_crop_and_orientation(tmp_path):
    mosaic = random_mosaic(16, shape=(40, 64))
    path = write_dng(tmp_path / "c.dng", mosaic, "GRBG", crop=(4, 2, 48, 32), orientation=6)
    got, frame = RawDecode()(path)
    np.testing.assert_array_equal(got, mosaic[2:34, 4:52])
    assert frame.cfa_pattern == "GRBG" and frame.orientation == 6
    uncropped, frame = RawDecode(crop=False)(path)
    np.testing.assert_array_equal(uncropped, mosaic)


def test_the_pipelines_crop_key_reaches_the_raw_decoder(tmp_path):
    """A TOML's top-level ``crop = false`` keeps the whole sensor (the decoder's own crop flag alone was tested)."""
    from isp_collab.pipeline import Pipeline

    path = write_dng(tmp_path / "c.dng", random_mosaic(16, shape=(40, 64)), "GRBG", crop=(4, 2, 48, 32))
    (cfg := tmp_path / "p.toml").write_text("crop = false\n")
    assert Pipeline().run(path).image.shape == (32, 48, 3)  # DefaultCrop applied
    assert Pipeline.from_toml(cfg).run(path).image.shape == (40, 64, 3)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
@pytest.mark.parametrize("method", ["malvar", "opencv_ea", "bilinear"])
def test_flat_colour_survives_decode_and_demosaic(tmp_path, pattern, method):
    """A grey card shot through a camera: mosaic from a flat colour, back to that colour exactly."""
    colour = np.array([0.2, 0.5, 0.4])  # camera RGB, normalised
    black, white = 256, 4095
    site = np.array(["RGB".index(c) for c in pattern]).reshape(2, 2)
    values = np.round(black + colour[site] * (white - black)).astype(np.uint16)
    mosaic = np.tile(values, (16, 24))
    frame = RawDecode()(write_dng(tmp_path / "f.dng", mosaic, pattern, 12, black, white))[1]
    rgb = Demosaic(method)(normalize_mosaic(mosaic, frame), frame)
    assert rgb.shape == (32, 48, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb, np.broadcast_to(colour, rgb.shape), atol=2e-4)


def test_not_bayer_colour_map_refused():
    from isp_collab.pipeline import cfa_from_colors

    xtrans_like = np.tile(np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]]), (4, 4))
    with pytest.raises(ValueError, match="not a Bayer"):
        cfa_from_colors(xtrans_like)
    assert cfa_from_colors(np.tile(np.array([[1, 0], [2, 3]]), (8, 8))) == "GRBG"


def test_decode_errors_name_the_file(tmp_path):
    good = write_dng(tmp_path / "g.dng", random_mosaic(16))
    truncated = tmp_path / "t.dng"
    truncated.write_bytes(good.read_bytes()[:600])
    with pytest.raises(InputError, match=r"t\.dng: .*(truncated|not a RAW|cannot read)"):
        RawDecode()(truncated)
    with pytest.raises(InputError, match=r"g\.dng: 48x32 = .* exceeds the pixel cap"):
        RawDecode(max_pixels=1000)(good)


@pytest.mark.parametrize("keep", [2000, 10000])
def test_dng_cut_inside_its_header_is_refused_not_decoded_as_black(tmp_path, keep):
    # LibRaw opens the bundled 4K DNG cut to its first bytes and returns zeros or stale memory
    bundled = Path(__file__).resolve().parents[1] / "isp_collab" / "assets" / "blackmagic_pocket4k.dng"
    cut = tmp_path / "cut.dng"
    cut.write_bytes(bundled.read_bytes()[:keep])
    with pytest.raises(
        InputError, match=r"cut\.dng: truncated RAW file: its image data runs to byte 3,359,558 but the file has"
    ):
        RawDecode()(cut)


def test_tiff_cut_before_a_main_chain_directory_is_refused(tmp_path, capfd):
    import logging

    import tifffile

    from isp_collab.pipeline.raw_layout import check_tiff_extent

    whole = tmp_path / "whole.dng"
    mosaic = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    tifffile.imwrite(whole, mosaic)  # the raw image first, a second (preview) IFD after it
    tifffile.imwrite(whole, mosaic[:32], append=True)
    with tifffile.TiffFile(whole) as tif:
        second = tif.pages[1].offset
    check_tiff_extent(whole)  # complete: accepted
    cut = tmp_path / "cut.dng"
    cut.write_bytes(whole.read_bytes()[: second - 2])
    with pytest.raises(
        InputError, match=rf"cut\.dng: truncated RAW file: an image directory at byte {second:,} is past"
    ):
        check_tiff_extent(cut)
    log = logging.getLogger("tifffile")
    assert log.propagate and not log.handlers  # the logger is left as found
    assert capfd.readouterr().err == ""  # tifffile's own error line is not shown


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_a_raw_files_camera_and_exposure_reach_png_and_jpeg_outputs(tmp_path, ext):
    """The DNG's Make / Model and exposure are carried (orientation 1: the pixels are turned at decode)."""
    from PIL import Image

    from isp_collab.cli import main
    from isp_collab.pipeline.raw_exif import raw_exif

    dng = write_dng(tmp_path / "m.dng", random_mosaic(12), "RGGB", 12, orientation=6)
    assert raw_exif(dng)[:4] in (b"II*\x00", b"MM\x00*")  # a TIFF structure, no "Exif" prefix (libpng refuses it)
    out = tmp_path / f"m{ext}"
    assert main(["process", str(dng), "-o", str(out), "--stages", "none"]) == 0
    with Image.open(out) as im:
        exif = im.getexif()
        exposure = exif.get_ifd(0x8769)
    assert (exif[271], exif[272], exif[0x0112]) == ("isp-collab", "synthetic", 1)
    assert float(exposure[33434]) == pytest.approx(1 / 125) and float(exposure[33437]) == pytest.approx(2.8)
    assert exposure[34855] == 400  # a number, not the rational 400/400


def test_a_raw_files_camera_and_exposure_reach_tiff_outputs(tmp_path):
    """A TIFF output keeps the camera and date text tags, and the exposure tags in an EXIF sub-IFD that
    tifffile, Pillow and OpenCV (libtiff) all read."""
    import tifffile
    from PIL import Image

    from isp_collab.cli import main

    folder = tmp_path
    dng = write_dng(folder / "m.dng", random_mosaic(12), "RGGB", 12)
    out = folder / "m.tif"
    assert main(["process", str(dng), "-o", str(out), "--stages", "none"]) == 0
    with tifffile.TiffFile(out) as tif:
        tags = tif.pages[0].tags
        assert (tags["Make"].value, tags["Model"].value, tags["Software"].value) == (
            "isp-collab",
            "synthetic",
            "isp-collab",
        )
        assert tif.pages[0].dtype == np.uint16  # RAW to TIFF: 16 bits, as before
        exposure = tags["ExifTag"].value
        assert exposure["ExposureTime"] == (1, 125) and exposure["ISOSpeedRatings"] == 400
        assert "InterColorProfile" in tags and 34666 not in tags  # the placeholder was renamed
        pixels = tif.asarray()
    with Image.open(out) as im:
        assert float(im.getexif().get_ifd(0x8769)[33437]) == pytest.approx(2.8)
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1], pixels)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_a_raw_files_non_ascii_text_reaches_the_outputs_as_utf8(tmp_path, ext):
    """Pillow wrote non-ASCII EXIF text as "?" ("J?rg M?ller"), and tifffile refuses it: it goes as UTF-8 bytes."""
    import tifffile
    from PIL import Image

    from isp_collab.cli import main

    artist = "Jörg Müller ©"
    dng = write_dng(tmp_path / "m.dng", random_mosaic(12), "RGGB", 12, artist=artist)
    out = tmp_path / f"m{ext}"
    assert main(["process", str(dng), "-o", str(out), "--stages", "none"]) == 0
    if ext == ".tif":
        with tifffile.TiffFile(out) as tif:
            assert tif.pages[0].tags["Artist"].value == artist
    with Image.open(out) as im:  # Pillow reads an ASCII tag's bytes as Latin-1
        assert im.getexif()[315].encode("latin-1").decode("utf-8") == artist


def test_raw_text_tags_keep_their_ascii_type_and_bytes(tmp_path):
    """A RAW file's non-ASCII lens text went into the EXIF sub-IFD as BYTE (a list of numbers to ExifTool), text
    tifffile cannot decode was dropped, and junk after a NUL was kept."""
    import tifffile
    from PIL import Image

    from isp_collab.pipeline.raw_exif import raw_exif

    path = tmp_path / "m.dng"  # (raw_exif reads a TIFF structure's tags: no mosaic needed)
    tags = [
        (42036, "s", 0, "Zeiss Ø 50".encode() + b"\x00junk\xff", True),  # LensModel, in IFD0 as some DNGs have it
        (315, "s", 0, b"\x81\x9d ok", True),  # Artist: neither UTF-8 nor cp1252 (tifffile gives up: it was dropped)
        (33432, "s", 0, b"\xa9 J\xf6rg", True),  # Copyright in cp1252 / Latin-1
        (271, "s", 0, "Cam", True),
    ]
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), extratags=tags)
    exif = Image.Exif()
    exif.load(raw_exif(path))
    lens = exif.get_ifd(0x8769)[42036]
    assert isinstance(lens, str) and lens.encode("latin-1").decode() == "Zeiss Ø 50"  # ASCII type, cut at the NUL
    # RAW text is written as UTF-8 (what ExifTool and most readers take): other code pages are converted
    assert exif[33432].encode("latin-1").decode() == "© Jörg" and exif[271] == "Cam"
    assert exif[315].encode("latin-1").decode() == "\x81\x9d ok"  # (as Latin-1: nothing dropped)
