"""Which input an output image was made from, recorded in the output and read back by ``--skip-existing``.

An output's name depends on the other inputs of its batch (``IMG_0001.kdc`` alone gives ``IMG_0001.png``; beside an
``IMG_0001.JPG`` it may give ``IMG_0001_kdc.png``), so a re-run cannot tell from a name alone whether an existing
file is an input's own result. Each output therefore records its input as ``FINGERPRINT NAME``: a short hash of
the input's size and first and last 64 KiB (cameras reuse names such as ``IMG_0001.JPG`` across cards), then its
file name (the name only: folders are private and move). PNG: an ``iTXt`` chunk, JPEG: a comment (COM) segment,
TIFF: the ``DocumentName`` tag, all UTF-8 under the key :data:`SOURCE_KEY`. Comparison images record nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .decode import pillow_header

SOURCE_KEY = "isp-collab:source"
_JPEG_PREFIX = SOURCE_KEY.encode() + b"="
_DOCUMENT_NAME = 269  # TIFF DocumentName
_CHUNK = 64 * 1024


def _text(name: str) -> str:
    """``name`` as UTF-8-safe text: a name that is not UTF-8 on disk (surrogates) gets backslash escapes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def source_record(path: str | os.PathLike) -> str:
    """The record of input file ``path``: a 16-hex-digit fingerprint (size, first and last 64 KiB), a space, its
    file name. Reads at most 128 KiB."""
    p = Path(path)
    h = hashlib.sha256()
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        h.update(f.read(_CHUNK))
        if size > _CHUNK:
            f.seek(max(_CHUNK, size - _CHUNK))
            h.update(f.read(_CHUNK))
    return f"{h.hexdigest()[:16]} {_text(p.name)}"


def png_chunk(record: str) -> tuple[bytes, bytes]:
    """The PNG ``iTXt`` chunk (type, data) holding ``record`` (UTF-8, uncompressed)."""
    return b"iTXt", SOURCE_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00" + _text(record).encode("utf-8")


def jpeg_comment(record: str) -> tuple[int, bytes]:
    """The JPEG comment segment (marker, payload) holding ``record``."""
    return 0xFE, _JPEG_PREFIX + _text(record).encode("utf-8")


def tiff_tag(record: str) -> tuple[int, str, int, bytes, bool]:
    """The tifffile ``extratags`` entry holding ``record`` as ``DocumentName`` (UTF-8 bytes)."""
    return (_DOCUMENT_NAME, "s", 0, _text(record).encode("utf-8"), True)


def recorded_source(path: str | os.PathLike) -> str | None:
    """The record an isp-collab output holds (:func:`source_record`), or None (no record, not an image,
    unreadable). Reads the file's header only, never its pixels."""
    try:
        with pillow_header(Path(path)) as im:
            if im.format == "PNG":
                value = im.info.get(SOURCE_KEY)
                return value if isinstance(value, str) and value else None
            if im.format == "JPEG":
                comment = im.info.get("comment", b"")
                if isinstance(comment, bytes) and comment.startswith(_JPEG_PREFIX):
                    return comment[len(_JPEG_PREFIX) :].decode("utf-8") or None
                return None
            if im.format == "TIFF":
                value = im.tag_v2.get(_DOCUMENT_NAME)
                if isinstance(value, str) and value:
                    try:  # Pillow reads TIFF text as Latin-1; the record was written as UTF-8
                        return value.encode("latin-1").decode("utf-8")
                    except UnicodeError:
                        return value
    except Exception:  # noqa: BLE001 - not an image, unreadable: no record
        return None
    return None
