"""A batch of inputs planned: folders expanded, each input paired with its output, finished inputs skipped.

What ``isp-collab process`` does before any file is read: the same file named twice is processed once, no two
outputs share a path, and ``--skip-existing`` knows an input's output by the record it holds (:mod:`.provenance`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import OutputError
from .io import OUTPUT_EXTENSIONS, InputError, input_kind
from .provenance import recorded_source, source_record


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
        if folders:  # the input is what needs it (a folder named x.png too): named first, the output after
            raise OutputError(
                f"{Path(folders[0])}: a folder input needs an output folder, not an image file name ({out})"
            )
        raise OutputError(f"{out}: {len(inputs)} inputs need an output folder, not an image file name")
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
