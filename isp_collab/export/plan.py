"""What an export builds: the formats, their precisions, and each variant's file name."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

FORMATS = ("onnx", "coreml")
PRECISIONS = {"onnx": ("fp32", "fp16", "int8"), "coreml": ("fp16", "fp32")}
DEFAULT_PRECISION = {"onnx": "fp32", "coreml": "fp16"}


def plan_variants(formats: Sequence[str], precisions: Sequence[str] | None) -> list[tuple[str, str]]:
    """(format, precision) pairs to build; ``precisions=None`` = each format's default.

    Either argument may also be a comma-separated string (``"onnx,coreml"``).
    """
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    if isinstance(precisions, str):
        precisions = [p.strip() for p in precisions.split(",") if p.strip()]
    formats = list(dict.fromkeys(formats))
    if not formats:
        raise ValueError("no export format given (choose from onnx, coreml)")
    for f in formats:
        if f not in FORMATS:
            raise ValueError(f"unknown export format {f!r}; choose from {', '.join(FORMATS)}")
    if precisions is not None:
        precisions = list(dict.fromkeys(precisions))
        known = sorted({p for ps in PRECISIONS.values() for p in ps})
        for p in precisions:
            if p not in known:
                raise ValueError(f"unknown precision {p!r}; choose from {', '.join(known)}")
        if not precisions:
            raise ValueError("no precision given (choose from fp32, fp16, int8)")
    plan = []
    for f in formats:
        wanted = [DEFAULT_PRECISION[f]] if precisions is None else precisions
        for p in wanted:
            if p in PRECISIONS[f]:
                plan.append((f, p))
            else:
                warnings.warn(f"{f} has no {p} variant; skipped (int8 is ONNX-only)", stacklevel=3)
    if not plan:
        raise ValueError(f"nothing to export: {'/'.join(formats)} has no {'/'.join(precisions or [])} variant")
    return plan


def artefact_name(stem: str, fmt: str, precision: str) -> str:
    """File name of one variant: ``<stem>[-fp16|-int8].onnx`` or ``<stem>-coreml-<precision>.mlpackage``."""
    if fmt == "onnx":
        return (stem if precision == "fp32" else f"{stem}-{precision}") + ".onnx"
    return f"{stem}-coreml-{precision}.mlpackage"
