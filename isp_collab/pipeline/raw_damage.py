"""Whether a DNG's raw image directory can describe its data: the damage LibRaw decodes without an error.

LibRaw stops at a lossless-JPEG tile that does not start as a JPEG stream, reads too few tiles for the stated size,
or takes 16-bit samples as 8-bit ones, and hands back zeros or garbage with no error: a half-black picture, exit
0 (a fuzzing run: 2 zeroed bytes in the demo DNG gave 4096x2160 half black). Each check here reads tags and at most
two bytes per strip or tile.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tifffile

_CFA = 32803
_BLACK, _WHITE, _LINEARIZATION = 50714, 50717, 50712


def data_problem(fh: tifffile.FileHandle, page: tifffile.TiffPage) -> str | None:
    """Why the raw image of tifffile ``page`` (its file handle ``fh``) cannot be what its tags say, or None (also
    where a tag cannot be read here: LibRaw decides)."""
    try:
        return _problem(fh, page)
    except Exception:  # noqa: BLE001 - a layout these checks do not know: no verdict
        return None


def _problem(fh: tifffile.FileHandle, page: tifffile.TiffPage) -> str | None:
    height, width = int(page.imagelength), int(page.imagewidth)
    samples, bits = int(page.samplesperpixel), int(page.bitspersample)
    if page.photometric == _CFA and samples != 1:
        return f"a colour filter array image with {samples} samples per pixel (1 expected)"
    if page.is_tiled:
        tw, th = int(page.tilewidth), int(page.tilelength)
        if tw < 1 or th < 1:
            return f"its raw image's tiles are {tw}x{th}"
        expected, what = math.ceil(width / tw) * math.ceil(height / th), "tiles"
        block_bytes = [tw * th * samples * bits / 8] * expected
    else:
        rows = min(max(1, int(page.rowsperstrip or height)), height)
        expected, what = math.ceil(height / rows), "strips"
        block_bytes = [min(rows, height - k * rows) * width * samples * bits / 8 for k in range(expected)]
    if int(page.planarconfig) == 2:  # one plane per sample
        expected, block_bytes = expected * samples, [b / samples for b in block_bytes] * samples
    offsets, counts = list(page.dataoffsets), list(page.databytecounts)
    if len(offsets) != expected:
        return f"its raw image of {width}x{height} needs {expected} {what}, the file has {len(offsets)}"
    inside = next((k for k, offset in enumerate(offsets) if offset < 8), None)
    if inside is not None:  # the 8-byte TIFF header: LibRaw reads the header's bytes as pixels
        return (
            f"{what[:-1]} {inside + 1} of {expected} starts at byte {offsets[inside]:,}, inside the 8-byte TIFF header"
        )
    if page.compression == 7:  # lossless JPEG: every block a JPEG stream
        for k, offset in enumerate(offsets):
            fh.seek(offset)
            if fh.read(2) != b"\xff\xd8":
                return f"lossless-JPEG {what[:-1]} {k + 1} of {expected} (at byte {offset:,}) is not a JPEG stream"
    tags = page.tags
    white = max(tag_numbers(tags[_WHITE])) if _WHITE in tags else None
    black = max(tag_numbers(tags[_BLACK])) if _BLACK in tags else None
    if page.compression == 1:
        short = next((k for k, (c, need) in enumerate(zip(counts, block_bytes, strict=True)) if c < need), None)
        if short is not None:
            return (
                f"{what[:-1]} {short + 1} holds {counts[short]:,} bytes where {width}x{height} {bits}-bit samples "
                f"need {math.ceil(block_bytes[short]):,}"
            )
        # levels count after the LinearizationTable, which may map 8-bit samples to 14 bits (Leica M8 / M9)
        if white is not None and white > 2**bits - 1 and _LINEARIZATION not in tags:
            return f"its WhiteLevel {white:g} does not fit its {bits}-bit samples"
    if white is not None and white <= 0:
        return f"its WhiteLevel is {white:g}"
    if white is not None and black is not None and black >= white:
        return f"its BlackLevel {black:g} is not below its WhiteLevel {white:g}"
    return None


def tag_numbers(tag: tifffile.TiffTag) -> tuple[float, ...]:
    """A tifffile tag's values as numbers (a RATIONAL's numerator / denominator pairs divided)."""
    values = tag.value if isinstance(tag.value, tuple) else (tag.value,)
    if int(tag.dtype) in (5, 10):  # RATIONAL, SRATIONAL: tifffile gives the pairs flat
        return tuple(n / d if d else 0.0 for n, d in zip(values[::2], values[1::2], strict=True))
    return tuple(float(v) for v in values)
