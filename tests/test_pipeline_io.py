"""Image files, atomic output and output planning."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_pipeline_headerless_decode import description, write_headerless

from isp_collab.pipeline import (
    Frame,
    ImageDecode,
    InputError,
    OutputError,
    Pipeline,
    PipelineWarning,
    encode_image,
    output_bit_depth,
)
from isp_collab.pipeline.batch import expand_inputs, plan_outputs


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif"])
def test_image_decode_applies_exif_orientation(tmp_path, orientation, ext):
    from PIL import Image, ImageOps

    a = np.zeros((20, 40, 3), np.uint8)
    a[:10, :10] = 255  # white block at the top left
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{ext}"
    Image.fromarray(a).save(path, exif=exif.tobytes())
    img, frame = ImageDecode()(path)
    assert frame.kind == "rgb" and frame.bit_depth == 8 and frame.orientation == 1
    with Image.open(path) as im:
        want = np.asarray(ImageOps.exif_transpose(im)).astype(np.float32) / 255
    assert img.shape == want.shape
    np.testing.assert_allclose(img, want, atol=0.1 if ext == ".jpg" else 0)  # JPEG rounding; the others lossless


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_sixteen_bit_images_round_trip(tmp_path, ext):
    a = np.random.default_rng(0).integers(0, 65536, (16, 24, 3)).astype(np.uint16)
    path = tmp_path / f"s{ext}"
    cv2.imwrite(str(path), a[..., ::-1])
    img, frame = ImageDecode()(path)
    assert frame.bit_depth == 16
    np.testing.assert_array_equal(np.round(img * 65535).astype(np.uint16), a)
    assert output_bit_depth(Path(f"out{ext}"), frame) == 16
    back = cv2.imdecode(np.frombuffer(encode_image(img, ext, 16), np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(back, a)


def test_output_bit_depth_policy():
    raw = Frame(source=Path("a.dng"), kind="raw", height=2, width=2, bit_depth=14)
    rgb16 = Frame(source=Path("a.png"), kind="rgb", height=2, width=2, bit_depth=16)
    assert output_bit_depth(Path("o.png"), raw) == 8
    assert output_bit_depth(Path("o.tif"), raw) == 16
    with pytest.warns(UserWarning, match=r"o\.jpg: 16-bit input written with 8 bits \(\.jpg holds no more"):
        assert output_bit_depth(Path("o.jpg"), rgb16) == 8
    assert output_bit_depth(Path("o.png"), raw, 16) == 16
    with pytest.raises(ValueError, match="cannot hold 16-bit"):
        output_bit_depth(Path("o.jpg"), raw, 16)
    with pytest.raises(ValueError, match="cannot write '.bmp'"):
        output_bit_depth(Path("o.bmp"), raw)


@pytest.mark.parametrize("size", [2, 3])
def test_mosaic_too_small_to_demosaic_is_a_one_line_error_naming_the_file(tmp_path, size, capsys):
    from isp_collab.cli import main

    raw = write_headerless(tmp_path, np.full((size, size), 200), description(width=size, height=size), name="tiny")
    assert main(["process", str(raw), "-o", str(tmp_path / "out.png")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines  # the error alone: no white-balance warning about a frame never processed
    err = lines[0]
    assert re.search(rf"tiny\.raw: a {size}x{size} mosaic is too small to demosaic \(at least 4x4\)$", err), err
    assert not (tmp_path / "out.png").exists()
    ok = write_headerless(tmp_path, np.full((4, 4), 200), description(width=4, height=4))
    assert main(["process", str(ok), "-o", str(tmp_path / "ok.png")]) == 0


def test_png_through_the_pipeline_is_lossless_without_restoration(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (24, 32, 3)).astype(np.uint8)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), a)
    Pipeline().process_file(src, tmp_path / "out.png")
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out.png")), a)


def test_plan_outputs(tmp_path):
    a, b = tmp_path / "a.dng", tmp_path / "a.png"
    assert plan_outputs([a], tmp_path / "x.png") == [(a, tmp_path / "x.png")]
    assert plan_outputs([a], str(tmp_path / "dir") + "/") == [(a, tmp_path / "dir" / "a.png")]
    assert plan_outputs([a, b], tmp_path / "o", ".jpg") == [
        (a, tmp_path / "o" / "a.jpg"),
        (b, tmp_path / "o" / "a_png.jpg"),
    ]
    same = [tmp_path / d / "x.dng" for d in ("d1", "d2", "d3")] + [tmp_path / "X.DNG"]
    names = [dst.name for _, dst in plan_outputs(same, tmp_path / "o")]
    assert names == ["x.png", "x_dng.png", "x_dng_2.png", "X_dng_3.png"]  # a third x.dng got x_dng.png again
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is not a folder"):
        plan_outputs([a, b], tmp_path / "file")
    with pytest.raises(OutputError, match=r"is not a folder \(an output named without an image suffix is a folder; "):
        plan_outputs([a], tmp_path / "file")  # said "several inputs need an output folder" for one input
    assert plan_outputs([a], tmp_path / "folder") == [(a, tmp_path / "folder" / "a.png")]  # no suffix: a folder
    with pytest.raises(OutputError, match="2 inputs need an output folder, not an image file name"):
        plan_outputs([a, b], tmp_path / "x.png")
    named = re.escape(
        f"{tmp_path}: a folder input needs an output folder, not an image file name ({tmp_path / 'x.png'})"
    )
    with pytest.raises(OutputError, match=f"^{named}$"):  # the input folder named, not the output (x.png) alone
        plan_outputs([a], tmp_path / "x.png", folders=[tmp_path])
    with pytest.raises(OutputError, match="the output folder is also an input folder"):
        plan_outputs([a], tmp_path, folders=[tmp_path])


def test_expand_inputs_skips_sidecars(tmp_path):
    write_headerless(tmp_path, np.zeros((32, 48)), description())
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "b.png").write_bytes(b"x")
    assert [p.name for p in expand_inputs([tmp_path])] == ["b.png", "frame.raw"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="folder holds no file to process"):
        expand_inputs([empty])


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG header claiming ``width`` x ``height`` RGB, with one row of pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + 3 * width))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_pixel_cap_is_ours_not_pillows(tmp_path):
    from isp_collab.pipeline.decode import ImageDecode

    huge = _png_header_only(tmp_path / "huge.png", 15000, 15000)  # 225 MP: above Pillow's bomb guard too
    with pytest.raises(ValueError, match=r"huge\.png: 15000x15000 = 225\.0 MP exceeds the pixel cap of 160\.0 MP"):
        ImageDecode()(huge)
    with pytest.raises(ValueError, match=r"huge\.png: cannot (read|decode) image \(.*truncated"):  # cap raised: no data
        ImageDecode(max_pixels=300_000_000)(huge)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((20, 30, 3), np.uint8))
    cap = r"30x20 = 600 pixels exceeds the pixel cap of 10 pixels \(raise it with max_pixels / --max-pixels\)$"
    with pytest.raises(ValueError, match=cap):  # the Python setting too, not the CLI's flag alone
        ImageDecode(max_pixels=10)(small)


def test_tiffs_pillow_cannot_open_get_the_reason(tmp_path):
    """A float TIFF (HDR merges write them) and a DNG named .tif: the reason, not 'corrupt'."""
    import shutil

    f32 = tmp_path / "hdr.tif"
    cv2.imwrite(str(f32), np.random.default_rng(0).random((16, 16, 3)).astype(np.float32))
    with pytest.raises(InputError, match=r"hdr\.tif: cannot read image \(unsupported sample type float32"):
        ImageDecode()(f32)
    dng = Path(__file__).parents[1] / "isp_collab" / "assets" / "blackmagic_pocket4k.dng"
    shutil.copy(dng, tmp_path / "raw.tif")
    with pytest.raises(InputError, match=r"raw\.tif: cannot read image \(a DNG raw file: give it the \.dng"):
        ImageDecode()(tmp_path / "raw.tif")


def test_alpha_and_non_srgb_profiles_are_warned_about(tmp_path):
    from PIL import Image, ImageCms

    rgb = Image.fromarray(np.full((8, 8, 3), 128, np.uint8))
    rgb.convert("RGBA").save(tmp_path / "a.png")
    with pytest.warns(PipelineWarning, match=r"a\.png: the alpha channel is dropped"):
        ImageDecode()(tmp_path / "a.png")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb.save(tmp_path / "s.png", icc_profile=srgb)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an sRGB profile is what the pipeline assumes: no warning
        ImageDecode()(tmp_path / "s.png")
    other = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    rgb.save(tmp_path / "p.png", icc_profile=other)
    with pytest.warns(
        PipelineWarning, match=r"p\.png: embedded colour profile .* is not sRGB; the image is read as sRGB"
    ):
        ImageDecode()(tmp_path / "p.png")


@pytest.mark.parametrize(("name", "dtype"), [("grey.png", np.uint8), ("grey16.tif", np.uint16), ("grey.jpg", np.uint8)])
def test_greyscale_in_greyscale_out(tmp_path, name, dtype):
    """A one-channel file runs as three equal channels and is written back as one, at its bit depth."""
    peak = np.iinfo(dtype).max
    grey = cv2.GaussianBlur(np.random.default_rng(0).random((48, 64)).astype(np.float32), (0, 0), 2)
    cv2.imwrite(str(tmp_path / name), (grey * peak).astype(dtype))
    image, frame = ImageDecode()(tmp_path / name)
    assert frame.greyscale and image.shape == (48, 64, 3)
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    Pipeline().process_file(tmp_path / name, tmp_path / f"out{Path(name).suffix}")
    out = cv2.imread(str(tmp_path / f"out{Path(name).suffix}"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (48, 64) and out.dtype == dtype


def test_colour_input_stays_colour_and_grey_encode_uses_luma(tmp_path):
    rgb = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "c.png"), (rgb * 255).astype(np.uint8))
    assert not ImageDecode()(tmp_path / "c.png")[1].greyscale
    from isp_collab.pipeline.encode import Encode

    frame = Frame(source=tmp_path / "g.png", kind="rgb", height=8, width=8, bit_depth=8, greyscale=True)
    tinted = np.full((8, 8, 3), 0.5, np.float32) + np.float32([0.01, 0.0, -0.01])  # a faint tint
    out = cv2.imdecode(np.frombuffer(Encode()(tinted, frame, tmp_path / "g.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.shape == (8, 8) and np.all(np.abs(out.astype(int) - 128) <= 1)


@pytest.mark.parametrize(("ext", "bits"), [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 8), (".tif", 16)])
def test_outputs_are_tagged_srgb_and_decode_to_the_same_pixels(ext, bits):
    import io

    from PIL import Image, ImageCms

    yy, xx = np.mgrid[0:12, 0:20].astype(np.float32)
    image = np.stack([xx / 19, yy / 11, (xx + yy) / 30], axis=-1)
    data = encode_image(image, ext, bits)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if ext == ".png":
            assert im.info.get("srgb") == 0  # the sRGB chunk, perceptual intent
        else:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
            assert "sRGB" in ImageCms.getProfileDescription(profile)
    # the tags change no pixel: the file decodes exactly as OpenCV's own untagged encoding does
    samples = (image * (255 if bits == 8 else 65535) + 0.5).astype(np.uint8 if bits == 8 else np.uint16)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    plain = cv2.imencode(ext, cv2.cvtColor(samples, cv2.COLOR_RGB2BGR), params)[1]
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, cv2.imdecode(plain, cv2.IMREAD_UNCHANGED))
    if ext != ".jpg":  # lossless: every sample back
        assert np.array_equal(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), samples)


@pytest.mark.parametrize(("ext", "bits"), [(".jpg", 8), (".tif", 8), (".tif", 16)])
def test_grey_outputs_carry_no_rgb_profile(ext, bits):
    """An RGB ICC profile on grey pixels makes colour-managed readers fail ("cannot build transform")."""
    import io

    from PIL import Image

    grey = np.linspace(0, 1, 12 * 20, dtype=np.float32).reshape(12, 20)
    with Image.open(io.BytesIO(encode_image(grey, ext, bits))) as im:
        im.load()
        assert im.mode in ("L", "I;16", "I;16B", "I") and "icc_profile" not in im.info, (im.mode, im.info.keys())


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_exif_is_carried_upright(tmp_path, ext):
    """Camera EXIF of an ordinary image reaches PNG/JPEG outputs; orientation is 1 (pixels already upright)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "TestCam", "Model 7", 6  # make, model, rotate 90° CW
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(tmp_path / "in.jpg", exif=exif)
    image, frame = ImageDecode()(tmp_path / "in.jpg")
    assert image.shape == (24, 16, 3) and frame.exif
    Pipeline().process_file(tmp_path / "in.jpg", tmp_path / f"out{ext}")
    with Image.open(tmp_path / f"out{ext}") as out:
        assert out.size == (16, 24)
        carried = out.getexif()
        assert (carried[0x010F], carried[0x0110], carried[0x0112]) == ("TestCam", "Model 7", 1)
    png = tmp_path / "plain.png"
    cv2.imwrite(str(png), np.zeros((8, 8, 3), np.uint8))
    assert ImageDecode()(png)[1].exif is None


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_non_ascii_exif_text_keeps_its_bytes_and_its_type(tmp_path, ext):
    """A photo's UTF-8 Artist and lens text came out as "J??rg" (Pillow re-wrote them as 7-bit ASCII); written as
    bytes, the lens (EXIF sub-IFD) became a BYTE tag, shown by ExifTool as a list of numbers."""
    from PIL import Image

    artist, lens = "Jörg Müller", "Zeiss Ø 50"
    exif = Image.Exif()  # ASCII placeholders of the texts' UTF-8 lengths, replaced in the file: ASCII-typed UTF-8
    exif[0x013B], exif[0x0112] = "#" * len(artist.encode()), 6  # Artist
    exif.get_ifd(0x8769)[0xA434] = "%" * len(lens.encode())  # LensModel
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(tmp_path / "in.jpg", exif=exif)
    data = (tmp_path / "in.jpg").read_bytes()
    for placeholder, text in (("#", artist), ("%", lens)):
        data = data.replace(placeholder.encode() * len(text.encode()), text.encode())
    (tmp_path / "in.jpg").write_bytes(data)
    Pipeline().process_file(tmp_path / "in.jpg", tmp_path / f"out{ext}")
    with Image.open(tmp_path / f"out{ext}") as out:  # Pillow reads an ASCII tag's bytes as a Latin-1 str
        carried = out.getexif()
        assert carried[0x013B].encode("latin-1").decode() == artist
        if ext != ".tif":  # (a TIFF output carries the exposure tags of its EXIF sub-IFD only)
            assert carried.get_ifd(0x8769)[0xA434].encode("latin-1").decode() == lens  # a str: still ASCII


