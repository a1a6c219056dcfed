#!/usr/bin/env python3
"""Torch-free reference consumer of an exported isp-collab ONNX model (numpy + onnxruntime + OpenCV).

It does what an ISP integration has to do around the network: read the sidecar ``NAME-nN-tT[-VARIANT].json``
next to the ``.onnx`` file (N, tile, overlap, gathering strategy, input/output names, ``preprocess``,
``postprocess``), read the image, run the steps of ``collab_core.py`` (this folder; the algorithm alone, numpy
only: exposure gain, grid, gathering, tiles through ONNX Runtime as ``[1, N, 3, T, T]`` stacks, window-blended
stitching, the ``luma`` / ``rgb`` detail step, ``keep_level`` and the strength) and write the result.
``image_files.py`` (this folder) reads and writes the files. ``export/README.md`` ("Whole image") states every
rule a port needs.

The stitched output equals ``isp_collab.restore.restore(image, model, backend="torch", ...)`` to
within 1e-4, and the ``luma`` and ``keep_level`` steps equal ``transfer_luma_detail`` and ``keep_local_level``
of ``isp_collab.restore.detail``; the whole run gives what ``isp-collab process --onnx`` gives (tested).
``collab_core.py`` mirrors ``isp_collab/restore/tiling.py`` and ``gathering.py``; neither file imports
isp_collab (which needs torch).

Usage::

    python consume_onnx.py MODEL.onnx INPUT OUTPUT [--sidecar X.json] [--strategy S] [--center X,Y]
                           [--detail luma|rgb] [--wb-gains R,G,B] [--no-keep-level] [--strength S]
                           [--threads K] [--overwrite]

Images: ``.npy`` (H x W x 3 float linear RGB) and float ``.tif`` are linear RGB, and must be finite (the
checks of ``isp_collab.restore.api.as_float32_image``); 8/16-bit ``.png`` / ``.jpg`` / ``.tif`` are sRGB-encoded:
decoded with the sRGB curve on input and encoded again on output (8-bit, or 16-bit when the input was
16-bit). As in ``isp-collab process``: a file is turned upright by its EXIF orientation on reading
(OpenCV's decoder does that for PNG, JPEG and TIFF unless given ``IMREAD_IGNORE_ORIENTATION``) and written
upright without EXIF; a greyscale file is written as greyscale (OpenCV's ``RGB2GRAY`` luma of the encoded
result); an alpha channel is dropped, with a warning. ``.exr`` is not supported (the opencv-python wheels
are built without OpenEXR). Any bad file or flag: one line ``consume_onnx: error: PATH-or-FLAG: reason``
on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

_HERE = str(Path(__file__).resolve().parent)  # collab_core.py and image_files.py sit here: found from any cwd
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
import collab_core as core  # noqa: E402
from collab_core import DETAILS, STRATEGIES  # noqa: E402
from image_files import (  # noqa: E402,F401 (re-exported: the consumer's I/O, as tests and ports call it)
    NO_EXR,
    check_image,
    check_output,
    exif_orientation,
    linear_to_srgb,
    read_image,
    srgb_to_linear,
    turn_fractions,
    write_image,
)
from image_files import reason as _reason  # noqa: E402


# ----------------------------------------------------------------------------------- restoring
def read_sidecar(onnx_path: str | os.PathLike, sidecar: str | os.PathLike | None = None) -> dict:
    """The sidecar JSON of ``onnx_path`` (``x/NAME.onnx`` -> ``x/NAME.json`` unless given)."""
    path = Path(sidecar) if sidecar else Path(onnx_path).with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sidecar not found (it is written next to the .onnx by isp-collab export)")
    try:
        data = json.loads(path.read_text())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: sidecar is not JSON ({_reason(e)})") from None
    for key in ("input", "output", "tiling"):
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise ValueError(f"{path}: sidecar lacks the {key!r} block")
    fmt = data.get("format", "onnx")
    if fmt != "onnx":  # a Core ML package's sidecar holds the same weights hash: refuse it by its format
        raise ValueError(f"{path}: the sidecar of a {fmt} artefact ({data.get('file', '?')}), not of an ONNX model")
    check_sidecar(data, path)
    return data


def _field(data: dict, dotted: str):
    """The sidecar's value at ``a.b`` (None where absent)."""
    for key in dotted.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _number(value, low: float, high: float) -> bool:  # (NaN fails both comparisons)
    return type(value) in (int, float) and low <= value <= high


