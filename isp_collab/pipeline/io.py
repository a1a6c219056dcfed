"""Input validation: what kind of file an input is, and the one-line errors that name a bad one.

Every error here is a ``ValueError`` subclass whose message is one line that starts with the
file's path, so the CLI prints it as is and exits with code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

# Formats LibRaw decodes (the common ones; LibRaw is tried on any of these extensions).
RAW_EXTENSIONS = frozenset(
    [
        ".dng",
        ".nef",
        ".nrw",
        ".cr2",
        ".cr3",
        ".crw",
        ".arw",
        ".srf",
        ".sr2",
        ".raf",
        ".orf",
        ".rw2",
        ".rwl",
        ".pef",
        ".ptx",
        ".srw",
        ".kdc",
        ".dcr",
        ".dcs",
        ".k25",
        ".mrw",
        ".3fr",
        ".fff",
        ".iiq",
        ".mos",
        ".mef",
        ".erf",
        ".x3f",
        ".gpr",
        ".cap",
        ".raw",
    ]
)
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
DESCRIPTION_EXTENSIONS = (".json", ".toml")
# The largest current sensors (151 MP medium format) fit; one float32 HxWx3 copy is then ~1.8 GB.
DEFAULT_MAX_PIXELS = 160_000_000

InputKind = Literal["raw", "headerless", "rgb"]


# output file types and the bit depths each can hold (the encoder writes these; -o names end with them)
OUTPUT_EXTENSIONS = {".png": (8, 16), ".jpg": (8,), ".jpeg": (8,), ".tif": (8, 16), ".tiff": (8, 16)}


class InputError(ValueError):
    """An input that cannot be processed; str(error) is one line starting with the file's path."""


class PipelineWarning(UserWarning):
    """Something was guessed (white balance, colour matrix); the message starts with the file's path."""


def descriptions_beside(path: Path) -> list[Path]:
    """The sensor descriptions next to a headerless dump: ``x.raw`` -> ``x.json`` / ``x.toml``, in
    ``DESCRIPTION_EXTENSIONS`` order.

    The names as written are looked up first (two ``stat`` calls, so listing a folder of thousands of dumps
    stays linear; on a case-insensitive file system they find ``X.JSON`` too). Only when neither exists is
    the folder listed for the suffix in another case (``x.JSON``, ``x.Toml``), the stem matching exactly.
    """
    found = [path.with_suffix(ext) for ext in DESCRIPTION_EXTENSIONS if path.with_suffix(ext).is_file()]
    if found:
        return found
    try:
        others = [
            path.parent / entry.name
            for entry in os.scandir(path.parent)
            if Path(entry.name).stem == path.stem
            and Path(entry.name).suffix.lower() in DESCRIPTION_EXTENSIONS
            and entry.is_file()
        ]
    except OSError:  # a folder that cannot be listed
        return []
    return sorted(others, key=lambda f: DESCRIPTION_EXTENSIONS.index(f.suffix.lower()))


def description_for(path: Path) -> Path | None:
    """The sensor description next to a headerless dump (see :func:`descriptions_beside`), or None."""
    found = descriptions_beside(path)
    return found[0] if found else None


# How RAW formats LibRaw reads from a header begin, when their files are named .raw (Panasonic and
# Leica: "IIU\0"; TIFF-based ones). LibRaw identifies a file without a header it knows by its size
# alone and guesses the layout (pattern, bit depth, white level) from a camera table: a headerless
# dump must never get there.
RAW_HEADER_SIGNATURES = (b"IIU\0", b"II*\0", b"MM\0*")


def has_raw_header(path: Path) -> bool:
    """Whether ``path`` starts with one of :data:`RAW_HEADER_SIGNATURES` (False when it cannot be read)."""
    try:
        with path.open("rb") as f:
            return f.read(4) in RAW_HEADER_SIGNATURES
    except OSError:
        return False


def input_kind(path: Path) -> InputKind:
    """Which decoder reads ``path``, from its extension.

    A ``.raw`` file (any case) with a sidecar description is headerless; so is one without a description
    unless it starts with a RAW header LibRaw reads (:func:`has_raw_header`): the headerless decoder
    then refuses it for want of its description, instead of LibRaw guessing its layout from its size.
    """
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "rgb"
    if ext == ".raw" and (description_for(path) is not None or not has_raw_header(path)):
        return "headerless"
    if ext in RAW_EXTENSIONS:
        return "raw"
    raise InputError(
        f"{path}: unsupported file type {ext or '(no extension)'!r} "
        f"(RAW formats LibRaw reads, PNG/JPEG/TIFF, or .raw with a .json/.toml description)"
    )


def check_input_file(path: str | os.PathLike) -> Path:
    """An existing, non-empty, readable regular file, else :class:`InputError` (TypeError for no path)."""
    if not isinstance(path, (str, os.PathLike)):
        memory = "; an image in memory: Frame.for_image(image), then the stages (or Pipeline.restore, finish)"
        raise TypeError(
            f"Pipeline.run and the decoders take a file path, got {type(path).__name__}"
            + (memory if hasattr(path, "shape") else "")
        )
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected a file")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file (0 bytes)")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: not readable (permission denied)")
    return p


def check_pixels(path: Path, height: int, width: int, max_pixels: int | None) -> None:
    """Refuse images above the pixel cap before their pixel data is decoded."""
    if max_pixels is not None and height * width > max_pixels:
        cap = f"{max_pixels / 1e6:.1f} MP" if max_pixels >= 100_000 else f"{max_pixels:,} pixels"
        size = f"{height * width / 1e6:.1f} MP" if max_pixels >= 100_000 else f"{height * width:,} pixels"
        raise InputError(
            f"{path}: {width}x{height} = {size} exceeds the pixel cap of {cap} (raise it with max_pixels / --max-pixels)"
        )
