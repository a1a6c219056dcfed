"""Headerless sensor dumps: ``frame.raw`` (bare samples) + ``frame.json`` or ``frame.toml`` describing them.

This is what ISP engineers have on the bench: a sensor's output written straight to disk. The
description has the keys::

    width, height        pixels (int)
    dtype                "uint8" or "uint16"
    byte_order           "little" or "big" (required for uint16)
    bit_depth            significant bits, 1..8*itemsize, LSB-aligned
    cfa_pattern          "RGGB" | "BGGR" | "GRBG" | "GBRG"
    black_level          number, or 4 numbers for the 2x2 sites in row-major order
    white_level          number
    wb_gains_rgb         optional [r, g, b] multipliers, at most 100 and within 100x of each other
    ccm_cam_to_srgb      optional 3x3 row-major, white-balanced camera RGB -> linear sRGB, entries within +-100
    orientation          optional EXIF orientation 1..8 of the finished image (3: turned 180°, a sensor
                         mounted upside down; 6 / 8: 90° clockwise / counter-clockwise); default 1
    note                 optional free text

Unknown keys are refused (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import json
import math
import os
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .demosaic import check_mosaic_shape
from .frame import CFA_PATTERNS, CFAPattern, Frame
from .io import (
    DEFAULT_MAX_PIXELS,
    InputError,
    PipelineWarning,
    check_input_file,
    check_pixels,
    descriptions_beside,
)
from .stages import MAX_GAIN_RATIO

_KEYS = {
    "width", "height", "dtype", "byte_order", "bit_depth", "cfa_pattern", "black_level", "white_level",
    "wb_gains_rgb", "ccm_cam_to_srgb", "orientation", "note",
}  # fmt: skip
_REQUIRED = ("width", "height", "dtype", "bit_depth", "cfa_pattern", "black_level", "white_level")
# The largest colour-matrix entry taken: real camera->sRGB matrices stay within a few units (dcraw's and Adobe's
# tables: under 5); a matrix in fixed-point register units (1024 for 1.0) would turn the picture white.
MAX_CCM_ENTRY = 100.0
# Below this fraction of the bit depth's range between black and white level (4 of its bits unused), a warning: a
# sensor's levels span most of it (10-bit 64..1023: 94%; 12-bit 256..4095: 94%); 1022..1023 gives a black picture,
# and a 12-bit sensor described as 16-bit (0..4095: 6%) is told to check its bit_depth.
MIN_LEVELS_FRACTION = 1 / 16


@dataclass(frozen=True)
class SensorDescription:
    """What a headerless dump does not say about itself (see the module docstring for the keys)."""

    width: int
    height: int
    dtype: Literal["uint8", "uint16"]
    byte_order: Literal["little", "big"]
    bit_depth: int
    cfa_pattern: CFAPattern
    black_level: tuple[float, float, float, float]
    white_level: float
    wb_gains_rgb: tuple[float, float, float] | None = None
    ccm_cam_to_srgb: tuple[tuple[float, float, float], ...] | None = None
    orientation: int = 1

    @property
    def nbytes(self) -> int:
        """The size of the dump in bytes: width x height samples of ``dtype``'s size."""
        return self.width * self.height * np.dtype(self.dtype).itemsize


def _number(d: dict, key: str, where: Path, *, positive: bool = False) -> float:
    v = d[key]
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**1023:  # 10**400: past any float
        raise InputError(f"{where}: {key!r} is out of range, got an integer of {len(str(abs(v)))} digits")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
        raise InputError(f"{where}: {key!r} must be a {'positive ' if positive else ''}number, got {v!r}")
    return float(v)


def _numbers(d: dict, key: str, where: Path, n: int, *, positive: bool = False) -> tuple[float, ...]:
    v = d[key]
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise InputError(f"{where}: {key!r} must be a list of {n} numbers, got {v!r}")
    return tuple(_number({key: x}, key, where, positive=positive) for x in v)


