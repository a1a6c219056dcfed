"""Metadata spliced into encoded PNG and JPEG files (OpenCV writes the pixels, not these blocks): PNG chunks after
IHDR, JPEG APPn / COM segments after SOI and the JFIF APP0, and the sRGB ICC profile they carry."""

from __future__ import annotations

import struct
import zlib

ICC_HEADER = b"ICC_PROFILE\x00\x01\x01"  # one chunk of one (the profile fits a single APP2 segment)


def srgb_icc() -> bytes:
    """LittleCMS's sRGB ICC profile (about 600 bytes)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def png_with_chunks(png: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """``png`` with ``(type, data)`` chunks inserted right after IHDR (8-byte signature + 25-byte IHDR)."""
    extra = b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)) for kind, data in chunks
    )
    return png[:33] + extra + png[33:]


def jpeg_with_segments(jpeg: bytes, segments: list[tuple[int, bytes]]) -> bytes:
    """``jpeg`` with ``(marker, payload)`` APPn / COM segments inserted after SOI and OpenCV's JFIF APP0."""
    at = 2
    if jpeg[2:4] == b"\xff\xe0":
        at = 4 + struct.unpack(">H", jpeg[4:6])[0]
    extra = b"".join(bytes([0xFF, m]) + struct.pack(">H", len(p) + 2) + p for m, p in segments if len(p) + 2 < 65536)
    return jpeg[:at] + extra + jpeg[at:]
