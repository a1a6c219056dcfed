"""Where a benchmark run's classical-sharpener parameters come from: the tuned file of its output folder, the
committed one, or the package defaults; a full run refuses parameters tuned by a quick one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .options import BenchOptions


def rel_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it is under it (how sections name files), else as given."""
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def classical_params_path(opts: BenchOptions) -> Path | None:
    """The tuned parameters a run uses: ``out/classical_params[-<images>].json`` if there, else the committed one."""
    from . import classical

    return next((p for p in (opts.file("classical_params", ".json"), classical.PARAMS_FILE) if p.is_file()), None)


def check_params_not_quick(opts: BenchOptions) -> None:
    """Refuse (ValueError, one line) a full run whose tuned parameters come from ``bench tune --quick``.

    A quick tune searches tiny grids on 2 images and 64-px crops: fine for a quick run, not for
    figures to report. The CLI calls this before anything is computed.
    """
    path = classical_params_path(opts)
    if opts.quick or path is None:
        return
    from .classical import read_params_json

    record = read_params_json(path)
    if isinstance(record, dict) and record.get("quick"):
        raise ValueError(
            f"{path}: tuned by a quick run (`bench tune --quick`: small grids, 2 images, 64-px crops), not used by "
            "a full benchmark; rerun `isp-collab bench tune` without --quick into that folder, or remove the file"
        )


def classical_params(opts: BenchOptions) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None, Path]:
    """Tuned parameters of :func:`classical_params_path`, else the package defaults; quick ones only for quick runs."""
    from . import classical

    check_params_not_quick(opts)
    path = classical_params_path(opts)
    if path is not None:
        return classical.load_params(path), classical.read_params_json(path), path
    return classical.load_params(), None, classical.PARAMS_FILE  # package defaults