def parse_description(d: dict[str, Any], where: Path) -> SensorDescription:
    """Validate a parsed description; every problem is one :class:`InputError` line naming ``where``."""
    if not isinstance(d, dict):
        raise InputError(f"{where}: expected a table of keys, got {type(d).__name__}")
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise InputError(f"{where}: missing key {missing[0]!r}")
    width, height = (int(_number(d, k, where, positive=True)) for k in ("width", "height"))
    if width != d["width"] or height != d["height"] or width < 2 or height < 2:
        raise InputError(f"{where}: width and height must be integers >= 2, got {d['width']!r} x {d['height']!r}")
    dtype = d["dtype"]
    if dtype not in ("uint8", "uint16"):
        raise InputError(f"{where}: 'dtype' must be 'uint8' or 'uint16', got {dtype!r}")
    byte_order = d.get("byte_order", "little" if dtype == "uint8" else None)
    if byte_order is None:
        raise InputError(f"{where}: 'byte_order' ('little' or 'big') is required for uint16 data")
    if byte_order not in ("little", "big"):
        raise InputError(f"{where}: 'byte_order' must be 'little' or 'big', got {byte_order!r}")
    bits = d["bit_depth"]
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8 * np.dtype(dtype).itemsize:
        raise InputError(f"{where}: 'bit_depth' must be an integer in 1..{8 * np.dtype(dtype).itemsize}, got {bits!r}")
    if d["cfa_pattern"] not in CFA_PATTERNS:
        raise InputError(f"{where}: 'cfa_pattern' must be one of {', '.join(CFA_PATTERNS)}, got {d['cfa_pattern']!r}")
    bl = d["black_level"]
    black = _numbers(d, "black_level", where, 4) if isinstance(bl, list) else (_number(d, "black_level", where),) * 4
    white = _number(d, "white_level", where, positive=True)
    if min(black) < 0 or white <= max(black):
        raise InputError(f"{where}: need 0 <= black_level < white_level, got {bl!r} and {white:g}")
    if white > 2**bits - 1:
        raise InputError(f"{where}: white_level {white:g} exceeds the {bits}-bit maximum {2**bits - 1}")
    gains = _numbers(d, "wb_gains_rgb", where, 3, positive=True) if "wb_gains_rgb" in d else None
    if gains and (max(gains) > MAX_GAIN_RATIO or max(gains) > MAX_GAIN_RATIO * min(gains)):  # 1e308: overflowed
        raise InputError(
            f"{where}: 'wb_gains_rgb' must be at most {MAX_GAIN_RATIO:g} and within {MAX_GAIN_RATIO:g}x of each other, "
            f"got {list(gains)}"
        )
    ccm = None
    if "ccm_cam_to_srgb" in d:
        rows = d["ccm_cam_to_srgb"]
        if not isinstance(rows, list) or len(rows) != 3:
            raise InputError(f"{where}: 'ccm_cam_to_srgb' must be 3 rows of 3 numbers")
        ccm = tuple(_numbers({"ccm_cam_to_srgb": r}, "ccm_cam_to_srgb", where, 3) for r in rows)
        if (big := max(abs(v) for row in ccm for v in row)) > MAX_CCM_ENTRY:
            raise InputError(
                f"{where}: 'ccm_cam_to_srgb' entries must lie between -{MAX_CCM_ENTRY:g} and {MAX_CCM_ENTRY:g}, got "
                f"{big:g} (a matrix in fixed-point units? divide it by the value that stands for 1.0)"
            )
    orientation = d.get("orientation", 1)
    if isinstance(orientation, bool) or orientation not in range(1, 9):
        raise InputError(f"{where}: 'orientation' must be an EXIF orientation 1..8, got {orientation!r}")
    return SensorDescription(
        width,
        height,
        dtype,
        byte_order,
        bits,
        d["cfa_pattern"],
        black,
        white,
        gains,
        ccm,  # type: ignore[arg-type]
        orientation,
    )


def read_description(path: str | os.PathLike) -> SensorDescription:
    """Read and validate a ``.json`` or ``.toml`` sensor description."""
    p = check_input_file(path)
    try:
        text = p.read_text(encoding="utf-8")
        d = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, RecursionError) as e:  # JSON/TOML/UTF-8 errors, an integer of 5000 digits, "[[[[..."
        reason = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        reason = "nested too deeply" if isinstance(e, RecursionError) else reason
        raise InputError(f"{p}: not a valid {p.suffix.lstrip('.').upper()} sensor description ({reason})") from None
    return parse_description(d, p)


def _matrix_problem(ccm: tuple[tuple[float, float, float], ...]) -> str | None:
    """What makes a colour matrix unusable, worded for a warning: singular (every colour onto a plane or a line: a
    black or flat picture), or a row that sums to 0 or less (white comes out black in that channel); None if neither.
    """
    m = np.asarray(ccm, dtype=np.float64)
    if abs(np.linalg.det(m)) < 1e-6:  # the RAW decoder's threshold (raw.py)
        return f"is singular (rows {np.round(m, 3).tolist()})"
    if np.any(m.sum(axis=1) <= 0):
        return f"turns white black (row sums {np.round(m.sum(axis=1), 3).tolist()})"
    return None