def check_sidecar(data: dict, path: str | os.PathLike) -> None:
    """Refuse, before any work, a sidecar value that would run the model wrong (an edited or damaged file): one
    ValueError naming ``path`` and the field. Absent optional fields keep their defaults."""
    tile = _field(data, "tiling.tile")
    checks = [  # (field, what it must be, whether it is, whether it may be absent)
        ("tiling.n", "an integer >= 1", lambda v: type(v) is int and v >= 1, False),
        ("tiling.tile", "an integer >= 1", lambda v: type(v) is int and v >= 1, False),
        ("tiling.overlap", "an integer in [0, tile // 2]", lambda v: type(v) is int and 0 <= v <= tile // 2, False),
        ("tiling.strategy", f"one of {', '.join(STRATEGIES)}", lambda v: v in STRATEGIES, False),
        ("input.name", "a name", lambda v: isinstance(v, str) and v != "", False),
        ("output.name", "a name", lambda v: isinstance(v, str) and v != "", False),
        ("file_sha256", "a hex digest", lambda v: isinstance(v, str), True),
        ("model", "an object", lambda v: isinstance(v, dict), True),
        ("model.weights_sha256", "a hex digest", lambda v: isinstance(v, str), True),
        ("model.optical_center", "[x, y] fractions in [0, 1]", lambda v: _pair(v, 0, 1), True),
        ("preprocess", "an object", lambda v: isinstance(v, dict), True),
        ("preprocess.exposure_target", "a number in [0, 1]", lambda v: _number(v, 0, 1), True),
        ("preprocess.max_gain", "a number in [1, 1e6]", lambda v: _number(v, 1, 1e6), True),
        ("postprocess", "an object", lambda v: isinstance(v, dict), True),
        ("postprocess.detail", f"one of {', '.join(DETAILS)}", lambda v: v in DETAILS, True),
        ("postprocess.luma_weights", "three numbers in [0, 1]", lambda v: _triple(v, 0, 1), True),
    ]
    for field, want, ok, optional in checks:
        value = _field(data, field)
        if (value is not None or not optional) and not ok(value):
            raise ValueError(f"{path}: {field} must be {want}, got {value!r}")


def _pair(v, low: float, high: float) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_number(x, low, high) for x in v)


def _triple(v, low: float, high: float) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(_number(x, low, high) for x in v)


