"""An input's EXIF block in the outputs: no pixel layout tags of a TIFF input, quarter turns swap the pixel size,
and a block over a JPEG's 64 KB is trimmed with a warning, never dropped silently."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from isp_collab.pipeline import ImageDecode, Pipeline, PipelineWarning
from isp_collab.pipeline.exif_block import JPEG_EXIF_LIMIT, LAYOUT_TAGS, fit_jpeg


def _tiff(path, xmp_bytes: int = 0):
    """A 16-bit RGB TIFF with an Artist tag and, optionally, an XMP packet of ``xmp_bytes``."""
    extratags = [(315, "s", 0, "Joe", True)]
    if xmp_bytes:
        extratags.append((700, "B", 0, b"<x:xmpmeta>" + b"a" * xmp_bytes + b"</x:xmpmeta>", True))
    pixels = (np.random.default_rng(0).random((16, 24, 3)) * 65535).astype(np.uint16)
    tifffile.imwrite(path, pixels, photometric="rgb", metadata=None, extratags=extratags)
    return path


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_a_tiff_inputs_pixel_layout_is_not_carried(tmp_path, ext):
    """A TIFF's IFD0 is its EXIF: its strip offsets and 16 bits per sample were written into an 8-bit JPEG."""
    Pipeline().process_file(_tiff(tmp_path / "in.tif"), tmp_path / f"out{ext}")
    with Image.open(tmp_path / f"out{ext}") as out:
        carried = out.getexif()
    assert carried[315] == "Joe"
    assert not LAYOUT_TAGS & set(carried), sorted(LAYOUT_TAGS & set(carried))


def test_an_exif_block_over_64_kb_is_trimmed_for_jpeg_with_a_warning(tmp_path):
    """It was dropped whole, without a word: the Artist went with the XMP packet that made it too large."""
    src = _tiff(tmp_path / "in.tif", xmp_bytes=70_000)
    with pytest.warns(PipelineWarning, match=r"out\.jpg: EXIF over a JPEG's 64 KB: its XMP left out"):
        Pipeline().process_file(src, tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as out:
        carried = out.getexif()
    assert carried[315] == "Joe" and 700 not in carried
    Pipeline().process_file(src, tmp_path / "out.png")  # a PNG holds it all
    with Image.open(tmp_path / "out.png") as out:
        assert len(out.getexif()[700]) > 70_000


def test_a_block_that_cannot_fit_is_left_out_with_a_warning():
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription: not an optional tag
    data = exif.tobytes()[6:]
    with pytest.warns(PipelineWarning, match=r"a\.jpg: EXIF of 68 KB does not fit"):
        assert fit_jpeg(data, "a.jpg") is None
    small = data[:100]
    assert fit_jpeg(small) is small and len(small) <= JPEG_EXIF_LIMIT


def test_a_quarter_turn_swaps_the_pixel_size_tags(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    exif.get_ifd(0x8769).update({40962: 24, 40963: 16})  # PixelXDimension, PixelYDimension as stored
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(tmp_path / "in.jpg", exif=exif)
    image, frame = ImageDecode()(tmp_path / "in.jpg")
    carried = Image.Exif()
    carried.load(b"Exif\x00\x00" + frame.exif)
    sub = carried.get_ifd(0x8769)
    assert image.shape[:2] == (24, 16) and (sub[40962], sub[40963]) == (16, 24) and carried[0x0112] == 1
