"""Results encoded and written: PNG, JPEG or TIFF, tagged sRGB, with the input's EXIF (reading: :mod:`.decode`).

Written formats: 8-bit PNG and JPEG, 8- or 16-bit PNG and TIFF. The output bit depth is the
requested one, else the input's for ordinary images (16-bit in, 16-bit out), else 8 for RAW input
to PNG/JPEG and 16 for RAW input to TIFF. A greyscale input is written as greyscale (its luma:
the network and lens stages work per channel and may leave a faint tint on a grey image).

Every output is tagged as sRGB (PNG ``sRGB`` chunk; JPEG and TIFF an sRGB ICC profile), and the EXIF
of an ordinary image (camera, exposure, date...) is carried to PNG and JPEG outputs with its
orientation set to 1, since the pixels are already upright, without a TIFF input's pixel layout tags and
trimmed to a JPEG's 64 KB with a warning (``exif_block``); TIFF outputs keep its camera, date and exposure
tags (``tiff_metadata``). A TIFF-based RAW's tags are carried the same way (``raw_exif``).

JPEGs keep full-resolution colour (4:4:4) by default: the common 4:2:0 halves the chroma resolution,
which undoes a per-channel lens correction (its colour edges) and puts back soft fringes;
``jpeg_chroma = "420"`` (or ``"422"``) trades that for about a third smaller files.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..atomic import OutputError
from . import provenance
from .containers import ICC_HEADER, jpeg_with_segments, png_with_chunks, srgb_icc
from .exif_block import fit_jpeg
from .frame import Frame
from .io import (
    OUTPUT_EXTENSIONS,
)
from .tiff_metadata import add_exif_ifd, tiff_extratags


def _bits(allowed: tuple[int, ...]) -> str:
    return " or ".join(f"{b}-bit" for b in allowed)


def check_output_format(path: Path, requested: int | None = None) -> tuple[int, ...]:
    """The bit depths ``path``'s type can hold; OutputError for an unknown type or an impossible request.

    Cheap (no image needed): callers check before any decoding or network work.
    """
    ext = Path(path).suffix.lower()
    if ext not in OUTPUT_EXTENSIONS:
        raise OutputError(f"{path}: cannot write {ext or 'files without extension'!r}; use .png, .jpg or .tif")
    allowed = OUTPUT_EXTENSIONS[ext]
    if requested is not None and requested not in allowed:
        raise OutputError(f"{path}: {ext} cannot hold {requested}-bit samples ({_bits(allowed)} only)")
    return allowed


def output_bit_depth(path: str | os.PathLike, frame: Frame, requested: int | None = None) -> int:
    """8 or 16 for writing ``path`` (see the module docstring); ValueError for impossible requests."""
    path = Path(path)
    ext = path.suffix.lower()
    allowed = check_output_format(path, requested)
    if requested is not None:
        return requested
    if frame.kind == "rgb":
        if frame.bit_depth not in allowed:
            warnings.warn(
                f"{path}: {frame.bit_depth}-bit input written with 8 bits ({ext} holds no more; "
                "write .png or .tif to keep them)",
                stacklevel=2,
            )
            return 8
        return frame.bit_depth
    return 16 if ext in (".tif", ".tiff") else 8


JPEG_CHROMA = {
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
}


def encode_image(
    image: np.ndarray,
    ext: str,
    bit_depth: int = 8,
    jpeg_quality: int = 95,
    exif: bytes | None = None,
    jpeg_chroma: str = "444",
    record: str | None = None,
    name: str | None = None,
) -> bytes:
    """(H, W, 3) float sRGB-encoded [0, 1], or (H, W) grey -> file bytes (values outside [0, 1] are clipped).

    ext: ".png", ".jpg"/".jpeg" or ".tif"/".tiff"; bit_depth: 8 or 16 (JPEG: 8 only); exif:
    TIFF-structured EXIF to embed (PNG and JPEG: whole; TIFF: its camera, date, artist and copyright tags and
    the exposure tags of ``raw_exif.EXPOSURE_TAGS``, ``tiff_metadata``);
    jpeg_chroma: ``"444"`` (full-resolution colour),
    ``"422"`` or ``"420"``; record: which input the file was made from, kept in it (:mod:`.provenance`). The
    file is tagged as sRGB (module docstring). An EXIF block over a JPEG's 64 KB is trimmed with a warning
    that names ``name``, the file (:func:`.exif_block.fit_jpeg`).
    """
    if not isinstance(image, np.ndarray) or not np.issubdtype(image.dtype, np.floating):
        what = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"expected a float numpy image in [0, 1], got {what} (integer pixels would be clipped to 0/1)")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or image.size == 0:
        raise ValueError(f"expected a non-empty (H, W, 3) or (H, W) image, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError("the image contains NaN or infinity (no pixel value to write for it)")
    if (
        isinstance(jpeg_quality, bool)
        or not isinstance(jpeg_quality, (int, np.integer))
        or not 1 <= jpeg_quality <= 100
    ):
        raise ValueError(f"jpeg_quality must be an integer in 1..100, got {jpeg_quality!r}")
    if jpeg_chroma not in JPEG_CHROMA:
        raise ValueError(f"jpeg_chroma must be one of {', '.join(JPEG_CHROMA)}, got {jpeg_chroma!r}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    ext = ext.lower()
    allowed = OUTPUT_EXTENSIONS.get(ext)  # others would be written wrong (a 16-bit JPEG comes out white)
    if allowed is None:
        raise ValueError(f"cannot encode {ext!r}: use .png, .jpg or .tif")
    if bit_depth not in allowed:
        raise ValueError(f"{ext} cannot hold {bit_depth}-bit samples ({_bits(allowed)} only)")
    peak, dtype = (255, np.uint8) if bit_depth == 8 else (65535, np.uint16)
    q = (np.clip(image, 0.0, 1.0) * peak + 0.5).astype(dtype)
    if ext in (".tif", ".tiff"):  # tifffile: OpenCV cannot embed a colour profile
        import tifffile

        out = io.BytesIO()
        photometric = "minisblack" if q.ndim == 2 else "rgb"
        tifffile.imwrite(
            out,
            q,
            photometric=photometric,
            compression="zlib",
            compressionargs={"level": 1},  # a 4K 16-bit frame: 1.1 s against 2.0 s at zlib's default 6, 1% larger
            predictor=True,
            iccprofile=srgb_icc() if q.ndim == 3 else None,  # an RGB profile on grey pixels breaks colour management
            metadata=None,
            software="isp-collab",
            bigtiff=(big := q.nbytes > 2**32 - 2**25),  # tifffile's own threshold, decided here for the EXIF IFD
            extratags=tiff_extratags(exif, big) + ([provenance.tiff_tag(record)] if record else []),
        )
        return add_exif_ifd(out.getvalue(), exif)
    params = []
    if ext in (".jpg", ".jpeg"):
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            int(jpeg_quality),
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            JPEG_CHROMA[jpeg_chroma],
        ]
    ok, buf = cv2.imencode(ext, q if q.ndim == 2 else cv2.cvtColor(q, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {bit_depth}-bit {ext} image")
    if ext == ".png":
        chunks = [(b"sRGB", b"\x00")] + ([(b"eXIf", exif)] if exif else [])
        return png_with_chunks(buf.tobytes(), chunks + ([provenance.png_chunk(record)] if record else []))
    icc = [(0xE2, ICC_HEADER + srgb_icc())] if q.ndim == 3 else []  # grey: no RGB profile (readers reject it)
    exif = fit_jpeg(exif, name)
    segments = ([(0xE1, b"Exif\x00\x00" + exif)] if exif else []) + icc
    return jpeg_with_segments(buf.tobytes(), segments + ([provenance.jpeg_comment(record)] if record else []))


@dataclass(frozen=True)
class Encode:
    """Final stage: ``__call__(image, frame, path) -> bytes`` for the output file ``path``.

    bit_depth: 8, 16 or None (see :func:`output_bit_depth`); jpeg_quality: 1..100; jpeg_chroma: ``"444"``
    (full-resolution colour, the default), ``"422"`` or ``"420"`` (smaller files, softer colour edges).
    """

    bit_depth: int | None = None
    jpeg_quality: int = 95
    jpeg_chroma: str = "444"

    def __post_init__(self) -> None:
        if self.bit_depth not in (None, 8, 16):
            raise ValueError(f"output.bit_depth must be 8 or 16, got {self.bit_depth!r}")
        q = self.jpeg_quality
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or not 1 <= q <= 100:
            raise ValueError(f"output.jpeg_quality must be an integer in 1..100, got {q!r}")
        if self.jpeg_chroma not in JPEG_CHROMA:
            raise ValueError(f"output.jpeg_chroma must be one of {', '.join(JPEG_CHROMA)}, got {self.jpeg_chroma!r}")

    def __call__(self, image: np.ndarray, frame: Frame, path: Path) -> bytes:
        """``image``: (H, W, 3) float sRGB-encoded in [0, 1] (clipped) -> file bytes, format from ``path``'s suffix."""
        bits = output_bit_depth(Path(path), frame, self.bit_depth)
        if frame.greyscale:  # back to the one channel it came with (Rec. 601 luma, as OpenCV converts)
            image = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.float32), cv2.COLOR_RGB2GRAY)
        return encode_image(
            image,
            Path(path).suffix,
            bits,
            self.jpeg_quality,
            exif=frame.exif,
            jpeg_chroma=self.jpeg_chroma,
            record=_record(frame.source),
            name=str(path),
        )


def _record(source: str | os.PathLike | None) -> str | None:
    """The provenance record of input ``source`` (None without one, or when it cannot be read now)."""
    if not source:
        return None
    try:
        return provenance.source_record(source)
    except OSError:
        return None
