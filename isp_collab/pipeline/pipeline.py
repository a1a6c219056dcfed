"""The pipeline: decode -> demosaic -> lens / sharpen / unsharp (linear camera RGB) -> white balance -> colour -> tone -> encode.

Built in code::

    Pipeline(sharpen=Sharpen(model="sharpen-unet-tx-n4", n=4))

or from a TOML file (one table per stage; a table that is present turns its stage on unless it
says ``enabled = false``; keys are the stage dataclasses' fields, their types and values checked
when the file is read)::

    max_pixels = 100_000_000
    [demosaic]
    method = "malvar"
    [white_balance]
    mode = "as_shot"
    [sharpen]
    model = "sharpen-unet-tx-n4"
    n = 4
    backend = "onnx"
    onnx_path = "export/sharpen-unet-tx-n4-n4-t256.onnx"  # relative paths: from the config file's folder
    [tone]
    curve = "smoothstep"
    [output]
    bit_depth = 16
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_files, check_output, check_writable_folder
from ..config_paths import beside
from ..native_stderr import capture_stderr
from .collaborative import Sharpen
from .compare import side_by_side
from .decode import ImageDecode, pillow_header
from .demosaic import Demosaic, check_mosaic_shape, normalize_linear, normalize_mosaic
from .encode import Encode, check_output_format, encode_image
from .frame import Frame, apply_orientation
from .headerless import HeaderlessDecode, read_description
from .io import DEFAULT_MAX_PIXELS, InputError, check_input_file, description_for, input_kind
from .lens_stage import LensCorrect
from .raw import RawDecode
from .stages import ColorCorrect, Linearize, Stage, Tone, UnsharpMask, WhiteBalance

# TOML table -> stage class; restoration stages are off unless their table is present.
SECTIONS: dict[str, type] = {
    "demosaic": Demosaic,
    "white_balance": WhiteBalance,
    "lens": LensCorrect,
    "sharpen": Sharpen,
    "unsharp": UnsharpMask,
    "color": ColorCorrect,
    "tone": Tone,
    "output": Encode,
}
RESTORATION_STAGES = ("lens", "sharpen", "unsharp")  # applied in this order


def _type_problem(value: Any, hint: Any) -> str | None:
    """What ``value`` (parsed TOML) should have been to fit the field annotation ``hint``; None if it fits.

    Covers the annotations stage fields use: bool, int, float, str, Literal, tuple of numbers, X | None.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (types.UnionType, typing.Union):
        options = [a for a in args if a is not type(None)]  # TOML has no null: None is never written
        problems = [_type_problem(value, a) for a in options]
        return None if None in problems else " or ".join(p for p in problems if p)
    if origin is typing.Literal:
        return None if value in args else "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        fits = isinstance(value, (list, tuple)) and len(value) == len(args)
        fits = fits and all(_type_problem(v, a) is None for v, a in zip(value, args, strict=False))
        return None if fits else f"a list of {len(args)} numbers"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if number and math.isfinite(value) else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    return None


def in_table(table: str, message: str) -> str:
    """A stage's complaint as said of its TOML table: ``[tone] exposure_ev must be ...``, not
    ``[tone] tone.exposure_ev must be ...`` (the stage's own name leads its messages: ``tone.``,
    ``sharpen: ``, ``unsharp needs``, ``demosaic method``)."""
    for lead in (f"{table}.", f"{table}: ", f"{table} "):
        if message.startswith(lead):
            message = message[len(lead) :]
            break
    return f"[{table}] {message}"


@dataclass
class Result:
    """What :meth:`Pipeline.run` returns.

    image: (H', W', 3) float32 sRGB-encoded [0, 1], upright; frame: the input's metadata (with the
    white balance used); timings: seconds per step in order; before/after: (H, W, 3) float32
    linear camera RGB just before and after the restoration stages (kept when ``keep=True``).
    """

    image: np.ndarray
    frame: Frame
    timings: dict[str, float]
    before: np.ndarray | None = None
    after: np.ndarray | None = None


