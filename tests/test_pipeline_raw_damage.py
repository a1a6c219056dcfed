"""DNGs whose raw image cannot be what their tags say: LibRaw decodes them without an error into a black, half
black or dim picture (found by fuzzing); each is refused in one line naming what is wrong."""

from __future__ import annotations

import struct

import ljpeg_dng as dc
import numpy as np
import pytest

from isp_collab.pipeline import InputError, RawDecode


def _patch(path, tag: int, value: int):
    """Set the first value of ``tag`` in the first IFD of little-endian TIFF ``path``, in place."""
    data = bytearray(path.read_bytes())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        found, kind, _ = struct.unpack_from("<HHI", data, entry)
        if found == tag:
            struct.pack_into("<H" if kind == 3 else "<I", data, entry + 8, value)
            path.write_bytes(bytes(data))
            return path
    raise KeyError(tag)


def _cfa(tmp_path, **kw):
    return dc.write_dng(tmp_path / "x.dng", dc.intended("cfa"), **kw)


def _linear(tmp_path, **kw):
    return dc.write_dng(tmp_path / "x.dng", dc.intended("linear"), **kw)


@pytest.mark.parametrize(
    ("make", "damage", "said"),
    [
        (_cfa, {258: 8}, r"its WhiteLevel 4095 does not fit its 8-bit samples"),  # 16-bit data: was all black
        (_cfa, {259: 7}, r"lossless-JPEG strip 1 of 1 \(at byte [\d,]+\) is not a JPEG stream"),  # was all black
        (_linear, {50714: 60000}, r"its BlackLevel 60000 is not below its WhiteLevel 4095"),  # was all black
        (_cfa, {50717: 0}, r"its WhiteLevel is 0"),  # LibRaw took 65535: 4x too dark
        (_cfa, {279: 12288}, r"strip 1 holds 12,288 bytes where 128x96 16-bit samples need 24,576"),
        (_cfa, {273: 0}, r"strip 1 of 1 starts at byte 0, inside the 8-byte TIFF header"),  # header as pixels
    ],
)
def test_tags_that_contradict_the_data_are_refused(tmp_path, make, damage, said):
    path = make(tmp_path)
    for tag, value in damage.items():
        _patch(path, tag, value)
    with pytest.raises(InputError, match=rf"x\.dng: a damaged RAW file: {said}"):
        RawDecode()(path)


def test_a_lossless_jpeg_tile_that_is_not_a_jpeg_stream_is_refused(tmp_path):
    """Two zeroed bytes (a tile's JPEG start) in the demo DNG gave a 4096x2160 picture half black, exit 0."""
    pytest.importorskip("imagecodecs")
    path = _cfa(tmp_path, compression=7, layout="tiles", tile=(32, 32))
    RawDecode()(path)  # whole: decoded
    from tifffile import TiffFile

    with TiffFile(path) as tif:
        third = tif.pages[0].dataoffsets[2]
    data = bytearray(path.read_bytes())
    data[third : third + 2] = b"\0\0"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"lossless-JPEG tile 3 of 12 \(at byte {third:,}\) is not a JPEG stream"):
        RawDecode()(path)


def test_too_few_tiles_for_the_stated_size_are_refused(tmp_path):
    """ImageWidth doubled on a tiled DNG: LibRaw filled the missing half with zeros."""
    path = _cfa(tmp_path, layout="tiles")
    _patch(path, 256, 2 * dc.W)
    with pytest.raises(InputError, match=r"its raw image of 256x96 needs 12 tiles, the file has 6"):
        RawDecode()(path)


def test_intact_layouts_pass_the_checks(tmp_path):
    for kind, kw in [("cfa", {}), ("cfa", {"layout": "tiles"}), ("linear", {}), ("cfa", {"rows_per_strip": 10})]:
        samples = RawDecode()(dc.write_dng(tmp_path / f"{kind}.dng", dc.intended(kind), **kw))[0]
        np.testing.assert_array_equal(samples, dc.intended(kind))


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_an_invalid_orientation_is_said_and_left_as_stored(tmp_path, value):
    """Orientation 0 turned the picture a quarter, 65535 transposed it (LibRaw maps the tag through its low bits)."""
    from isp_collab.pipeline import PipelineWarning

    path = _patch(_cfa(tmp_path), 274, value)
    with pytest.warns(PipelineWarning, match=rf"x\.dng: its Orientation tag {value} is not a valid one"):
        frame = RawDecode()(path)[1]
    assert frame.orientation == 1


def test_libraws_words_about_a_file_it_decodes_anyway_are_a_warning_and_other_lines_pass_on(
    tmp_path, monkeypatch, capfd
):
    """LibRaw's "PATH: Unexpected end of file" on a file it decodes all the same was dropped with the rest of fd 2
    (other threads' lines included): now a warning naming the file, and the other lines reach the terminal."""
    import os

    import rawpy

    from isp_collab.pipeline import PipelineWarning

    path = _cfa(tmp_path)
    imread = rawpy.imread

    def chatty(name):
        os.write(2, f"{name}: Unexpected end of file\nanother thread's line\n".encode())
        return imread(name)

    monkeypatch.setattr(rawpy, "imread", chatty)
    with pytest.warns(PipelineWarning, match=r"x\.dng: LibRaw reported a problem .* \(Unexpected end of file\)"):
        RawDecode()(path)
    err = capfd.readouterr().err
    assert "another thread's line" in err and "Unexpected end of file" not in err


def test_a_linearization_table_lets_the_white_level_pass_the_samples_bits(tmp_path):
    """Leica's M8 / M9 store 8-bit samples and a LinearizationTable to 14 bits: WhiteLevel 16383 is right there
    (the levels count after the table), and such a file was refused as damaged."""
    path = _patch(_cfa(tmp_path), 258, 8)
    data = bytearray(path.read_bytes())  # a LinearizationTable tag in place of the (unused) CalibrationIlluminant1
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 50778:
            struct.pack_into("<HHIHH", data, entry, 50712, 3, 1, 16383, 0)  # one SHORT: the table's upper end
    path.write_bytes(bytes(data))
    from isp_collab.pipeline.raw_layout import RawLayout

    layout = RawLayout.of(path)
    assert layout.as_shot_neutral and layout.damage is None  # (read, not an empty layout of a file it cannot read)