class OnnxRestorer:
    """Restore whole linear-RGB images with an exported model, tile by tile, as its sidecar says."""

    def __init__(
        self, onnx_path: str | os.PathLike, sidecar: str | os.PathLike | None = None, threads: int | None = None
    ) -> None:
        self.path = Path(onnx_path)
        self.sidecar = Path(sidecar) if sidecar else self.path.with_suffix(".json")
        if self.path.is_dir():
            raise ValueError(f"{self.path}: a folder (a Core ML package?), not an ONNX model file (.onnx)")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX model file")
        self.meta = read_sidecar(self.path, self.sidecar)
        tiling = self.meta["tiling"]  # (values checked by read_sidecar)
        self.n, self.tile, self.overlap, self.strategy = (
            tiling["n"],
            tiling["tile"],
            tiling["overlap"],
            tiling["strategy"],
        )
        self.input_name, self.output_name = self.meta["input"]["name"], self.meta["output"]["name"]
        opts = ort.SessionOptions()
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own types (InvalidProtobuf, NoSuchFile, Fail...) for bad files
            raise ValueError(f"{self.path}: cannot load the ONNX model ({_reason(e)})") from None
        # a sidecar written for another model: compare the weights' hashes (ONNX metadata_props vs sidecar)
        ours = self.session.get_modelmeta().custom_metadata_map.get("isp_collab.weights_sha256")
        model = self.meta.get("model")
        theirs = model.get("weights_sha256") if isinstance(model, dict) else None
        if ours and theirs and ours != theirs:
            raise ValueError(
                f"{self.sidecar}: a sidecar for other weights (sha256 {theirs[:12]}...) "
                f"than {self.path} ({ours[:12]}...)"
            )
        recorded = self.meta.get("file_sha256")  # the exported file the sidecar was written for
        if isinstance(recorded, str) and recorded != _sha256(self.path):
            raise ValueError(
                f"{self.sidecar}: written for another file than {self.path} (its file_sha256 differs: another "
                f"precision or export of the model?); pass that file's own sidecar"
            )
        inputs, outputs = [i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()]
        if inputs != [self.input_name] or self.output_name not in outputs:
            raise ValueError(
                f"{self.sidecar}: input / output names {self.input_name!r} / {self.output_name!r} are not those of "
                f"{self.path} ({', '.join(inputs)} / {', '.join(outputs)})"
            )
        shape = list(self.session.get_inputs()[0].shape)
        if shape != [1, self.n, 3, self.tile, self.tile]:
            raise ValueError(f"{self.path}: input shape {shape} does not match the sidecar (N={self.n}, T={self.tile})")

    def run_stack(self, stack: np.ndarray) -> np.ndarray:
        """(N, 3, T, T) float32 linear RGB -> restored (N, 3, T, T)."""
        return self.session.run([self.output_name], {self.input_name: stack[None]})[0][0]

    def __call__(
        self,
        image: np.ndarray,
        strategy: str | None = None,
        center: tuple[float, float] | None = None,
        exposure: tuple[float, float] = (0.0, 1.0),
    ) -> np.ndarray:
        """H x W x 3 float32 linear RGB -> restored H x W x 3 float32 linear RGB (``collab_core.restore``).

        ``strategy`` defaults to the sidecar's; ``center`` (x, y) is the optical centre for
        ``mirror`` in pixel-index coordinates (default: the image centre); ``exposure``: (target, max_gain),
        off by default (``sidecar_exposure`` gives the sidecar's).
        """
        image = check_image(image)
        return core.restore(
            image, self.run_stack, self.n, self.tile, self.overlap, strategy or self.strategy, center, *exposure
        )


def sidecar_exposure(meta: dict) -> tuple[float, float]:
    """(exposure_target, max_gain) of the sidecar's ``preprocess`` (0, 1: off, for sidecars without one)."""
    spec = meta.get("preprocess") or {}
    return float(spec.get("exposure_target", 0.0)), float(spec.get("max_gain", 1.0))


def sidecar_postprocess(meta: dict, where: str | os.PathLike = "sidecar") -> tuple[str, tuple[float, ...], float]:
    """(detail, luma_weights, strength) of the sidecar's ``postprocess``: ``rgb`` without one; strength 1 where
    the sidecar gives none or, as sidecars before the numeric key did, gives it in words."""
    spec = meta.get("postprocess") or {}
    strength = spec.get("strength", 1.0)
    if isinstance(strength, str):  # older sidecars: the tuning described in words, default 1
        strength = 1.0
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 2:
        raise ValueError(f"{where}: postprocess.strength must be a number in [0, 2], got {strength!r}")
    weights = spec.get("luma_weights") or core.REC709_LUMA  # (null: absent, as check_sidecar takes it)
    return str(spec.get("detail") or "rgb"), tuple(weights), float(strength)


