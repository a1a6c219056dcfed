"""Which input an output image was made from: its file name, recorded in the output, read back by ``--skip-existing``.

An output's name depends on the other inputs of its batch (``IMG_0001.kdc`` alone gives ``IMG_0001.png``; beside an
``IMG_0001.JPG`` it may give ``IMG_0001_kdc.png``), so a re-run cannot tell from a name alone whether an existing
file is an input's own result. Each output therefore records the input's file name (the name only: folders are
private and move): PNG an ``iTXt`` chunk, JPEG a comment (COM) segment, TIFF the ``DocumentName`` tag, all UTF-8
under the key :data:`SOURCE_KEY`.
"""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_KEY = "isp-collab:source"
_JPEG_PREFIX = SOURCE_KEY.encode() + b"="
_DOCUMENT_NAME = 269  # TIFF DocumentName


def png_chunk(name: str) -> tuple[bytes, bytes]:
    """The PNG ``iTXt`` chunk (type, data) recording source file ``name`` (UTF-8, uncompressed)."""
    return b"iTXt", SOURCE_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00" + name.encode("utf-8")


def jpeg_comment(name: str) -> tuple[int, bytes]:
    """The JPEG comment segment (marker, payload) recording source file ``name``."""
    return 0xFE, _JPEG_PREFIX + name.encode("utf-8")


def tiff_tag(name: str) -> tuple[int, str, int, bytes, bool]:
    """The tifffile ``extratags`` entry recording source file ``name`` as ``DocumentName`` (UTF-8 bytes)."""
    return (_DOCUMENT_NAME, "s", 0, name.encode("utf-8"), True)


def recorded_source(path: str | os.PathLike) -> str | None:
    """The source file name an isp-collab output records, or None (no record, not an image, unreadable).

    Reads the file's header only (Pillow), never its pixels.
    """
    from PIL import Image

    try:
        with Image.open(Path(path)) as im:
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
                    try:  # Pillow reads TIFF text as Latin-1; the name was written as UTF-8
                        return value.encode("latin-1").decode("utf-8")
                    except UnicodeError:
                        return value
    except Exception:  # noqa: BLE001 - not an image, unreadable: no record
        return None
    return None
