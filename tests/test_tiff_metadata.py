"""An ordinary image's EXIF reaching a TIFF output: camera text tags in the main IFD, exposure in an EXIF sub-IFD."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from isp_collab.pipeline import Pipeline
from isp_collab.pipeline.encode import encode_image


def _exif(exposure: bool = True, maker_note: bool = False) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "TestCam", "Model 7", 1
    if exposure:
        sub = exif.get_ifd(0x8769)
        sub[33434], sub[33437], sub[34855] = IFDRational(1, 60), IFDRational(28, 10), 800
        sub[37380], sub[42036] = IFDRational(-2, 3), "Zoom 24-70"
    if maker_note:
        exif.get_ifd(0x8769)[0x927C] = b"\x01\x02" * 40  # a maker note: not carried (offsets of its own)
    return exif.tobytes()[6:]


@pytest.mark.parametrize("bits", [8, 16])
def test_exposure_tags_reach_a_tiff_output(bits):
    data = encode_image(np.full((6, 10, 3), 0.5, np.float32), ".tif", bits, exif=_exif(maker_note=True))
    with Image.open(io.BytesIO(data)) as im:
        exif = im.getexif()
        sub = exif.get_ifd(0x8769)
        assert (exif[0x010F], exif[0x0110]) == ("TestCam", "Model 7") and "icc_profile" in im.info
        assert float(sub[33434]) == pytest.approx(1 / 60) and float(sub[33437]) == pytest.approx(2.8)
        assert sub[34855] == 800 and sub[42036] == "Zoom 24-70"
        assert float(sub[37380]) == pytest.approx(-2 / 3)  # a signed rational stays negative
        assert 0x927C not in sub
        assert np.asarray(im).shape[:2] == (6, 10)


def test_no_exposure_no_sub_ifd_nor_placeholder():
    import tifffile

    for exif in (_exif(exposure=False), b"not an exif block", None):
        data = encode_image(np.zeros((4, 4, 3), np.float32), ".tif", 16, exif=exif)
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            codes = {tag.code for tag in tif.pages[0].tags}
        assert 34665 not in codes and 34666 not in codes
        assert (271 in codes) == (exif == _exif(exposure=False))


def test_a_jpegs_exposure_reaches_a_tiff_from_process(tmp_path):
    Image.fromarray(np.full((16, 24, 3), 90, np.uint8)).save(tmp_path / "in.jpg", exif=b"Exif\x00\x00" + _exif())
    Pipeline().process_file(tmp_path / "in.jpg", tmp_path / "out.tif")
    with Image.open(tmp_path / "out.tif") as out:
        assert out.getexif().get_ifd(0x8769)[34855] == 800


def test_one_odd_value_does_not_drop_the_other_exposure_tags():
    """ISO 70000 (a LONG in the input) dropped every exposure tag; a lens name with Ø came out as '?'."""
    import tifffile

    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    sub[33434], sub[34855], sub[42036] = IFDRational(1, 8000), 70000, "Objektiv Ø50".encode()  # UTF-8, as cameras
    data = encode_image(np.zeros((4, 4, 3), np.float32), ".tif", 16, exif=exif.tobytes()[6:])
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        carried = tif.pages[0].tags["ExifTag"].value
    assert carried["ExposureTime"] == (1, 8000) and carried["ISOSpeedRatings"] == 65535  # EXIF 2.3's cap
    assert carried["LensModel"] == "Objektiv Ø50"