def sidecar_keep_level(meta: dict, where: str | os.PathLike = "sidecar") -> tuple[int, int] | None:
    """(box, passes) of the sidecar's ``postprocess.keep_level``; None (off) without one: sidecars written
    before the step."""
    spec = (meta.get("postprocess") or {}).get("keep_level")
    if spec is None:
        return None
    box, passes = (spec.get("box"), spec.get("passes")) if isinstance(spec, dict) else (None, None)
    if type(box) is not int or type(passes) is not int or not 1 <= box <= 4095 or box % 2 == 0 or not 1 <= passes <= 16:
        raise ValueError(  # (bool is not int here)
            f"{where}: postprocess.keep_level needs box (an odd int in [1, 4095]) and passes (an int in [1, 16]), "
            f"got {spec!r}"
        )
    return box, passes


def _numbers(text: str) -> tuple[float, ...]:
    """``"a,b,..."`` -> finite floats; () when any is not a finite number."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        return ()
    return values if all(np.isfinite(values)) else ()


def parse_gains(text: str) -> tuple[float, float, float]:
    """``"R,G,B"`` -> three positive finite white-balance gains."""
    gains = _numbers(text)
    if len(gains) != 3 or min(gains) <= 0:
        raise ValueError(f"--wb-gains: must be three positive numbers R,G,B, got {text!r}")
    return gains


def parse_center(text: str) -> tuple[float, float]:
    """``"X,Y"`` -> the optical centre in pixel-index coordinates (two finite numbers)."""
    center = _numbers(text)
    if len(center) != 2:
        raise ValueError(f"--center: must be two numbers X,Y (pixels), got {text!r}")
    return center


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def join_negative_values(argv: list[str]) -> list[str]:
    """``--center -1,5`` as ``--center=-1,5``, which argparse reads as the option's value, not an unknown option
    (``isp_collab.cli._join_negative_values``, copied: this consumer imports no isp_collab); ``--`` ends it."""
    out: list[str] = []
    for i, token in enumerate(argv):
        if token == "--":
            return out + argv[i:]
        if out and re.match(r"^-\.?\d", token) and out[-1].startswith("--") and out[-1] != "--" and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Restore an image with an exported isp-collab ONNX model (no torch).")
    p.add_argument("model", help="exported .onnx file (its sidecar .json must sit next to it)")
    p.add_argument("input", help=".npy / float .tif (linear RGB) or 8/16-bit .png/.jpg/.tif (sRGB)")
    p.add_argument("output", help="output image, same conventions")
    p.add_argument("--sidecar", help="sidecar JSON (default: MODEL with .json)")
    p.add_argument("--strategy", choices=STRATEGIES, help="gathering strategy (default: the sidecar's)")
    p.add_argument(
        "--center",
        help="optical centre X,Y in pixels of the upright image, for --strategy mirror (default: the sidecar's "
        "model optical_center, a point of the sensor turned with an image its EXIF orientation turns upright; else "
        "the image centre)",
    )
    p.add_argument(
        "--detail", choices=DETAILS, help="after stitching: luma or rgb (default: the sidecar's postprocess)"
    )
    p.add_argument("--wb-gains", help="white-balance gains R,G,B of the frame, for --detail luma (default: 1,1,1)")
    p.add_argument(
        "--no-keep-level",
        action="store_true",
        help="skip the sidecar's postprocess.keep_level step (default: done when the sidecar has it, as process does)",
    )
    p.add_argument(
        "--strength",
        type=float,
        help="keep this much of the change after the detail step, 0..2 (default: the sidecar's postprocess.strength, "
        "else 1), as isp-collab process --strength",
    )
    p.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads, >= 1 (default: ORT's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = p.parse_args(join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    try:  # the cheap checks first, before any work
        check_output(args.output, args.overwrite)
        if Path(args.output).exists() and Path(args.input).exists() and os.path.samefile(args.output, args.input):
            raise ValueError(f"{args.output}: the output is the input image (not replaced, even with --overwrite)")
        center = parse_center(args.center) if args.center is not None else None
        gains = parse_gains(args.wb_gains) if args.wb_gains else (1.0, 1.0, 1.0)
        if args.threads is not None and args.threads < 1:
            raise ValueError(f"--threads: must be >= 1, got {args.threads}")
        if args.strength is not None and not 0 <= args.strength <= 2:
            raise ValueError(f"--strength: must be in [0, 2], got {args.strength:g}")
        restorer = OnnxRestorer(args.model, args.sidecar, args.threads)
        strategy = args.strategy or restorer.strategy
        if center and strategy != "mirror":
            raise ValueError(f"--center: applies to --strategy mirror only (this run gathers with {strategy})")
        model = restorer.meta.get("model") if isinstance(restorer.meta.get("model"), dict) else {}
        if strategy == "mirror" and model.get("align") is False and model.get("n_trained") != 1:  # N=1: never flipped
            raise ValueError(
                f"{restorer.sidecar}: the model was trained on mirror stacks left unflipped (align false), but "
                "mirror gathering flips every tile into one orientation; retrain it with align = true"
            )
        side_detail, weights, side_strength = sidecar_postprocess(restorer.meta, restorer.sidecar)
        detail = args.detail or side_detail
        if detail not in DETAILS:
            raise ValueError(f"unknown detail {detail!r}: choose from {', '.join(DETAILS)}")
        strength = side_strength if args.strength is None else args.strength
        keep_level = sidecar_keep_level(restorer.meta, restorer.sidecar)  # checked even when skipped
        keep_level = None if args.no_keep_level else keep_level
        if args.wb_gains and detail != "luma":
            raise ValueError(f"--wb-gains: applies to --detail luma only (this run keeps {detail})")
        image, depth, grey = read_image(args.input)
        h, w = image.shape[:2]
        if center and not (0 <= center[0] <= w - 1 and 0 <= center[1] <= h - 1):
            raise ValueError(
                f"--center: ({center[0]:g}, {center[1]:g}) (x, y) is outside the {h}x{w} (H x W) image {args.input}"
            )
        trained, frame = model.get("optical_center"), model.get("lens_frame")  # a calibrated lens's, if any
        turn = exif_orientation(args.input) if trained or frame else 1
        if center is None and strategy == "mirror" and isinstance(trained, list) and len(trained) == 2:
            # the lens's axis, as trained: a point of the sensor, turned with a picture turned upright on reading
            fx, fy = turn_fractions(float(trained[0]), float(trained[1]), turn)
            center = (min(max(fx * w - 0.5, 0.0), w - 1.0), min(max(fy * h - 0.5, 0.0), h - 1.0))  # kept inside
        sh, sw = (w, h) if turn in (5, 6, 7, 8) else (h, w)  # the frame in the sensor's orientation
        if (
            isinstance(frame, list)
            and len(frame) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in frame)
            and not (abs(sh / frame[0] - 1) <= 0.02 and abs(sw / frame[1] - 1) <= 0.02)
        ):  # as process's lens stage: its PSFs are in the calibration frame's pixels (H, W)
            print(
                f"consume_onnx: warning: {args.input}: the model was trained on a lens calibrated on {frame[0]}x"
                f"{frame[1]} (H x W) frames, and this image is {sh}x{sw} (H x W, sensor orientation): the "
                "correction may be wrong",
                file=sys.stderr,
            )
        if strategy != restorer.strategy:  # run, but said: the file was exported (and checked) for the sidecar's
            print(
                f"consume_onnx: warning: {restorer.sidecar.name} says to gather {restorer.strategy} stacks "
                f"(the model's task: {model.get('task', 'unknown')}); --strategy {strategy} runs it otherwise, "
                "with quality not validated",
                file=sys.stderr,
            )
        # a dark frame is restored brighter, then divided back (the sidecar's preprocess)
        restored = restorer(image, strategy, center, sidecar_exposure(restorer.meta))
        out = core.postprocess(image, restored, detail, gains, weights, strength, keep_level)
        write_image(args.output, out, depth, args.overwrite, grey)
    except (ValueError, OSError) as e:  # FileNotFoundError is an OSError
        print(f"consume_onnx: error: {_reason(e)}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
