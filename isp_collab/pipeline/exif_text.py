"""EXIF text tags written with their own bytes: Pillow reads an ASCII tag's bytes as Latin-1 and writes a str as
7-bit ASCII (every other character "?"), and bytes as BYTE where its tables know no type."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


class TextBytes(str):
    """A text tag's own bytes for Pillow's EXIF writer, held as the Latin-1 str Pillow reads them as.

    Pillow writes a str tag as ``value.encode("ascii", "replace")`` (every non-ASCII character "?"), and a bytes one
    as BYTE where its tables know no type (the EXIF sub-IFD: ExifTool then shows LensModel as a list of numbers).
    This str keeps the tag ASCII and encodes to its bytes: UTF-8 text ("Jörg"), as ExifTool and most readers take an
    ASCII tag's bytes (EXIF 3.0 made UTF-8 a type of its own), or whatever the input file had.
    """

    @classmethod
    def of(cls, data: bytes) -> TextBytes:
        """The tag value that writes ``data`` as it is."""
        return cls(data.decode("latin-1"))

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:  # noqa: ARG002 - always the bytes
        """The tag's own bytes, whatever ``encoding`` is asked for."""
        return str.encode(self, "latin-1")


def keep_text_bytes(exif: Image.Exif) -> None:
    """Put back, in place, the bytes of every non-ASCII text tag of a Pillow ``Image.Exif`` (its main IFD and the
    EXIF and GPS sub-IFDs it has): Pillow reads a tag's bytes as Latin-1 and writes a str as 7-bit ASCII, so a UTF-8
    "Jörg" came out as "J??rg"; :class:`TextBytes` writes the file's own bytes, still as ASCII type.
    (A sub-IFD is read only where its pointer is: ``get_ifd`` adds an empty one, and an empty GPS IFD reads as
    a geotag.)"""
    for ifd in (exif, *(exif.get_ifd(tag) for tag in (0x8769, 0x8825) if tag in exif)):
        for tag, value in list(ifd.items()):
            if isinstance(value, str) and not value.isascii():
                ifd[tag] = TextBytes.of(value.encode("latin-1", "replace"))