@dataclass(frozen=True)
class HeaderlessDecode:
    """Decode ``x.raw`` with its description (``description``, else ``x.json`` / ``x.toml`` beside it, the
    suffix in any case).

    ``__call__(path) -> (mosaic, frame)``: mosaic (height, width) uint16 sample values exactly as
    stored (byte order resolved); frame from the description (WB and CCM when given; without a CCM, or for a
    singular one or one that turns white black, a :class:`PipelineWarning` says camera RGB is used as sRGB, as for
    a RAW file without one; black and white levels spanning under 1/16 of the bit depth's range are warned about).
    """

    max_pixels: int | None = DEFAULT_MAX_PIXELS
    description: Path | None = None

    def __call__(self, path: str | os.PathLike) -> tuple[np.ndarray, Frame]:
        """Decode ``path`` (see the class); :class:`~.io.InputError` naming the file for a bad dump or description."""
        p = check_input_file(path)
        desc_path = self.description
        if desc_path is None:
            found = descriptions_beside(p)
            if len(found) > 1:  # which one describes the dump is a guess: refuse it
                raise InputError(
                    f"{p}: two sensor descriptions beside it ({', '.join(f.name for f in found)}); keep one"
                )
            if not found:
                raise InputError(
                    f"{p}: no sensor description found "
                    f"(a headerless dump needs {p.with_suffix('.json').name} or .toml beside it)"
                )
            desc_path = found[0]
        try:
            desc = read_description(desc_path)
        except InputError as e:  # name the dump being processed, then the faulty description
            raise InputError(f"{p}: {e}") from None
        check_pixels(p, desc.height, desc.width, self.max_pixels)
        size = p.stat().st_size
        shown = desc_path.name if desc_path.parent == p.parent else str(desc_path)  # a description from elsewhere
        if size != desc.nbytes:
            raise InputError(
                f"{p}: file has {size} bytes but {shown} describes {desc.width}x{desc.height} "
                f"{desc.dtype} = {desc.nbytes} bytes"
            )
        dt = np.dtype(desc.dtype).newbyteorder("<" if desc.byte_order == "little" else ">")
        data = np.fromfile(p, dtype=dt).reshape(desc.height, desc.width).astype(np.uint16)
        top = int(data.max())
        if top > 2**desc.bit_depth - 1:
            raise InputError(
                f"{p}: sample value {top} exceeds the {desc.bit_depth}-bit maximum {2**desc.bit_depth - 1} "
                f"(wrong bit_depth, byte_order or dtype in {shown}?)"
            )
        try:
            check_mosaic_shape(data)  # a dump too small to process fails here, before any warning about it
        except ValueError as e:
            raise InputError(f"{p}: {e}") from None
        ccm = desc.ccm_cam_to_srgb
        if ccm is not None and (problem := _matrix_problem(ccm)):  # as the RAW decoder does with a singular one
            warnings.warn(
                f"{p}: the colour matrix (ccm_cam_to_srgb) in {shown} {problem}; camera RGB is used as sRGB (identity)",
                PipelineWarning,
                stacklevel=2,
            )
            ccm = None
        elif ccm is None:
            warnings.warn(
                f"{p}: no colour matrix (ccm_cam_to_srgb) in {shown}; camera RGB is used as sRGB (identity)",
                PipelineWarning,
                stacklevel=2,
            )
        usable, full = desc.white_level - max(desc.black_level), 2**desc.bit_depth - 1
        if usable < MIN_LEVELS_FRACTION * full:
            warnings.warn(
                f"{p}: white_level {desc.white_level:g} - black_level {max(desc.black_level):g} in {shown} leaves "
                f"{usable:g} of the {desc.bit_depth}-bit range {full}: samples outside it come out black or white "
                "(check black_level, white_level and bit_depth)",
                PipelineWarning,
                stacklevel=2,
            )
        frame = Frame(
            source=p,
            kind="raw",
            height=desc.height,
            width=desc.width,
            bit_depth=desc.bit_depth,
            cfa_pattern=desc.cfa_pattern,
            black_level=desc.black_level,
            white_level=desc.white_level,
            wb_gains=desc.wb_gains_rgb,
            wb_source="description" if desc.wb_gains_rgb else "none",
            cam_to_srgb=ccm,
            description=desc_path,
            orientation=desc.orientation,
        )
        return data, frame
