"""Inputs whose colours are not what the pipeline assumes are said to be so (or refused), not read wrong silently."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from isp_collab.pipeline import ImageDecode, InputError, Pipeline, PipelineWarning
from isp_collab.pipeline.containers import srgb_icc
from isp_collab.pipeline.input_colour import is_srgb_profile

GREY = np.arange(16 * 24, dtype=np.uint8).reshape(16, 24)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_a_16_bit_min_is_white_tiff_is_not_read_as_its_negative(tmp_path, byteorder):
    """OpenCV inverts an 8-bit MinIsWhite TIFF but returned 16-bit samples as stored: a negative, silently (in the
    pipeline and in the reference consumer, which reads files with OpenCV alone)."""
    from test_export_consumer import CONSUMER, load_script

    image_files = load_script(CONSUMER.parent / "image_files.py")
    kw = {"photometric": "miniswhite", "byteorder": byteorder}
    tifffile.imwrite(tmp_path / "w16.tif", 65535 - GREY.astype(np.uint16) * 257, **kw)
    tifffile.imwrite(tmp_path / "w8.tif", 255 - GREY, **kw)
    for name in ("w16.tif", "w8.tif"):
        if byteorder == ">" and name == "w16.tif":  # Pillow (the pipeline's header reader) opens none: said so
            with pytest.raises(InputError, match=r"a TIFF layout this reader cannot open: MINISWHITE, 16-bit, big"):
                ImageDecode()(tmp_path / name)
        else:
            image, _ = ImageDecode()(tmp_path / name)
            np.testing.assert_allclose(image[..., 0], GREY / 255, atol=1e-6, err_msg=name)
        linear = image_files.read_image(tmp_path / name)[0]
        np.testing.assert_allclose(linear[..., 0], image_files.srgb_to_linear(GREY / 255), atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    ("pixels", "kwargs", "reason"),
    [
        (GREY.astype(np.float32) / 255, {}, "unsupported sample type float32"),  # was "truncated or corrupt"
        (np.zeros((16, 24, 3), np.uint8), {"photometric": "cielab"}, "a CIELab TIFF"),  # was read as RGB
    ],
)
def test_tiffs_opencv_reads_wrong_or_not_at_all_are_refused_with_the_reason(tmp_path, pixels, kwargs, reason):
    tifffile.imwrite(tmp_path / "in.tif", pixels, **kwargs)
    with pytest.raises(InputError, match=rf"in\.tif: {reason}"):
        ImageDecode()(tmp_path / "in.tif")


def _linear_srgb_profile() -> bytes:
    """sRGB's primaries with a linear curve, named as GIMP names its one: "Linear sRGB"."""
    p = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    old = "sRGB built-in".encode("utf-16-be")
    at = p.find(old)
    p[at : at + len(old)] = "Linear sRGB  ".encode("utf-16-be")
    for at in [at for at in range(0, len(p) - 16, 4) if p[at : at + 4] == b"para"]:
        p[at + 8 : at + 16] = b"\x00" * 4 + struct.pack(">i", 65536)  # curve type 0 (Y = X ** g), g = 1.0
    return bytes(p)


def test_a_profile_is_judged_by_its_colours_not_its_name(tmp_path):
    """ "Linear sRGB" passed as sRGB because its name has "sRGB" in it: 128 stayed 128 where 188 was meant."""
    linear = _linear_srgb_profile()
    assert not is_srgb_profile(linear)
    assert is_srgb_profile(srgb_icc()) and is_srgb_profile(
        ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    )
    rgb = Image.fromarray(np.repeat(GREY[..., None], 3, axis=2))
    rgb.save(tmp_path / "linear.png", icc_profile=linear)
    with pytest.warns(PipelineWarning, match=r"linear\.png: embedded colour profile 'Linear sRGB' is not sRGB"):
        ImageDecode()(tmp_path / "linear.png")
    rgb.save(tmp_path / "srgb.png", icc_profile=srgb_icc())
    with warnings.catch_warnings():
        warnings.simplefilter("error", PipelineWarning)
        ImageDecode()(tmp_path / "srgb.png")


@pytest.mark.parametrize(("interop", "said"), [(None, "not sRGB"), ("R03", "Adobe RGB")])
def test_a_cameras_adobe_rgb_jpeg_is_warned_about_and_its_output_says_srgb(tmp_path, interop, said):
    """A camera in Adobe RGB mode writes no profile, only EXIF ColorSpace = Uncalibrated: read as sRGB without a
    word, and written with an sRGB profile beside ColorSpace = Uncalibrated."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif.get_ifd(0x8769)[0xA001] = 0xFFFF
    if interop:
        exif.get_ifd(0x8769)[0xA005] = {1: interop}
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(tmp_path / "in.jpg", exif=exif)
    with pytest.warns(PipelineWarning, match=rf"in\.jpg: its EXIF says its colours are {said}"):
        Pipeline().process_file(tmp_path / "in.jpg", tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        carried = out.getexif()
        assert carried.get_ifd(0x8769)[0xA001] == 1 and "icc_profile" in out.info
        if interop:  # DCF's Adobe RGB mark would contradict the sRGB tags
            assert carried.get_ifd(0xA005)[1] == "R98"


def test_a_grey_photo_saved_with_its_rgb_srgb_profile_is_not_warned_about(tmp_path):
    """convert("L") keeps the RGB sRGB profile: tested as a grey profile, it was 'not sRGB'."""
    Image.fromarray(GREY).save(tmp_path / "g.jpg", icc_profile=srgb_icc())
    with warnings.catch_warnings():
        warnings.simplefilter("error", PipelineWarning)
        ImageDecode()(tmp_path / "g.jpg")
