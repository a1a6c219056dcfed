"""The metadata a TIFF output carries from its input's EXIF block: camera text tags and exposure tags.

tifffile writes the pixels and the main-IFD text tags (Make, Model, DateTime, Artist, Copyright), but it does
not write an EXIF sub-IFD (tag 34665, ExifIFD). The exposure tags live there, so :func:`add_exif_ifd` appends
one that Pillow encodes and points the main IFD at it. Only the exposure tags in
:data:`~isp_collab.pipeline.raw_exif.EXPOSURE_TAGS` are carried: they are plain values; a maker note or
other blobs with offsets of their own would break when moved.
"""

from __future__ import annotations

import io
import struct

from .raw_exif import EXPOSURE_TAGS

# the EXIF block's main-IFD text tags a TIFF output keeps
_TEXT_TAGS = (271, 272, 306, 315, 33432)  # Make, Model, DateTime, Artist, Copyright
_EXIF_IFD = 34665
# tifffile refuses to write tag 34665 (it writes sub-IFDs itself, never this one): a placeholder with the next
# tag number holds its place in the sorted main IFD, then is renamed (no tag can sort between the two)
_PLACEHOLDER = _EXIF_IFD + 1
# the TIFF type of each carried tag (EXIF 2.32): RATIONAL 5, SHORT 3, ASCII 2, SRATIONAL 10
_TYPES = {33434: 5, 33437: 5, 34855: 3, 36867: 2, 37380: 10, 37386: 5, 42036: 2}


def _load(exif: bytes | None):
    """A Pillow ``Image.Exif`` of a TIFF-structured EXIF block, or None (no block, or malformed)."""
    if not exif:
        return None
    from PIL import Image

    try:
        block = Image.Exif()
        block.load(exif)
        return block
    except Exception:  # noqa: BLE001 - a malformed block: the pixels are written without it
        return None


def _exposure(exif: bytes | None) -> dict[int, object]:
    """The carried exposure tags of an EXIF block's sub-IFD, tag -> value ({} without)."""
    block = _load(exif)
    if block is None:
        return {}
    try:
        sub = block.get_ifd(_EXIF_IFD)
    except Exception:  # noqa: BLE001
        return {}
    out = {}
    for tag in EXPOSURE_TAGS.values():
        v = sub.get(tag)
        if isinstance(v, tuple) and v and _TYPES[tag] == 3:  # ISO may be a list of speeds: the first
            v = v[0]
        if _TYPES[tag] == 3 and isinstance(v, int):
            v = min(v, 65535)  # a SHORT; EXIF 2.3 records ISO 65535 and above as 65535
        if isinstance(v, str):  # the input's own bytes (Pillow read them as Latin-1; writing str, it puts "?")
            v = v.rstrip("\x00").strip().encode("latin-1", "replace") or None
        if v is None or (isinstance(v, bytes) and _TYPES[tag] != 2):
            continue
        try:  # a value Pillow cannot encode is left out alone (checked before a placeholder is written)
            _ifd({tag: v}, "<").tobytes(8)
        except Exception:  # noqa: BLE001
            continue
        out[tag] = v
    return out


def _ifd(exposure: dict[int, object], order: str):
    """A Pillow image file directory of ``exposure`` (tag -> value) in byte order ``order`` ("<" or ">")."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    ifd = ImageFileDirectory_v2(ifh=(b"II*\x00" if order == "<" else b"MM\x00*") + b"\x00" * 4)
    for tag, v in exposure.items():
        ifd[tag] = v
        ifd.tagtype[tag] = _TYPES[tag]
    return ifd


def tiff_extratags(exif: bytes | None, bigtiff: bool = False) -> list[tuple[int, int | str, int, object, bool]]:
    """tifffile ``extratags`` for an EXIF block: its camera and date text tags, and a placeholder for the EXIF
    sub-IFD that :func:`add_exif_ifd` fills when the block has exposure tags ([] without a block). A BigTIFF
    (``bigtiff``: Pillow writes classic IFDs only) gets no placeholder, and no exposure tags."""
    block = _load(exif)
    if block is None:
        return []
    # Pillow reads a tag's bytes as Latin-1: encoding back gives them unchanged (UTF-8 text from raw_exif too);
    # tifffile refuses a non-ASCII str but writes bytes as they are
    tags: list[tuple[int, int | str, int, object, bool]] = [
        (tag, "s", 0, text if text.isascii() else text.encode("latin-1", "replace"), True)
        for tag in _TEXT_TAGS
        if isinstance(text := block.get(tag), str)
    ]
    if not bigtiff and _exposure(exif):
        tags.append((_PLACEHOLDER, 4, 1, 0, True))  # LONG, filled with the sub-IFD's offset
    return tags


def add_exif_ifd(tiff: bytes, exif: bytes | None) -> bytes:
    """``tiff`` (written by tifffile with :func:`tiff_extratags`) with the exposure tags of ``exif`` appended as
    an EXIF sub-IFD; ``tiff`` unchanged when there are none, or for a BigTIFF (Pillow writes classic IFDs)."""
    exposure = _exposure(exif)
    if not exposure:
        return tiff
    import tifffile

    with tifffile.TiffFile(io.BytesIO(tiff)) as tif:
        placeholder = tif.pages[0].tags.get(_PLACEHOLDER)
        if placeholder is None or tif.is_bigtiff:
            return tiff
        entry, value, order = placeholder.offset, placeholder.valueoffset, tif.byteorder
    out = bytearray(tiff)
    out += b"\x00" * (len(out) % 2)  # an IFD starts on a word boundary
    start = len(out)
    out += _ifd(exposure, order).tobytes(start)
    struct.pack_into(order + "H", out, entry, _EXIF_IFD)
    struct.pack_into(order + "I", out, value, start)
    return bytes(out)
