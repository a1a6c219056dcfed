"""Ordinary image files read: PNG/JPEG/TIFF, 8 or 16 bit, upright by their EXIF orientation, as sRGB-encoded floats.

Pillow reads the header (size, EXIF, colour caveats) before any pixel is decoded, so ``--max-pixels`` decides before
memory is spent; OpenCV decodes the pixels. Camera RAWs, DNGs and CIELab or float TIFFs are refused by name.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..native_stderr import capture_stderr
from .exif_block import upright_exif
from .frame import Frame, apply_orientation
from .input_colour import colour_caveats
from .io import DEFAULT_MAX_PIXELS, InputError, PipelineWarning, check_input_file, check_pixels
from .tiff_log import quiet_tifffile

if TYPE_CHECKING:
    from PIL import Image

# Python's warning filters and Pillow's decompression-bomb cap are process-wide: header reads change them under this lock
# (two readers at once must not put back each other's values; Python's warning filters are not thread-safe
# before 3.14), and only as far as they must.
_pillow_lock = threading.Lock()


@contextmanager
def pillow_header(path: Path) -> Iterator[Image.Image]:
    """``Image.open(path)`` for its header (size, EXIF, text chunks), without Pillow's own warnings ("Corrupt EXIF
    data", a large image's decompression-bomb warning: the decode judges the file, and callers check pixels
    themselves). Pillow's cap is lifted, process-wide while the file is opened, only for an image it would refuse
    (past twice its ``MAX_IMAGE_PIXELS``, 179 MP by default); other threads' warnings are not silenced."""
    from PIL import Image

    with _pillow_lock, warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"PIL\.")  # the warnings Pillow itself issues, no others
        try:
            im = Image.open(path)
        except Image.DecompressionBombError:
            pillow_cap = Image.MAX_IMAGE_PIXELS
            try:
                Image.MAX_IMAGE_PIXELS = None
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_cap
        with im:
            yield im


@dataclass(frozen=True)
class ImageDecode:
    """Read an ordinary image: ``__call__(path) -> (image, frame)``.

    image: (H, W, 3) float32 sRGB-encoded in [0, 1], turned upright by its EXIF orientation;
    frame: ``kind="rgb"``, ``bit_depth`` 8 or 16, orientation 1 (already applied), ``greyscale``
    for a one-channel file (its grey copied to all three channels).
    """

    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __call__(self, path: str | os.PathLike) -> tuple[np.ndarray, Frame]:
        """Decode ``path`` (see the class); :class:`~.io.InputError` naming it when it cannot be read."""
        from PIL import UnidentifiedImageError

        p = check_input_file(path)
        try:  # PIL reads only the header here: size and EXIF before any pixel is decoded; our cap decides
            with pillow_header(p) as im:  # ("Corrupt EXIF data" is not said: the decode below judges)
                width, height = im.size
                check_pixels(p, height, width, self.max_pixels)  # before anything else is read
                orientation = int(im.getexif().get(0x0112, 1) or 1)
                orientation = orientation if 1 <= orientation <= 8 else 1
                caveats = colour_caveats(im)
                grey = im.mode in _GREY_MODES
                exif = upright_exif(im, orientation)
                tiff = im.format == "TIFF"
                photometric = im.tag_v2.get(262) if tiff else None  # PhotometricInterpretation
        except InputError:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            reason = str(e).splitlines()[0] if str(e) else e.__class__.__name__
            if isinstance(e, UnidentifiedImageError):
                reason = _tiff_reason(p) or _tiff_layout(p) or f"not a {p.suffix.lstrip('.').upper()} image or corrupt"
            raise InputError(f"{p}: cannot read image ({reason})") from None
        if tiff and (reason := _camera_raw_reason(p)):  # Pillow reads its preview: the sensor data would be lost
            raise InputError(f"{p}: {reason}")
        if photometric in _LAB_PHOTOMETRIC:  # OpenCV reads L*a*b* samples as RGB: the colours would be wrong
            raise InputError(f"{p}: a CIELab TIFF (PhotometricInterpretation {photometric}): convert it to RGB first")
        for caveat in caveats:  # processed as sRGB without alpha all the same
            warnings.warn(f"{p}: {caveat}", PipelineWarning, stacklevel=2)
        # OpenCV 5's imread fails on TIFFs with an orientation tag unless told to ignore it, and its
        # TIFF decoder turns the image upright anyway; PNG/JPEG orientation is applied here (tested).
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION
        said: list[str] = []  # libpng/libjpeg print on fd 2 (a PNG cut before IEND): kept for the one-line error
        with capture_stderr(said, pass_on=lambda line: not _decoder_line(line)):  # another thread's log: passed on
            bgr = cv2.imdecode(_without_empty_animation(np.fromfile(p, dtype=np.uint8)), flags)
        said = [line for line in said if _decoder_line(line)]
        if bgr is None and tiff and (reason := _tiff_reason(p)):  # a float TIFF: say so, not "corrupt"
            raise InputError(f"{p}: {reason}")
        if bgr is None:
            detail = "; ".join(dict.fromkeys(line.strip() for line in said if line.strip()))
            raise InputError(f"{p}: cannot decode image (truncated or corrupt{f'; {detail}' if detail else ''})")
        damage = "; ".join(dict.fromkeys(line.strip() for line in said if line.strip() and not _about_metadata(line)))
        if damage:  # damaged data decoded all the same (garbage blocks, a grey lower half): not silently
            warnings.warn(
                f"{p}: the decoder reported a damaged file and decoded it all the same; check the picture ({damage})",
                PipelineWarning,
                stacklevel=2,
            )
        if bgr.dtype == np.uint8:
            bits, scale = 8, 1 / 255
        elif bgr.dtype == np.uint16:
            bits, scale = 16, 1 / 65535
            if photometric == 0:  # MinIsWhite: OpenCV inverts 8-bit samples, hands back 16-bit ones as stored
                bgr = np.subtract(65535, bgr, dtype=np.uint16)
        else:
            raise InputError(f"{p}: unsupported sample type {bgr.dtype} (8- or 16-bit integer images only)")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(scale)
        if p.suffix.lower() not in (".tif", ".tiff"):
            rgb = apply_orientation(rgb, orientation)
        frame = Frame(
            source=p,
            kind="rgb",
            height=rgb.shape[0],
            width=rgb.shape[1],
            bit_depth=bits,
            greyscale=grey,
            exif=exif,
            turned=orientation,  # TIFF: OpenCV turned it
        )
        return rgb, frame