def test_carried_exif_gains_no_empty_sub_directories(tmp_path):
    """Reading the EXIF and GPS sub-IFDs to restore their text added empty ones: every output 'geotagged'."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x013B] = "Joe"
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(tmp_path / "in.jpg", exif=exif)
    Pipeline().process_file(tmp_path / "in.jpg", tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        carried = out.getexif()
        assert 0x8769 not in carried and 0x8825 not in carried and 0x013B in carried


@pytest.mark.parametrize("name", ["photo.tif", "photo.png", "photo.jpg"])
@pytest.mark.parametrize("kind", ["tiff-ep", "preview"])
def test_a_camera_raw_named_as_an_image_is_refused_not_read_as_its_preview(tmp_path, name, kind):
    """A Kodak KDC renamed .png or .tif came out as its 96x64 preview, with exit 0."""
    import tifffile

    thumb = np.zeros((8, 12, 3), np.uint8)
    path = tmp_path / name
    with tifffile.TiffWriter(path) as tif:
        if kind == "tiff-ep":  # a TIFF/EP version tag on the first image, as camera RAWs have
            tif.write(
                thumb, photometric="rgb", extratags=[(37398, "B", 4, (1, 0, 0, 0), True), (271, "s", 0, "Cam", True)]
            )
        else:  # a reduced-resolution first image, the full one in another directory
            tif.write(thumb, photometric="rgb", subfiletype=1)
            tif.write(np.zeros((16, 24), np.uint16), photometric="minisblack")
    with pytest.raises(InputError, match=rf"{name}: a camera RAW file.*give it its camera's extension"):
        ImageDecode()(path)


def test_an_ordinary_multi_page_tiff_is_still_an_image(tmp_path):
    import tifffile

    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.full((8, 12, 3), 200, np.uint8), photometric="rgb")
        tif.write(np.zeros((8, 12, 3), np.uint8), photometric="rgb")
    img, frame = ImageDecode()(path)
    assert img.shape == (8, 12, 3) and frame.kind == "rgb" and img.min() > 0.7


def test_jpeg_quality_setting_reaches_the_file(tmp_path):
    """[output] jpeg_quality was checked for its range only: a setting that never reached the encoder passed."""
    rng = np.random.default_rng(1)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3)).astype(np.uint8), (0, 0), 1.0))
    original = cv2.imread(str(src)).astype(int)
    (tmp_path / "q30.toml").write_text("[output]\njpeg_quality = 30\n")
    Pipeline().process_file(src, tmp_path / "q95.jpg")  # the default, 95
    Pipeline.from_toml(tmp_path / "q30.toml").process_file(src, tmp_path / "q30.jpg")
    size = {q: (tmp_path / f"q{q}.jpg").stat().st_size for q in (30, 95)}
    error = {q: np.abs(cv2.imread(str(tmp_path / f"q{q}.jpg")).astype(int) - original).mean() for q in (30, 95)}
    assert size[30] < 0.6 * size[95] and error[30] > 2 * error[95], (size, error)
