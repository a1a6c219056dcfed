"""Frame metadata: what the pipeline knows about one input besides its pixels.

A :class:`Frame` travels with the image through every stage. RAW decoders fill the sensor part
(CFA pattern, black/white levels, white-balance gains, camera->sRGB matrix); ordinary sRGB images
have ``kind="rgb"`` and leave it empty, which turns the colour stages into the identity.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

CFAPattern = Literal["RGGB", "BGGR", "GRBG", "GBRG"]
CFA_PATTERNS: tuple[str, ...] = get_args(CFAPattern)

# LibRaw colour indices (``color_desc`` is b"RGBG": 0=R, 1=G, 2=B, 3=second G) -> letter.
_LIBRAW_COLOUR = {0: "R", 1: "G", 2: "B", 3: "G"}


@dataclass(frozen=True)
class Frame:
    """Metadata of one input frame.

    Attributes:
        source: the input file.
        kind: ``"raw"`` (a Bayer mosaic from a RAW file or a headerless dump) or ``"rgb"`` (an
            ordinary sRGB-encoded PNG/JPEG/TIFF, its pixels made linear by ``Linearize`` before the stages).
        height, width: size of the mosaic / image in pixels, before ``orientation`` is applied.
        bit_depth: significant bits per sample of the input (8, 10, 12, 14 or 16).
        cfa_pattern: Bayer pattern of the top-left 2x2 block of the mosaic, e.g. ``"RGGB"``; None for an
            ordinary image or a RAW already demosaicked (a LinearRaw DNG).
        black_level: black level of each 2x2 CFA site in row-major order (top-left, top-right,
            bottom-left, bottom-right), in raw digital numbers; for a demosaicked RAW (a LinearRaw DNG,
            ``cfa_pattern`` None) the level of each channel, R, G, B (and G again).
        white_level: saturation level in raw digital numbers.
        wb_gains: (R, G, B) multipliers for camera RGB (G normally 1), or None when unknown.
        wb_source: where ``wb_gains`` came from: ``"as_shot"``, ``"description"``, ``"gray_world"``,
            ``"user"`` or ``"none"``.
        cam_to_srgb: 3x3 row-major matrix, white-balanced camera RGB -> linear sRGB; None = identity.
        orientation: EXIF orientation (1..8) still to be applied to the finished image.
        optical_center: (x, y) in pixels of the unrotated image, or None for the image centre.
        greyscale: an ordinary image stored with one grey channel (``kind="rgb"`` only); it runs
            through the pipeline as three equal channels and is written back as grey.
        exif: the input's EXIF block (TIFF-structured bytes, orientation reset to 1) to carry to
            the output, or None (RAW inputs, images without EXIF).
        description: the sensor description a headerless dump was read with (its ``.json`` /
            ``.toml``), or None; messages about missing metadata name it instead of "the file".
        turned: the EXIF orientation (1..8) an ordinary image was already turned upright by when it was
            decoded (its pixels are no longer in the sensor's order; 1 for RAW inputs).
    """

    source: Path
    kind: Literal["raw", "rgb"]
    height: int
    width: int
    bit_depth: int
    cfa_pattern: CFAPattern | None = None
    black_level: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    white_level: float = 1.0
    wb_gains: tuple[float, float, float] | None = None
    wb_source: str = "none"
    cam_to_srgb: tuple[tuple[float, float, float], ...] | None = None
    orientation: int = 1
    optical_center: tuple[float, float] | None = None
    greyscale: bool = False
    exif: bytes | None = None
    description: Path | None = None
    turned: int = 1

    @classmethod
    def for_image(cls, image: np.ndarray, *, kind: Literal["raw", "rgb"] = "raw", **fields: Any) -> Frame:
        """A frame for an (H, W, 3) image already in memory, to run stages on it from Python (its shape is read).

        The stages after :class:`~.stages.Linearize` (``LensCorrect``, ``Sharpen``, ``UnsharpMask``, white balance,
        colour, ``Tone``) take float32 linear RGB, nominally [0, 1]: undo an sRGB encoding first
        (``srgb_to_linear``, or ``Linearize`` with a ``kind="rgb"`` frame). ``kind="raw"`` (default): the image is
        linear camera RGB, as the pipeline has it after demosaicking (pass ``wb_gains``, ``optical_center`` or
        ``cam_to_srgb`` when you know them); ``"rgb"``: it comes from an ordinary sRGB-encoded picture (the frame
        :class:`~.decode.ImageDecode` makes): ``Linearize`` turns its pixels into linear sRGB (the pipeline does so
        before the stages), white balance leaves them as they are and ``Encode`` keeps the frame's ``bit_depth``.
        ``source`` defaults to ``<array>`` and ``bit_depth`` to 16; other fields as :class:`Frame`.
        Raises ValueError, naming the field, for a ``kind``, ``wb_gains``, ``optical_center`` or ``cam_to_srgb`` of
        another value, length or shape (arrays are taken, as tuples of floats).

        >>> Frame.for_image(np.zeros((96, 128, 3), np.float32)).width
        128
        """
        shape = getattr(image, "shape", ())
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {tuple(shape)}")
        gains = fields.get("wb_gains")
        if gains is not None:  # a zero gain made NaN of the sharpened frame (the luma step divides by them)
            values = list(gains) if hasattr(gains, "__len__") and not isinstance(gains, (str, bytes)) else []
            usable = len(values) == 3 and all(
                isinstance(g, (int, float, np.number)) and not isinstance(g, (bool, np.bool_)) and math.isfinite(g)
                for g in values
            )
            if not usable or min(values) <= 0:
                raise ValueError(f"wb_gains must be 3 finite positive numbers (R, G, B), got {gains!r}")
            fields["wb_gains"] = tuple(float(g) for g in values)
        if kind not in ("raw", "rgb"):  # anything else ran as an sRGB picture, the colour stages skipped
            raise ValueError(f"kind must be 'raw' or 'rgb', got {kind!r}")
        # checked here, not where a stage fails on them (the lens stage's centre, OpenCV's colour transform)
        for key, size, what in (
            ("optical_center", (2,), "2 finite numbers (x, y) in pixels"),
            ("cam_to_srgb", (3, 3), "3 rows of 3 finite numbers"),
        ):
            if fields.get(key) is not None:
                fields[key] = _float_tuple(fields[key], key, size, what)
        fields.setdefault("source", Path("<array>"))
        fields.setdefault("bit_depth", 16)
        return cls(kind=kind, height=int(shape[0]), width=int(shape[1]), **fields)

    def replace(self, **changes: Any) -> Frame:
        """A copy with some fields changed (frames are immutable)."""
        return dataclasses.replace(self, **changes)

    @property
    def ccm(self) -> np.ndarray:
        """The camera->sRGB matrix as a (3, 3) float32 array (identity when unknown)."""
        if self.cam_to_srgb is None:
            return np.eye(3, dtype=np.float32)
        return np.asarray(self.cam_to_srgb, dtype=np.float32)

    @property
    def center(self) -> tuple[float, float]:
        """Optical centre (x, y) in pixels; the image centre unless the frame sets one."""
        if self.optical_center is not None:
            return self.optical_center
        return ((self.width - 1) / 2.0, (self.height - 1) / 2.0)


def _float_tuple(value: object, name: str, shape: tuple[int, ...], what: str) -> tuple:
    """``value`` (numbers, nested lists, an array) of ``shape`` as (nested) tuples of floats; ValueError naming
    ``name`` otherwise (strings, booleans, NaN, another shape)."""
    a = np.asarray(value, dtype=object)  # ragged rows: another shape
    if a.shape != shape or not all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(v) for v in a.flat
    ):
        shown = value.tolist() if isinstance(value, np.ndarray) else value  # an array's repr spans lines
        raise ValueError(f"{name} must be {what}, got {shown!r}")
    rows = a.astype(float).tolist()
    return tuple(tuple(r) if isinstance(r, list) else r for r in rows)


def cfa_from_colors(colors: np.ndarray) -> CFAPattern:
    """CFA pattern of the top-left 2x2 block of a LibRaw colour-index map (``raw_colors_visible``).

    colors: (H, W) integer array with LibRaw indices 0=R, 1=G, 2=B, 3=G2. Raises ValueError for
    anything that is not one of the four Bayer patterns (X-Trans, Foveon, 4-colour CYGM sensors).
    """
    if colors.ndim != 2 or colors.shape[0] < 2 or colors.shape[1] < 2:
        raise ValueError(f"expected a (H, W) colour map of at least 2x2, got shape {colors.shape}")
    block = colors[:2, :2]
    pattern = "".join(_LIBRAW_COLOUR.get(int(c), "?") for c in block.ravel())
    if pattern not in CFA_PATTERNS:
        raise ValueError(f"not a Bayer sensor (2x2 colour block {block.tolist()})")
    # A Bayer mosaic repeats every 2 pixels; X-Trans (6x6) must not pass as Bayer. G2 (3) counts as G.
    rgb = np.array([0, 1, 2, 1])[np.clip(colors[:64, :64], 0, 3)]
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    if not np.array_equal(rgb[:h, :w], np.tile(rgb[:2, :2], (h // 2, w // 2))):
        raise ValueError("not a Bayer sensor (colour filter does not repeat every 2 pixels)")
    return pattern  # type: ignore[return-value]


def site_colour(pattern: CFAPattern) -> np.ndarray:
    """(2, 2) int array: colour channel (0=R, 1=G, 2=B) of each site of the pattern's 2x2 block."""
    if pattern not in CFA_PATTERNS:
        raise ValueError(f"CFA pattern must be one of {CFA_PATTERNS}, got {pattern!r}")
    return np.array(["RGB".index(c) for c in pattern], dtype=np.int64).reshape(2, 2)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an (H, W, ...) image the way EXIF orientation ``orientation`` (1..8) says to display it."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    if orientation not in ops:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation!r}")
    return np.ascontiguousarray(ops[orientation](image))


def orient_point(row: int, col: int, height: int, width: int, orientation: int) -> tuple[int, int]:
    """Where pixel (row, col) of an unrotated ``height x width`` image lands in
    ``apply_orientation(image, orientation)``: its (row, col) there."""
    h, w = height - 1, width - 1
    moves = {
        1: (row, col),
        2: (row, w - col),
        3: (h - row, w - col),
        4: (h - row, col),
        5: (col, row),
        6: (col, h - row),
        7: (w - col, h - row),
        8: (w - col, row),
    }
    if orientation not in moves:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation!r}")
    return moves[orientation]


def orient_box(box: tuple[int, int, int, int], height: int, width: int, orientation: int) -> tuple[int, int, int, int]:
    """A pixel box (x0, y0, x1, y1; x1 and y1 exclusive) of an unrotated ``height x width`` image, as it lies
    in ``apply_orientation(image, orientation)`` (the same four values for orientation 1)."""
    x0, y0, x1, y1 = box
    (ra, ca), (rb, cb) = (orient_point(r, c, height, width, orientation) for r, c in ((y0, x0), (y1 - 1, x1 - 1)))
    return min(ca, cb), min(ra, rb), max(ca, cb) + 1, max(ra, rb) + 1
