"""Sidecar JSON written next to every exported artefact: everything an integrator needs to feed it.

``NAME-nN-tT[-VARIANT].json`` sits beside ``NAME-nN-tT[-VARIANT].onnx`` / ``.mlpackage``. Keys:

- ``format`` (``onnx`` | ``coreml``), ``precision`` (``fp32`` | ``fp16`` | ``int8``), ``file``, ``file_sha256``
  (ONNX: the file's own sha256, so a sidecar of another precision or export is told apart);
- ``input`` / ``output``: name, shape ``[1, N, 3, T, T]``, dtype ``float32``, layout, value range,
  colour space ``linear RGB``;
- ``tiling``: ``n``, ``n_trained``, ``tile``, ``overlap``, ``strategy`` (gathering), ``window``;
- ``model``: name, task, arch, weights file sha256, ``training`` (recipe, its sha256, steps) and the card's
  ``validation`` figures and protocol (PyTorch, fp32); ``onnx`` (opset, IR version, ops) or ``coreml``
  (deployment target, compute precision, spec checks); ``package_version``, ``torch_version``;
- ``preprocess``: the exposure gain ``isp-collab process`` applies to a dark frame before tiling (and undoes
  after stitching);
- ``postprocess``: what ``isp-collab process`` does after stitching (``detail``: ``luma`` for
  sharpening, with the weights, the formula and a numeric default ``strength``, or ``rgb``; see
  :mod:`isp_collab.restore.detail`; ``before_after``: what ``before`` and ``after`` are in its rules);
- ``parity``: the measured figures (see :mod:`.parity`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..restore.detail import postprocess_spec

SCHEMA = "isp-collab-export/1"
REQUIRED_KEYS = ("schema", "format", "precision", "file", "input", "output", "tiling", "model", "parity")


def artefact_stem(name: str, n: int, tile: int, variant: str = "") -> str:
    """``NAME-nN-tT`` plus ``-VARIANT`` when given (``fp16``, ``int8``, ``coreml-fp16`` ...)."""
    return f"{name}-n{n}-t{tile}" + (f"-{variant}" if variant else "")


def sidecar_path(artefact: str | os.PathLike) -> Path:
    """The sidecar of ``x/NAME.onnx`` or ``x/NAME.mlpackage``: ``x/NAME.json``."""
    p = Path(artefact)
    return p.with_name(p.stem + ".json")


def tensor_spec(name: str, n: int, tile: int) -> dict[str, Any]:
    """Description of the ``stack`` / ``restored`` tensor."""
    return {
        "name": name,
        "shape": [1, n, 3, tile, tile],
        "dtype": "float32",
        "layout": "[batch=1, N tiles of one image sharing a blur, RGB channels, tile rows, tile columns]",
        "value_range": [0.0, 1.0],
        "value_range_note": "nominal, not clipped: inputs dip below 0 and exceed 1 (demosaicking overshoot, "
        "saturated highlights) and the restored output over- and undershoots at edges (sharpening); keep signed "
        "float or fp16 buffers, not UNORM, and clip only when encoding the final image",
        "colour_space": "linear RGB",
        "isp_position": "linear camera RGB after demosaicking, before white balance, the colour matrix and the "
        "tone curve (no gamma; the domain the model was trained in); the output is in the same space",
        "normalisation": "raw sample minus its black level, divided by (white level - black level), per CFA site, "
        "then demosaicked (isp-collab process does exactly this). Trained on photos unprocessed to that domain "
        "(Brooks et al. 2019): typical frames have a 99th percentile near 0.5; darker frames are brought up first, "
        "see preprocess (benchmarks/RESULTS.md, exposure)",
    }


# how each strategy forms its stacks, in words (the sidecar's tiling.gathering); export/README.md has the detail
GILBERT = (
    "a generalised Hilbert curve: Cerveny's gilbert2d(width = columns, height = rows), x = column, y = row, i.e. "
    "generate2d(0, 0, columns, 0, 0, rows) when columns >= rows (the curve runs from the top-left tile "
    "to the top-right one), else generate2d(0, 0, 0, rows, columns, 0) (top-left to bottom-left); its halvings "
    "ax // 2, ay // 2, bx // 2, by // 2 are floor division, also of negative values (as Python's // and upstream "
    "gilbert.c's floor(); C's truncating / gives another order from 10 x 10 tiles on)"
)
CURVE = f"tiles ordered along {GILBERT}; tile index = row * columns + column"
GATHERING = {
    "spread": f"{CURVE}; with k = ceil(tiles / N), stack i (0 <= i < k) takes order[i], order[i + k], order[i + 2k] "
    "...: N far-apart tiles sharing one blur (fewer where the curve runs out)",
    "local": f"{CURVE}; stack i takes order[i N] to order[i N + N - 1]: N neighbours",
    "mirror": "with c2x, c2y and m() of tiling.grid per axis, the tile at (y0, x0) has the first-quadrant start "
    "rx = x0 if 2 x0 + tile - 1 >= c2x else m(x0) (ry likewise with y0, c2y); the tiles with one (ry, rx) form an "
    "orbit: (ry, rx) no flip, (ry, m(rx)) flip x, (m(ry), rx) flip y, (m(ry), m(rx)) both, in that order, those in "
    "the grid; a tile met again in its orbit stays, flipped, with its output not kept. Each member is flipped (x: "
    "columns reversed, y: rows reversed) into the orientation of the one right of and below the centre (y down) and "
    "its output flipped back. Orbit order: rys, rxs = the sorted distinct ry, rx; orbit (ry, rx) is cell (index of "
    f"ry in rys, index of rx in rxs) of a len(rys) x len(rxs) (rows x columns) grid, taken along {GILBERT}. "
    "N >= 4: N // 4 consecutive orbits per stack, members in order; N = 2, 3: each orbit cut into consecutive "
    "chunks of N, a chunk with no kept member skipped. Optical centre: model.optical_center (fractions fx, fy of "
    "the sensor's frame, turned as the picture is turned upright by its EXIF orientation) -> (fx W - 0.5, "
    "fy H - 0.5) pixels clamped to [0, W - 1] x [0, H - 1], else the image centre",
}
GATHERING_PADDING = (
    "N = 1: one tile per stack, in index order. A stack with fewer than N members is completed with repeats of its "
    "kept members, cycling from the first; outputs are kept once per tile (repeats and a self-mirror tile's "
    "flipped copies are discarded)"
)


# what postprocess's before / after are (the detail, keep_level and strength steps)
BEFORE_AFTER = (
    "before: the H x W x 3 frame given to preprocess, without the exposure gain e (not frame * e); after: the "
    "stitched network output divided by e (preprocess.rule); result: each step's output, the next step's input"
)


def build_sidecar(
    *,
    fmt: str,
    precision: str,
    file: str,
    n: int,
    tile: int,
    overlap: int,
    strategy: str,
    model: dict[str, Any],
    target: dict[str, Any],
    parity: dict[str, Any],
    input_name: str,
    output_name: str,
    package_version: str,
    torch_version: str,
) -> dict[str, Any]:
    """The sidecar dict (JSON-serialisable); see the module docstring for the keys."""
    n_trained = model.get("n_trained")
    return {
        "schema": SCHEMA,
        "format": fmt,
        "precision": precision,
        "file": file,
        "input": tensor_spec(input_name, n, tile),
        "output": tensor_spec(output_name, n, tile),
        "tiling": {
            "n": n,
            "n_trained": n_trained,
            "n_validated": n == n_trained,
            "tile": tile,
            "overlap": overlap,
            "strategy": strategy,
            "grid": "per axis, mirror-symmetric about the image centre (the optical centre for mirror), in "
            "integers: c2 = twice the centre (length - 1, or round(2 x) half to even); the tile starting at s "
            "mirrors to m(s) = c2 - s - tile + 1. From a first start f: s = f + k (tile - overlap), k = 0, 1, ... "
            "up to and including the first s with s + tile - 1 >= length - 1 + overlap // 2, plus m(f + k (tile - "
            "overlap)), k = 0, 1, ... up to and including the first <= -(overlap // 2); tiles touching no pixel "
            "(s + tile <= 0 or s >= length) are dropped; starts sorted, without repeats. "
            "f = floor((c2 + 1 - overlap) / 2) (two tiles meet at the centre), or (c2 - tile + 1) / 2 (one tile "
            "centred) when c2 - tile + 1 is even and that gives strictly fewer tiles. Every strategy but mirror "
            "lays each axis out about c2, c2 - 1 and c2 + 1 in turn and keeps the first with the fewest tiles",
            "gathering": f"{GATHERING.get(strategy, strategy)}; {GATHERING_PADDING}",
            "guide": "export/README.md, 'Whole image: tiling, gathering, stitching'; export/collab_core.py does it",
            "padding": "reflect-101 where a tile leaves the image (dcb|abcd|cba), periodic when the tile is wider "
            "than the image: with P = 2 (L - 1), i -> i mod P, then P - i when that is >= L (L = 1: 0)",
            "window": "separable, w(k) for k = 0 .. tile - 1: w(k) = w(tile - 1 - k) = sin^2(pi (k + 1/2) / (2 o)) "
            "for k < o = min(overlap, tile // 2), else 1; stitched output = sum(window * tile) / sum(window)",
        },
        "preprocess": preprocess_spec(),
        "postprocess": {**postprocess_spec(model.get("task")), "before_after": BEFORE_AFTER},
        "model": model,
        fmt: target,
        "package_version": package_version,
        "torch_version": torch_version,
        "parity": parity,
    }


def preprocess_spec() -> dict[str, Any]:
    """What ``isp-collab process`` does to a frame before tiling it (:mod:`isp_collab.restore.exposure`)."""
    from ..restore.exposure import EXPOSURE_TARGET, MAX_GAIN

    return {
        "exposure_target": EXPOSURE_TARGET,
        "max_gain": MAX_GAIN,
        "level": "99th percentile of max(R, G, B) over the frame's pixels [::4, ::4] (all pixels when the frame "
        "is under 64 px on a side), interpolated linearly (numpy's default 'linear' method): with the n values "
        "sorted, v, and h = 0.99 (n - 1), level = v[floor h] + (h - floor h) (v[floor h + 1] - v[floor h])",
        "rule": "e = clip(exposure_target / level, 1, max_gain) (1 when level <= 0 or is not finite); restore "
        "frame * float32(e), a float32 multiply, and divide the stitched output by float32(e). Frames at least as "
        "bright as the target are untouched (e = 1)",
    }


def write_sidecar(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Write ``data`` as indented JSON atomically (temp file in the same folder + rename)."""
    text = json.dumps(data, indent=2, allow_nan=False, default=_jsonable) + "\n"
    return atomic_write_text(path, text, overwrite=True)


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a sidecar; raises ``ValueError`` naming the file when a key is missing."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: sidecar lacks {missing[0]!r}")
    return data