@dataclass
class Pipeline:
    """A configured camera pipeline; every stage is a field (see the module docstring).

    ``run(path)`` processes a file in memory (``read``, ``restore``, ``finish``); the restoration stages get (H, W, 3)
    float32 linear camera RGB not yet white-balanced (black 0, sensor clip nominally 1; linear sRGB for a PNG /
    JPEG / TIFF input), ``finish`` turns it into upright sRGB-encoded [0, 1], which ``output`` writes.
    """

    max_pixels: int | None = DEFAULT_MAX_PIXELS
    crop: bool = True  # apply a RAW file's default crop (DNG DefaultCrop)
    demosaic: Demosaic = field(default_factory=Demosaic)
    white_balance: WhiteBalance = field(default_factory=WhiteBalance)
    lens: LensCorrect = field(default_factory=lambda: LensCorrect(enabled=False))
    sharpen: Sharpen = field(default_factory=lambda: Sharpen(enabled=False))
    unsharp: UnsharpMask = field(default_factory=lambda: UnsharpMask(enabled=False))
    color: ColorCorrect = field(default_factory=ColorCorrect)
    tone: Tone = field(default_factory=Tone)
    output: Encode = field(default_factory=Encode)
    linearize: Linearize = field(default_factory=Linearize)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> Pipeline:
        """Read a pipeline TOML file; errors are one ValueError line naming the file."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{p}: no such config file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"{p}: not a valid TOML pipeline config ({str(e).splitlines()[0]})") from None
        return cls.from_dict(_relative_to(data, p), where=str(p))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> Pipeline:
        """Build from a parsed TOML dict (see :meth:`from_toml`)."""
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "max_pixels" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{where}: max_pixels must be a positive integer, got {value!r}")
            if key == "crop" and not isinstance(value, bool):
                raise ValueError(f"{where}: crop must be true or false, got {value!r}")
            if key in ("max_pixels", "crop"):
                kwargs[key] = value
                continue
            if key not in SECTIONS:
                raise ValueError(
                    f"{where}: unknown table or key {key!r} (known: max_pixels, crop, {', '.join(SECTIONS)})"
                )
            if not isinstance(value, dict):
                raise ValueError(f"{where}: {key!r} must be a table ([{key}])")
            stage_cls = SECTIONS[key]
            known = {f.name for f in dataclasses.fields(stage_cls) if f.init}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(f"{where}: [{key}] has unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
            hints = typing.get_type_hints(stage_cls)
            for k, v in value.items():
                problem = _type_problem(v, hints.get(k, Any))
                if problem:
                    raise ValueError(f"{where}: [{key}] {k} must be {problem}, got {v!r}")
            args = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
            try:
                kwargs[key] = stage_cls(**args)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{where}: {in_table(key, str(e))}") from None
        return cls(**kwargs)

    @property
    def restoration(self) -> list[Stage]:
        """The restoration stages in the order they run: lens, sharpen, unsharp."""
        return [getattr(self, name) for name in RESTORATION_STAGES]

    def read(self, path: str | os.PathLike) -> tuple[np.ndarray, Frame, dict[str, float]]:
        """Decode to (H, W, 3) float32 linear RGB (not yet white-balanced); and timings.

        RAW input gives linear camera RGB, nominally [0, 1] (demosaicking may overshoot a little on
        edges; nothing is clipped); PNG/JPEG/TIFF input gives linear sRGB in [0, 1].

        The restoration networks are trained on linear camera RGB *before* white balance
        (Brooks et al. unprocessing inverts the gains), so white balance runs in :meth:`finish`.
        """
        p = check_input_file(path)
        kind = input_kind(p)
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        if kind == "rgb":
            image, frame = ImageDecode(self.max_pixels)(p)
            t["decode"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            image = self.linearize(image, frame)
            t["linearize"] = time.perf_counter() - t0
            return image, frame, t
        try:
            decoder = (
                HeaderlessDecode(self.max_pixels) if kind == "headerless" else RawDecode(self.max_pixels, self.crop)
            )
            mosaic, frame = decoder(p)
        except InputError as e:
            if p.suffix.lower() == ".raw" and kind == "raw":
                raise InputError(
                    f"{e} (a headerless dump needs {p.with_suffix('.json').name} or .toml beside it)"
                ) from None
            raise
        t["decode"] = time.perf_counter() - t0
        if mosaic.ndim == 3:  # a LinearRaw DNG: camera RGB already demosaicked (by the camera or a converter)
            image = normalize_linear(mosaic, frame)
            return image, self.white_balance.resolve(frame, image), t
        check_mosaic_shape(mosaic)  # before white balance estimates anything (and warns) on it
        t0 = time.perf_counter()
        normalized = normalize_mosaic(mosaic, frame)
        frame = self.white_balance.resolve(frame, normalized)
        image = self.demosaic(normalized, frame)
        t["demosaic"] = time.perf_counter() - t0
        return image, frame, t

    def restore(self, image: np.ndarray, frame: Frame, timings: dict[str, float] | None = None) -> np.ndarray:
        """The restoration stages (lens, sharpen, unsharp) on (H, W, 3) float32 linear camera RGB.

        Only the enabled ones run: a plain ``Pipeline()`` has them all off (``isp-collab process`` turns
        ``sharpen`` on); ``Pipeline(sharpen=Sharpen())`` or a configuration's ``[sharpen]`` table turns it on.
        """
        for stage in self.restoration:
            t0 = time.perf_counter()
            image = stage(image, frame)
            if timings is not None and stage.enabled:
                timings[getattr(stage, "name", type(stage).__name__)] = time.perf_counter() - t0
        return image

    def finish(self, image: np.ndarray, frame: Frame, timings: dict[str, float] | None = None) -> np.ndarray:
        """White balance, colour, tone and orientation: linear camera RGB -> upright sRGB-encoded (H', W', 3)."""
        for stage in (self.white_balance, self.color, self.tone):
            t0 = time.perf_counter()
            image = stage(image, frame)
            if timings is not None:
                timings[getattr(stage, "name", type(stage).__name__)] = time.perf_counter() - t0
        return apply_orientation(image, frame.orientation)

    def prepare(self) -> None:
        """Build the enabled restoration stages' networks now (each once, then reused): a bad model or a setting
        that does not fit it (a tile that is no multiple of its ``2**depth``, a missing ``onnx_path``) raises here,
        before any file is decoded. :meth:`run` and :meth:`process_file` call it first."""
        for stage in self.restoration:
            if stage.enabled and hasattr(stage, "network"):
                stage.network()

    def run(self, path: str | os.PathLike, *, keep: bool = False) -> Result:
        """Process one input file in memory (nothing is written); the networks are built first (:meth:`prepare`)."""
        self.prepare()
        image, frame, timings = self.read(path)
        restored = self.restore(image, frame, timings)
        final = self.finish(restored, frame, timings)
        return Result(final, frame, timings, image if keep else None, restored if keep else None)

    def process_file(
        self,
        src: str | os.PathLike,
        dst: str | os.PathLike,
        *,
        overwrite: bool = False,
        compare: str | os.PathLike | None = None,
        compare_size: int = 512,
    ) -> Result:
        """Process ``src`` and write ``dst`` (and the before/after ``compare`` PNG) atomically.

        Refuses to start when an output exists and ``overwrite`` is false, or when its folder cannot be
        written to (:func:`~isp_collab.atomic.check_writable_folder`); on any error nothing is written.
        """
        dst = check_output(dst, overwrite=overwrite)
        check_writable_folder(dst.parent)
        # a type or bit depth the output cannot hold is refused before the (slow) processing
        check_output_format(dst, self.output.bit_depth if isinstance(self.output, Encode) else None)
        if compare is not None:
            compare = check_output(compare, overwrite=overwrite)
        result = self.run(src, keep=compare is not None)
        t0 = time.perf_counter()
        data = self.output(result.image, result.frame, dst)
        result.timings["encode"] = time.perf_counter() - t0
        cmp_data = None
        if compare is not None:
            crop = side_by_side(result.before, result.after, lambda x: self.finish(x, result.frame), compare_size)
            cmp_data = encode_image(crop, ".png", 8)  # no record: never taken for an input's output
        t0 = time.perf_counter()
        # the pair is one output: both written before either is renamed into place (a failure replaces neither)
        atomic_write_files({dst: data} if cmp_data is None else {dst: data, compare: cmp_data}, overwrite=overwrite)
        result.timings["write"] = time.perf_counter() - t0
        return result


def _relative_to(data: dict[str, Any], config_file: Path) -> dict[str, Any]:
    """``data`` with the network stages' file paths read as written in ``config_file`` (:func:`beside`).

    ``onnx_path`` is always a path; ``model`` is one when it looks like one (``./mine``, ``runs/m``, ``~/m``)
    or names a folder beside the config file, not when it is a shipped model name (``sharpen-unet-tx-n4``).
    """
    out = dict(data)
    for stage in ("sharpen", "lens"):
        table = out.get(stage)
        if not isinstance(table, dict):
            continue
        table = out[stage] = dict(table)
        for key in ("onnx_path", "model"):
            value = table.get(key)
            if not isinstance(value, str) or not value:
                continue
            looks_like_path = value.startswith((".", "~")) or "/" in value or os.sep in value
            if key == "onnx_path" or looks_like_path or Path(beside(config_file, value)).is_dir():
                table[key] = beside(config_file, value)
    return out


def out_of_memory(path: Path, err: BaseException) -> InputError | None:
    """The one-line error for an input that ran out of memory while processed (a ``MemoryError``, OpenCV's
    "Insufficient memory"), with its size from its header; None for any other error."""
    if not isinstance(err, MemoryError) and "(-4:Insufficient memory)" not in str(err):
        return None
    size = header_size(path)
    shown = ""
    if size is not None:
        width, height = size
        pixels = f"{width * height / 1e6:.1f} MP" if width * height >= 100_000 else f"{width * height:,} pixels"
        shown = f" {width}x{height} = {pixels}"
    return InputError(
        f"{path}: ran out of memory processing{shown or ' it'} (use a smaller image, or --max-pixels to refuse "
        "images this large before they are decoded)"
    )


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an input from its header alone (Pillow's, its sensor description, LibRaw's open without
    unpacking); None when it cannot be read."""
    try:
        kind = input_kind(path)
        if kind == "rgb":
            with pillow_header(path) as im:
                return im.size
        if kind == "headerless":
            desc = read_description(description_for(path))
            return desc.width, desc.height
        import rawpy

        with capture_stderr([]), rawpy.imread(str(path)) as raw:
            return raw.sizes.raw_width, raw.sizes.raw_height
    except Exception:  # noqa: BLE001 - the size is a detail of the message
        return None
