"""An input photo's EXIF block as the outputs carry it: the picture's tags (camera, exposure, date, author,
GPS...), not the input file's pixel layout, and small enough for a JPEG's one EXIF segment.

A TIFF's first directory is its EXIF IFD0, so Pillow hands back its strip offsets, bit depth, compression and
colour profile with the camera tags: written into a PNG or JPEG they would describe pixels that file does not
have (a 16-bit TIFF's JPEG said 16 bits per sample, its strips pointed into nothing). A JPEG holds EXIF in one
APP1 segment of at most 64 KB; a larger block (a TIFF's or PNG's XMP packet, a long maker note) is trimmed,
largest optional tags first, and what was left out is said.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from .exif_text import keep_text_bytes
from .input_colour import COLOR_SPACE, INTEROP
from .io import PipelineWarning

if TYPE_CHECKING:
    from PIL import Image

# IFD0 tags that describe how the input file stores its pixels (TIFF 6.0 baseline and extensions) or its
# thumbnail, and the input's own colour profile (the outputs are tagged sRGB): none is true of an output.
LAYOUT_TAGS = frozenset(
    {
        254,  # NewSubfileType
        255,  # SubfileType
        256,  # ImageWidth
        257,  # ImageLength
        258,  # BitsPerSample
        259,  # Compression
        262,  # PhotometricInterpretation
        266,  # FillOrder
        273,  # StripOffsets
        277,  # SamplesPerPixel
        278,  # RowsPerStrip
        279,  # StripByteCounts
        284,  # PlanarConfiguration
        317,  # Predictor
        320,  # ColorMap
        322,  # TileWidth
        323,  # TileLength
        324,  # TileOffsets
        325,  # TileByteCounts
        330,  # SubIFDs
        338,  # ExtraSamples
        339,  # SampleFormat
        513,  # JPEGInterchangeFormat (a thumbnail's offset)
        514,  # JPEGInterchangeFormatLength
        34675,  # InterColorProfile (ICC)
    }
)

# What may go, largest first, when a block is over a JPEG's segment: (IFD, tag, name); IFD None is IFD0.
OPTIONAL_TAGS = (
    (0x8769, 37500, "MakerNote"),
    (None, 700, "XMP"),
    (None, 34377, "Photoshop"),
    (None, 33723, "IPTC"),
    (0x8769, 37510, "UserComment"),
)

JPEG_EXIF_LIMIT = 65533 - 6  # an APP1 segment's payload, less its "Exif\0\0" header

_EXIF_IFD = 0x8769
_PIXEL_X, _PIXEL_Y = 40962, 40963  # PixelXDimension / PixelYDimension (EXIF IFD)


def upright_exif(im: Image.Image, orientation: int) -> bytes | None:
    """The EXIF block of an open Pillow image, for an output of its pixels turned upright by ``orientation``
    (1..8): TIFF-structured bytes with the orientation set to 1, the pixel size tags swapped where it turned
    the picture a quarter, the colour space sRGB (as the outputs are tagged), and no :data:`LAYOUT_TAGS`; None when there is none left or it cannot be rewritten
    (then it is simply not carried)."""
    try:
        exif = im.getexif()
        for tag in LAYOUT_TAGS & set(exif):
            del exif[tag]
        if 0x0112 in exif:
            exif[0x0112] = 1
        sub = exif.get_ifd(_EXIF_IFD) if _EXIF_IFD in exif else {}
        if orientation in (5, 6, 7, 8) and _PIXEL_X in sub and _PIXEL_Y in sub:
            sub[_PIXEL_X], sub[_PIXEL_Y] = sub[_PIXEL_Y], sub[_PIXEL_X]
        if sub.get(COLOR_SPACE, 1) != 1:  # (a camera's Adobe RGB mode): the outputs are tagged sRGB
            sub[COLOR_SPACE] = 1
            interop = exif.get_ifd(INTEROP) if INTEROP in sub else {}
            if str(interop.get(1, "")).startswith("R03"):  # DCF's Adobe RGB option file mark
                interop[1] = "R98"  # DCF's basic (sRGB) file mark
        if not len(exif):
            return None
        keep_text_bytes(exif)
        data = exif.tobytes()
    except Exception:  # a malformed block: not worth failing the image for
        return None
    return data[6:] if data.startswith(b"Exif\x00\x00") else data


def fit_jpeg(exif: bytes | None, name: str | None = None) -> bytes | None:
    """``exif`` (TIFF-structured bytes) trimmed to a JPEG's EXIF segment: the :data:`OPTIONAL_TAGS` it holds left
    out, largest first, until it fits (a :class:`~.io.PipelineWarning` names them, and ``name``, the file it is
    for); None, with a warning, when it does not fit without them. A block that fits is returned as it is."""
    if exif is None or len(exif) <= JPEG_EXIF_LIMIT:
        return exif
    from PIL import Image

    where = f"{name}: " if name else ""
    dropped: list[str] = []
    try:
        block = Image.Exif()
        block.load(b"Exif\x00\x00" + exif)
        keep_text_bytes(block)
        present = [(ifd, tag, label) for ifd, tag, label in OPTIONAL_TAGS if tag in _ifd(block, ifd)]
        for ifd, tag, label in sorted(present, key=lambda t: -_size(_ifd(block, t[0])[t[1]])):
            del _ifd(block, ifd)[tag]
            dropped.append(label)
            data = block.tobytes()[6:]
            if len(data) <= JPEG_EXIF_LIMIT:
                warnings.warn(
                    f"{where}EXIF over a JPEG's 64 KB: its {', '.join(dropped)} left out of the output",
                    PipelineWarning,
                    stacklevel=2,
                )
                return data
    except Exception:  # a block Pillow cannot rewrite: said below like one that does not fit
        pass
    warnings.warn(
        f"{where}EXIF of {len(exif) // 1024} KB does not fit a JPEG's 64 KB segment: left out of the output "
        "(write PNG or TIFF to keep it)",
        PipelineWarning,
        stacklevel=2,
    )
    return None


def _ifd(block: Image.Exif, ifd: int | None):
    return block if ifd is None else block.get_ifd(ifd) if ifd in block else {}


def _size(value: object) -> int:
    return len(value) if isinstance(value, (bytes, str, tuple)) else 8