_LAB_PHOTOMETRIC = (8, 9, 10)  # CIELab, ICCLab, ITULab

# Pillow modes of one-channel (grey) images, with or without alpha, 1 to 32 bits.
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# How the image libraries OpenCV decodes with begin what they print (libpng, libjpeg's messages, libtiff, OpenCV's
# own log): only such lines are taken as the decoder's words about the file; others are another thread's.
_DECODER_LINE = re.compile(
    r"\s*(libpng |Corrupt JPEG|Premature end of JPEG|Invalid |Not a JPEG|Bogus |Unsupported |Warning: |Huffman table"
    r"|Quantization table|Improper call|JPEG |Unknown APP|TIFF|\[ ?(WARN|ERROR|INFO):|\S+\.(tiff?|png|jpe?g): )",
    re.IGNORECASE,
)


def _decoder_line(line: str) -> bool:
    """Whether a line printed on fd 2 during a decode comes from an image library (see :data:`_DECODER_LINE`)."""
    return bool(_DECODER_LINE.match(line))


def _about_metadata(line: str) -> bool:
    """Whether a line libpng printed is about an ancillary chunk (``libpng warning: iCCP: known incorrect sRGB
    profile``): one whose name starts in lower case, which holds no pixels (colour profiles are judged by
    :func:`colour_caveats`)."""
    chunk = line.strip().removeprefix("libpng warning: ")
    return chunk != line.strip() and chunk[4:6] == ": " and chunk[:1].islower() and chunk[:4].isalpha()


def _without_empty_animation(data: np.ndarray) -> np.ndarray:
    """A PNG's bytes without its animation header (acTL chunk) when no frame follows it (no fcTL chunk).

    OpenCV decodes such a file, an animation of no frames, as all black; Pillow and other readers show its still
    image (the IDAT chunks), which OpenCV then decodes without the header. Other files come back as they are, a
    valid animated PNG too (its first frame is decoded).
    """
    if data[:8].tobytes() != _PNG_SIGNATURE:
        return data
    at, actl, kind = 8, None, b""
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at : at + 4].tobytes(), "big"), data[at + 4 : at + 8].tobytes()
        if kind == b"fcTL" or kind == b"IEND" or (kind == b"IDAT" and actl is None):  # frames, or no animation
            break
        if kind == b"acTL":
            actl = at
        at += 12 + size
    if actl is None or kind == b"fcTL":
        return data
    size = int.from_bytes(data[actl : actl + 4].tobytes(), "big")
    return np.concatenate((data[:actl], data[actl + 12 + size :]))


def _camera_raw_reason(path: Path) -> str | None:
    """Why a file Pillow opens as a TIFF is a camera RAW instead (TIFF/EP: KDC, NEF, CR2, DNG...); None if not.

    Such a file's first image is a small preview (a 96x64 one for the Kodak DC50 KDC); decoded as an image
    it would silently replace the photo. Signs, from the first image directory: the DNG or TIFF/EP
    version tag, a colour filter array, or a reduced-resolution first image with the full one elsewhere.
    """
    import tifffile

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            tags = page.tags
            subfile = tags.get(254)
            preview = subfile is not None and int(subfile.value) & 1 and (tags.get(330) or len(tif.pages) > 1)
            if 50706 in tags:  # DNGVersion
                return "a DNG raw file: give it the .dng extension"
            if 37398 in tags or 33422 in tags or 37399 in tags or preview or page.photometric == 32803:
                make = tags.get(271)
                camera = f" ({str(make.value).strip()})" if make is not None and str(make.value).strip() else ""
                return (
                    f"a camera RAW file{camera}, read as an image it gives only its preview; give it its camera's "
                    "extension (.kdc, .nef, .cr2, ...) so LibRaw decodes the sensor data"
                )
    except Exception:  # noqa: BLE001 - tifffile cannot read it: Pillow's reading stands
        return None
    return None


def _tiff_reason(path: Path) -> str | None:
    """Why a TIFF cannot be read as an image: a DNG, or samples other than 8/16-bit integers; None if neither."""
    try:
        import tifffile

        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if 50706 in page.tags:  # DNGVersion
                return "a DNG raw file: give it the .dng extension"
            if page.dtype not in (np.uint8, np.uint16):
                return f"unsupported sample type {page.dtype} (8- or 16-bit integer images only)"
            return None
    except Exception:  # not a TIFF either
        return None


def _tiff_layout(path: Path) -> str | None:
    """A TIFF Pillow cannot open but is one (a big-endian 16-bit MinIsWhite...): what it is; None for no TIFF."""
    try:
        import tifffile

        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            order = "big" if tif.byteorder == ">" else "little"
            return (
                f"a TIFF layout this reader cannot open: {page.photometric.name}, {page.bitspersample}-bit, "
                f"{order}-endian; save it as an RGB or grey TIFF or PNG"
            )
    except Exception:  # not a TIFF
        return None
