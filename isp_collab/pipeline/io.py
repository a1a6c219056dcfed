"""Input validation and atomic output: a bad file gives one line naming it; outputs never half-exist.

Every error here is a ``ValueError`` subclass whose message is one line that starts with the
file's path, so the CLI prints it as is and exits with code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from ..atomic import OutputError

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
    """An existing, non-empty, readable regular file, else :class:`InputError`."""
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
            f"{path}: {width}x{height} = {size} exceeds the pixel cap of {cap} (raise it with --max-pixels)"
        )


def expand_inputs(
    inputs: list[str | os.PathLike],
    problems: list[InputError] | None = None,
    repeats: list[tuple[Path, Path]] | None = None,
    subfolders: list[Path] | None = None,
) -> list[Path]:
    """Files to process: each file as given, each folder's supported files (not recursive, sorted),
    each file once (by its resolved path) in first-seen order.

    Missing or unsupported files named explicitly are kept, so that processing reports them by
    name; in folders, sidecar descriptions and other files are skipped. A folder with nothing to
    process raises InputError, or, when a ``problems`` list is given, is appended to it (a batch
    reports it and goes on with the other inputs). A file named again (or through a link) is kept once;
    ``repeats``, when given, receives (the dropped name, the name kept) for each; ``subfolders``, when given,
    the folders found inside input folders (not hidden), which are not read.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if not p.is_dir():
            files.append(p)
            continue
        found = []
        for child in sorted(p.iterdir()):
            if child.name.startswith("."):
                continue
            if not child.is_file():
                if subfolders is not None and child.is_dir():
                    subfolders.append(child)
                continue
            try:
                input_kind(child)
            except InputError:
                continue
            found.append(child)
        if not found:
            err = InputError(f"{p}: folder holds no file to process (RAW, PNG/JPEG/TIFF or described .raw)")
            if problems is None:
                raise err
            problems.append(err)
        files.extend(found)
    unique: dict[Path, Path] = {}  # the same file named twice (or a folder and a file in it): once
    for f in files:
        kept = unique.setdefault(f.resolve() if f.exists() else f, f)
        if kept is not f and repeats is not None:
            repeats.append((f, kept))
    return list(unique.values())


def plan_outputs(
    inputs: list[Path],
    output: str | os.PathLike,
    ext: str = ".png",
    folders: list[str | os.PathLike] | tuple = (),
) -> list[tuple[Path, Path]]:
    """Pair each input with its output path.

    ``output`` names one file when there is one input, no input folder (``folders``: the folders
    among the inputs as given), and ``output`` has a suffix (``x.png``) and is not an existing folder
    or written with a trailing separator. Otherwise it is a folder (created when written), each input ``x.dng`` goes to
    ``output/x{ext}``, inputs sharing a stem get their extension added (``x_dng.png``), then ``_2``, ``_3``...
    (case-insensitively: no two outputs share a path). The mode follows from the
    arguments, not from how many files a folder holds; an output folder that is also an input folder
    is refused (a re-run would read the results back as inputs).
    """
    out = Path(output)
    as_named = bool(out.suffix) and not out.is_dir() and not str(output).endswith(("/", os.sep))
    if as_named and len(inputs) == 1 and not folders:
        return [(inputs[0], out)]  # its type is checked by the writer (.bmp: refused by name)
    if as_named and out.suffix.lower() in OUTPUT_EXTENSIONS:
        why = "a folder input needs" if folders else f"{len(inputs)} inputs need"
        raise OutputError(f"{out}: {why} an output folder, not an image file name")
    if out.exists() and not out.is_dir():
        if len(inputs) == 1 and not folders:  # a name without a suffix is a folder
            raise OutputError(
                f"{out}: exists and is not a folder (an output named without an image suffix is a folder; "
                f"name the file with its type, e.g. {out.name}.png)"
            )
        raise OutputError(f"{out}: exists and is not a folder (several inputs need an output folder)")
    for folder in folders:
        if os.path.abspath(folder) == os.path.abspath(out) or (out.exists() and os.path.samefile(folder, out)):
            raise OutputError(
                f"{out}: the output folder is also an input folder (a re-run would process the results "
                "again); choose another output folder"
            )
    pairs, used = [], set()
    for src in inputs:
        name = f"{src.stem}{ext}"
        if name.casefold() in used:
            name = f"{src.stem}_{src.suffix.lstrip('.').lower()}{ext}"
        stem, k = Path(name).stem, 2
        while name.casefold() in used:  # a third x.dng (from another folder): x_dng_2.png
            name, k = f"{stem}_{k}{ext}", k + 1
        used.add(name.casefold())
        pairs.append((src, out / name))
    return pairs


def skip_done(
    pairs: list[tuple[Path, Path]], folder: str | os.PathLike
) -> tuple[list[tuple[Path, Path]], int, set[Path]]:
    """``--skip-existing``: which (input, output) pairs still need processing into the output ``folder``.

    An input is done when a file of its output type in ``folder`` records it (:mod:`.provenance`: its
    fingerprint and name), at its planned path or, since names depend on the rest of the batch, at another
    (a re-run that adds ``IMG_0001.JPG`` beside ``IMG_0001.kdc`` must not take the KDC's ``IMG_0001.png`` for the
    JPEG's). Files without a record (comparison images, other programs' files, outputs of versions before
    records) never count as done. Returns (pairs to process, how many were skipped, the folder's existing
    files of that type, which the pairs still to process must not be written over).
    """
    from .provenance import recorded_source, source_record

    out = Path(folder)
    suffixes = {dst.suffix.lower() for _, dst in pairs}
    existing = (
        {p: recorded_source(p) for p in sorted(out.iterdir()) if p.suffix.lower() in suffixes and p.is_file()}
        if out.is_dir()
        else {}
    )
    by_record: dict[tuple[str, str], list[Path]] = {}
    for p, record in existing.items():
        if record:
            by_record.setdefault((record, p.suffix), []).append(p)
    records = {}
    for src, dst in pairs:
        try:
            records[src] = (source_record(src), dst.suffix)
        except OSError:  # missing or unreadable: processing reports it
            records[src] = None
    done: set[Path] = set()
    for src, dst in pairs:  # first every output at its planned path, then the others wherever they are
        if records[src] is not None and dst in by_record.get(records[src], []):
            by_record[records[src]].remove(dst)
            done.add(src)
    for src, _ in pairs:
        if src not in done and records[src] is not None and by_record.get(records[src]):
            by_record[records[src]].pop(0)
            done.add(src)
    kept = [(src, dst) for src, dst in pairs if src not in done]
    return kept, len(pairs) - len(kept), set(existing)
