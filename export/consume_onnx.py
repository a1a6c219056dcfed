#!/usr/bin/env python3
"""Torch-free reference consumer of an exported isp-collab ONNX model (numpy + onnxruntime + OpenCV).

It does what an ISP integration has to do around the network, and is the reference for it:

1. read the sidecar ``NAME-nN-tT[-VARIANT].json`` next to the ``.onnx`` file (N, tile, overlap,
   gathering strategy, input/output names);
2. cut the linear-RGB image into a grid of ``tile x tile`` tiles overlapping by ``overlap`` pixels
   (reflect-101 padding where a tile leaves the image; the grid is mirror-symmetric about the
   image centre, or the optical centre for ``mirror``);
3. gather the tiles into stacks of N that share a blur (``spread``: N far-apart tiles; ``local``: N
   neighbours; ``mirror``: the four mirror positions about the optical centre, flipped into one
   orientation) and run each stack ``[1, N, 3, T, T]`` through ONNX Runtime;
4. stitch: every restored tile is multiplied by a separable window (1 in the middle, a Hann taper
   over the overlap) and the sum is divided by the accumulated window weight;
5. a frame darker than the sidecar's ``preprocess.exposure_target`` is restored at the gain that brings it
   there and divided back (steps 2-4 run on the brightened frame);
6. post-process as the sidecar's ``postprocess`` says (what ``isp-collab process`` does): ``luma``
   (sharpening models) keeps the luminance of the change only, measured in white-balanced space
   (``--wb-gains``; 1, 1, 1 by default), ``rgb`` (lens models) keeps the output as it is.

The stitched output equals ``isp_collab.restore.restore(image, model, backend="torch", ...)`` to
within 1e-4, and the ``luma`` step equals ``isp_collab.restore.detail.transfer_luma_detail`` (tested).
This file mirrors ``isp_collab/restore/tiling.py`` and ``gathering.py`` and imports nothing from
isp_collab (which needs torch).

Usage::

    python consume_onnx.py MODEL.onnx INPUT OUTPUT [--sidecar X.json] [--strategy S] [--center X,Y]
                           [--detail luma|rgb] [--wb-gains R,G,B] [--strength S] [--threads K] [--overwrite]

Images: ``.npy`` (H x W x 3 float linear RGB) and float ``.tif`` are linear RGB, and must be finite (the
checks of ``isp_collab.restore.check_image``); 8/16-bit ``.png`` / ``.jpg`` / ``.tif`` are sRGB-encoded:
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
import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

STRATEGIES = ("spread", "local", "mirror")
DETAILS = ("luma", "rgb")
REC709_LUMA = (0.2126, 0.7152, 0.0722)
NO_EXR = "the .exr format is not supported (OpenCV's wheels are built without OpenEXR): use .npy or a float .tif"


def _reason(e: BaseException) -> str:
    """The first line of an exception's message, or its type's name."""
    return str(e).splitlines()[0] if str(e).strip() else type(e).__name__


# --------------------------------------------------------------------------------------- tiling
def hann_taper_window(tile: int, overlap: int) -> np.ndarray:
    """(tile,) float64: 1 in the middle, ``sin^2(pi (k + 1/2) / (2 o))`` over o = min(overlap, tile // 2) at each end."""
    w = np.ones(tile, dtype=np.float64)
    o = min(overlap, tile // 2)
    if o > 0:
        ramp = np.sin(np.pi * (np.arange(o) + 0.5) / (2 * o)) ** 2
        w[:o] = ramp
        w[tile - o :] = ramp[::-1]
    return w


def axis_starts(length: int, tile: int, overlap: int, center2: int) -> list[int]:
    """Tile starts along one axis, mirror-symmetric about the centre ``center2 / 2`` (pixel-index units).

    Two layouts: a "seam" (two mirror tiles meeting at the centre, overlapping by ``overlap`` or
    ``overlap + 1``) or a tile centred on the centre (when ``center2 - tile + 1`` is even). Outwards
    the stride is ``tile - overlap`` until the axis plus a margin of ``overlap // 2`` is covered.
    The centred layout is used only when it has fewer tiles.
    """
    stride = tile - overlap
    lo, hi = -(overlap // 2), length - 1 + overlap // 2

    def layout(first_right: int) -> list[int]:
        starts, s = {first_right}, first_right
        while s + tile - 1 < hi:
            s += stride
            starts.add(s)
        s = first_right
        while True:
            m = center2 - s - tile + 1  # the mirror of the tile starting at s
            starts.add(m)
            if m <= lo:
                break
            s += stride
        return sorted(s for s in starts if s + tile > 0 and s < length)

    seam = layout((center2 + 1 - overlap) // 2)
    if (center2 - tile + 1) % 2 == 0:
        centred = layout((center2 - tile + 1) // 2)
        if len(centred) < len(seam):
            return centred
    return seam


@dataclass(frozen=True)
class Grid:
    """Tile starts ``ys`` x ``xs`` (tile i at ``(ys[i // len(xs)], xs[i % len(xs)])``), centre (x, y)."""

    height: int
    width: int
    tile: int
    overlap: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    center: tuple[float, float]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def position(self, index: int) -> tuple[int, int]:
        r, c = divmod(index, len(self.xs))
        return self.ys[r], self.xs[c]

    def index_of(self, y0: int, x0: int) -> int | None:
        if y0 in self.ys and x0 in self.xs:
            return self.ys.index(y0) * len(self.xs) + self.xs.index(x0)
        return None


def make_grid(height: int, width: int, tile: int, overlap: int, center: tuple[float, float] | None = None) -> Grid:
    """The tile grid of an ``height x width`` image; ``center`` (x, y) defaults to the image centre."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile={tile}), got {overlap}")
    if center is None:
        cx2, cy2 = width - 1, height - 1
    else:
        cx, cy = float(center[0]), float(center[1])
        if not (0 <= cx <= width - 1 and 0 <= cy <= height - 1):
            raise ValueError(f"centre ({cx:g}, {cy:g}) is outside the {width}x{height} image")
        cx2, cy2 = round(2 * cx), round(2 * cy)
    ys = axis_starts(height, tile, overlap, cy2)
    xs = axis_starts(width, tile, overlap, cx2)
    return Grid(height, width, tile, overlap, tuple(ys), tuple(xs), (cx2 / 2, cy2 / 2))


def reflect_index(idx: np.ndarray, length: int) -> np.ndarray:
    """Indices folded into [0, length) by reflect-101 padding (``dcb|abcd|cba``), periodically."""
    if length == 1:
        return np.zeros_like(idx)
    period = 2 * (length - 1)
    i = np.mod(idx, period)
    return np.where(i >= length, period - i, i)


def extract_tile(image: np.ndarray, y0: int, x0: int, tile: int) -> np.ndarray:
    """(3, tile, tile) patch of the H x W x 3 image at (y0, x0), reflect-padded outside the image."""
    rows = reflect_index(np.arange(y0, y0 + tile), image.shape[0])
    cols = reflect_index(np.arange(x0, x0 + tile), image.shape[1])
    return np.ascontiguousarray(image[np.ix_(rows, cols)].transpose(2, 0, 1))


def flip_tile(tile: np.ndarray, flip_x: bool, flip_y: bool) -> np.ndarray:
    """Flip (..., H, W) horizontally / vertically; its own inverse."""
    if flip_x:
        tile = tile[..., ::-1]
    if flip_y:
        tile = tile[..., ::-1, :]
    return tile


# ------------------------------------------------------------------------------------ gathering
def gilbert_order(rows: int, cols: int) -> list[tuple[int, int]]:
    """All (row, col) cells of a rows x cols grid along a generalised Hilbert curve (Cervený's gilbert)."""

    def sgn(v: int) -> int:
        return (v > 0) - (v < 0)

    def gen(x, y, ax, ay, bx, by):  # noqa: ANN001, ANN202 - direct port of the recursive algorithm
        w, h = abs(ax + ay), abs(bx + by)
        dax, day, dbx, dby = sgn(ax), sgn(ay), sgn(bx), sgn(by)
        if h == 1:
            for _ in range(w):
                yield x, y
                x, y = x + dax, y + day
            return
        if w == 1:
            for _ in range(h):
                yield x, y
                x, y = x + dbx, y + dby
            return
        ax2, ay2, bx2, by2 = ax // 2, ay // 2, bx // 2, by // 2
        w2, h2 = abs(ax2 + ay2), abs(bx2 + by2)
        if 2 * w > 3 * h:
            if w2 % 2 and w > 2:
                ax2, ay2 = ax2 + dax, ay2 + day
            yield from gen(x, y, ax2, ay2, bx, by)
            yield from gen(x + ax2, y + ay2, ax - ax2, ay - ay2, bx, by)
        else:
            if h2 % 2 and h > 2:
                bx2, by2 = bx2 + dbx, by2 + dby
            yield from gen(x, y, bx2, by2, ax2, ay2)
            yield from gen(x + bx2, y + by2, ax, ay, bx - bx2, by - by2)
            yield from gen(
                x + (ax - dax) + (bx2 - dbx), y + (ay - day) + (by2 - dby), -bx2, -by2, -(ax - ax2), -(ay - ay2)
            )

    if rows < 1 or cols < 1:
        return []
    cells = gen(0, 0, cols, 0, 0, rows) if cols >= rows else gen(0, 0, 0, rows, cols, 0)
    return [(y, x) for x, y in cells]


# A stack member: (tile index, (flip_x, flip_y), keep its output)
Member = tuple[int, tuple[bool, bool], bool]


def _pad(members: list[Member], n: int) -> list[Member]:
    """Complete to n members with repeats of kept members; the repeats' outputs are discarded."""
    kept = [m for m in members if m[2]] or members
    out = list(members)
    i = 0
    while len(out) < n:
        t, f, _ = kept[i % len(kept)]
        out.append((t, f, False))
        i += 1
    return out


def _mirror_orbits(grid: Grid) -> list[list[Member]]:
    """The tiles grouped by their four mirror positions about the centre, first-quadrant member first."""
    t = grid.tile
    c2x, c2y = round(2 * grid.center[0]), round(2 * grid.center[1])
    orbits: dict[tuple[int, int], list[Member]] = {}
    for y0 in grid.ys:
        for x0 in grid.xs:
            rx = x0 if 2 * x0 + t - 1 >= c2x else c2x - x0 - t + 1
            ry = y0 if 2 * y0 + t - 1 >= c2y else c2y - y0 - t + 1  # (+x, +y) quadrant, y down: as trained
            if (ry, rx) in orbits:
                continue
            members, seen = [], set()
            for fx, fy in ((False, False), (True, False), (False, True), (True, True)):
                idx = grid.index_of(c2y - ry - t + 1 if fy else ry, c2x - rx - t + 1 if fx else rx)
                if idx is None:
                    continue
                members.append((idx, (fx, fy), idx not in seen))
                seen.add(idx)
            orbits[(ry, rx)] = members
    rys, rxs = sorted({k[0] for k in orbits}), sorted({k[1] for k in orbits})
    rank = {cell: i for i, cell in enumerate(gilbert_order(len(rys), len(rxs)))}
    return [orbits[k] for k in sorted(orbits, key=lambda k: rank[(rys.index(k[0]), rxs.index(k[1]))])]


def gather_stacks(grid: Grid, n: int, strategy: str) -> list[list[Member]]:
    """Stacks of exactly n members; every tile is kept in exactly one stack."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown gathering strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if n == 1:
        return [[(i, (False, False), True)] for i in range(len(grid))]
    if strategy in ("spread", "local"):
        cols = len(grid.xs)
        order = [r * cols + c for r, c in gilbert_order(len(grid.ys), cols)]
        if strategy == "local":
            groups = [order[i : i + n] for i in range(0, len(order), n)]
        else:
            k = -(-len(order) // n)
            groups = [order[i::k] for i in range(k)]
        return [_pad([(t, (False, False), True) for t in g], n) for g in groups]
    orbits = _mirror_orbits(grid)
    stacks = []
    if n < 4:
        for orbit in orbits:
            for i in range(0, len(orbit), n):
                chunk = orbit[i : i + n]
                if any(m[2] for m in chunk):
                    stacks.append(_pad(chunk, n))
    else:
        per = n // 4
        for i in range(0, len(orbits), per):
            stacks.append(_pad([m for o in orbits[i : i + per] for m in o], n))
    return stacks


# ----------------------------------------------------------------------------------- restoring
def check_image(image: np.ndarray, name: str | os.PathLike = "image") -> np.ndarray:
    """A finite float H x W x 3 image as float32 (as ``isp_collab.restore.check_image``); ValueError naming ``name``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"{name}: must be a non-empty H x W x 3 image, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{name}: must be float linear RGB, got dtype {image.dtype} (convert and linearise first)")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image.sum(dtype=np.float64)):  # NaN / inf propagate through the sum
        raise ValueError(f"{name}: contains NaN or infinite values")
    return image


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
    return data


class OnnxRestorer:
    """Restore whole linear-RGB images with an exported model, tile by tile, as its sidecar says."""

    def __init__(
        self, onnx_path: str | os.PathLike, sidecar: str | os.PathLike | None = None, threads: int | None = None
    ) -> None:
        self.path = Path(onnx_path)
        self.sidecar = Path(sidecar) if sidecar else self.path.with_suffix(".json")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX model file")
        self.meta = read_sidecar(self.path, self.sidecar)
        try:
            tiling = self.meta["tiling"]
            self.n, self.tile = int(tiling["n"]), int(tiling["tile"])
            self.overlap, self.strategy = int(tiling["overlap"]), str(tiling["strategy"])
            self.input_name, self.output_name = str(self.meta["input"]["name"]), str(self.meta["output"]["name"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{self.sidecar}: malformed sidecar ({type(e).__name__}: {_reason(e)})") from None
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
        shape = list(self.session.get_inputs()[0].shape)
        if shape != [1, self.n, 3, self.tile, self.tile]:
            raise ValueError(f"{self.path}: input shape {shape} does not match the sidecar (N={self.n}, T={self.tile})")

    def run_stack(self, stack: np.ndarray) -> np.ndarray:
        """(N, 3, T, T) float32 linear RGB -> restored (N, 3, T, T)."""
        return self.session.run([self.output_name], {self.input_name: stack[None]})[0][0]

    def __call__(
        self, image: np.ndarray, strategy: str | None = None, center: tuple[float, float] | None = None
    ) -> np.ndarray:
        """H x W x 3 float32 linear RGB -> restored H x W x 3 float32 linear RGB.

        ``strategy`` defaults to the sidecar's; ``center`` (x, y) is the optical centre for
        ``mirror`` in pixel-index coordinates (default: the image centre).
        """
        image = check_image(image)
        strategy = strategy or self.strategy
        h, w = image.shape[:2]
        t = self.tile
        grid = make_grid(h, w, t, self.overlap, center if strategy == "mirror" else None)
        win = hann_taper_window(t, self.overlap)
        win2d = np.outer(win, win).astype(np.float32)[..., None]
        acc = np.zeros((h, w, 3), dtype=np.float32)
        stack = np.empty((self.n, 3, t, t), dtype=np.float32)
        for members in gather_stacks(grid, self.n, strategy):
            for m, (idx, (fx, fy), _) in enumerate(members):
                stack[m] = flip_tile(extract_tile(image, *grid.position(idx), t), fx, fy)
            out = self.run_stack(stack)
            for m, (idx, (fx, fy), keep) in enumerate(members):
                if not keep:
                    continue
                y0, x0 = grid.position(idx)
                ya, yb, xa, xb = max(y0, 0), min(y0 + t, h), max(x0, 0), min(x0 + t, w)
                part = flip_tile(out[m], fx, fy)[:, ya - y0 : yb - y0, xa - x0 : xb - x0].transpose(1, 2, 0)
                acc[ya:yb, xa:xb] += part * win2d[ya - y0 : yb - y0, xa - x0 : xb - x0]
        # normalise by the accumulated window weight, separable: (sum_i wy_i(y)) * (sum_j wx_j(x))
        wy, wx = np.zeros(h), np.zeros(w)
        for weights, starts, length in ((wy, grid.ys, h), (wx, grid.xs, w)):
            for s in starts:
                a, b = max(s, 0), min(s + t, length)
                weights[a:b] += win[a - s : b - s]
        inv_x = (1.0 / wx).astype(np.float32)
        for y in range(h):
            acc[y] *= (inv_x * np.float32(1.0 / wy[y]))[:, None]
        return acc


def transfer_luma_detail(
    before: np.ndarray,
    after: np.ndarray,
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
    weights: tuple[float, float, float] = REC709_LUMA,
) -> np.ndarray:
    """H x W x 3 linear camera RGB: ``before`` plus only the luma of ``after - before``, in white-balanced space."""
    g = np.asarray(wb_gains, dtype=np.float32)
    d_luma = ((after - before) * g) @ np.asarray(weights, dtype=np.float32)
    return np.ascontiguousarray(before + d_luma[..., None] / g, dtype=np.float32)


def exposure_gain(meta: dict, image: np.ndarray) -> float:
    """The sidecar's ``preprocess`` gain for ``image`` (what ``isp-collab process`` applies before tiling;
    mirrors ``isp_collab/restore/exposure.py``); 1 for sidecars without one."""
    spec = meta.get("preprocess") or {}
    target, max_gain = float(spec.get("exposure_target", 0.0)), float(spec.get("max_gain", 1.0))
    if not target > 0:
        return 1.0
    sample = image[::4, ::4] if min(image.shape[:2]) >= 64 else image
    level = float(np.percentile(sample.max(axis=2), 99))
    if not level > 0 or not np.isfinite(level):
        return 1.0
    return float(np.clip(target / level, 1.0, max_gain))


def postprocess(
    meta: dict,
    before: np.ndarray,
    after: np.ndarray,
    detail: str | None = None,
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """The sidecar's ``postprocess`` step (or ``detail`` when given); sidecars without one mean ``rgb``."""
    spec = meta.get("postprocess") or {}
    detail = detail or spec.get("detail", "rgb")
    if detail not in DETAILS:
        raise ValueError(f"unknown detail {detail!r}: choose from {', '.join(DETAILS)}")
    if detail == "rgb":
        return after
    return transfer_luma_detail(before, after, wb_gains, tuple(spec.get("luma_weights", REC709_LUMA)))


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


# ----------------------------------------------------------------------------------------- I/O
def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.maximum(x, 1e-12) ** (1 / 2.4) - 0.055).astype(np.float32)


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """Send what C libraries print on file descriptor 2 to /dev/null for the block (Python's stderr is kept).

    The same fd juggling as ``isp_collab.native_stderr``, kept here on purpose: this file imports nothing from
    ``isp_collab`` (whose package import pulls in torch), so it runs with numpy, OpenCV and onnxruntime only."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2: nothing to silence
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int, bool]:
    """-> (H x W x 3 float32 linear RGB, bit depth: 0 for float files, else 8 / 16 of the sRGB file, greyscale file).

    Image files are turned upright by their EXIF orientation; an alpha channel is dropped with a warning.
    """
    path = Path(path)
    if path.suffix.lower() == ".exr":
        raise ValueError(f"{path}: {NO_EXR}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    if path.suffix.lower() == ".npy":
        try:
            image = np.load(path)  # allow_pickle=False: object arrays are refused
        except (OSError, ValueError, EOFError) as e:
            raise ValueError(f"{path}: cannot read the .npy file ({_reason(e)})") from None
        return check_image(image, path), 0, False
    import cv2

    data = np.fromfile(path, dtype=np.uint8)  # imdecode, not imread: OpenCV 5's imread fails on rotated TIFFs
    # ANYDEPTH | ANYCOLOR: 8/16-bit or float as stored, 2-D when grey, alpha dropped, EXIF orientation applied
    with _c_stderr_silenced():  # libpng prints "libpng error: ..." for a truncated file; we report it in one line
        img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if data.size else None
        stored = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if img is not None else None  # as stored, with alpha
    if stored is None:
        if Path(path).suffix.lower() in RAW_SUFFIXES:
            raise ValueError(
                f"{path}: a camera RAW file; this consumer reads PNG / JPEG / TIFF (use isp-collab process)"
            )
        raise ValueError(f"{path}: cannot decode the image (not a PNG / JPEG / TIFF, or corrupt)")
    channels = 1 if stored.ndim == 2 else stored.shape[2]
    grey = channels <= 2 or (data[:8].tobytes() == b"\x89PNG\r\n\x1a\n" and data[25] == 4)  # PNG grey + alpha
    if channels in (2, 4):
        print(f"consume_onnx: warning: {path}: the alpha channel is dropped", file=sys.stderr)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img[..., ::-1]  # BGR -> RGB
    if np.issubdtype(img.dtype, np.floating):
        return check_image(img, path), 0, False
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: unsupported sample type {img.dtype} (8/16-bit integers or float only)")
    depth = 16 if img.dtype == np.uint16 else 8
    return srgb_to_linear(img.astype(np.float32) / (2**depth - 1)), depth, grey


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# camera RAW files (LibRaw's usual suffixes), named in the error when one is given as input
RAW_SUFFIXES = {".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw", ".kdc", ".raw"}


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written: .exr, a missing folder, an existing file."""
    path = Path(path)
    if path.suffix.lower() == ".exr":
        raise ValueError(f"{path}: {NO_EXR}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the output folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise ValueError(f"{path}: output exists (pass --overwrite to replace it)")
    return path


def write_image(
    path: str | os.PathLike, image: np.ndarray, depth: int = 8, overwrite: bool = False, grey: bool = False
) -> None:
    """Write linear RGB: ``.npy`` / ``.tif`` (with depth 0) as float; others sRGB-encoded 8/16-bit, one
    channel when ``grey`` (OpenCV's ``RGB2GRAY`` luma of the encoded image, as ``isp-collab process``).

    Atomic (encoded in memory, written to a temporary file beside ``path``, then renamed or hard-linked);
    an existing ``path`` is replaced only with ``overwrite``.
    """
    path = check_output(path, overwrite)
    ext = path.suffix.lower()
    if ext == ".npy":
        buf = io.BytesIO()
        np.save(buf, image.astype(np.float32))
        payload = buf.getvalue()
    else:
        import cv2

        if ext in (".tif", ".tiff") and depth == 0:
            data = image[..., ::-1].astype(np.float32)
        else:
            depth = 16 if depth == 16 and ext in (".png", ".tif", ".tiff") else 8
            srgb = linear_to_srgb(image)
            srgb = cv2.cvtColor(srgb, cv2.COLOR_RGB2GRAY) if grey else srgb[..., ::-1]  # RGB -> grey / BGR
            data = np.round(srgb * (2**depth - 1)).astype(np.uint16 if depth == 16 else np.uint8)
        try:
            ok, encoded = cv2.imencode(ext, data)
        except cv2.error:
            ok = False
        if not ok:
            raise ValueError(f"{path}: cannot encode the image as {ext or 'an image (no extension)'}")
        payload = encoded.tobytes()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and never replaces a file that appeared meanwhile
            except FileExistsError:
                raise ValueError(f"{path}: output exists (pass --overwrite to replace it)") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Restore an image with an exported isp-collab ONNX model (no torch).")
    p.add_argument("model", help="exported .onnx file (its sidecar .json must sit next to it)")
    p.add_argument("input", help=".npy / float .tif (linear RGB) or 8/16-bit .png/.jpg/.tif (sRGB)")
    p.add_argument("output", help="output image, same conventions")
    p.add_argument("--sidecar", help="sidecar JSON (default: MODEL with .json)")
    p.add_argument("--strategy", choices=STRATEGIES, help="gathering strategy (default: the sidecar's)")
    p.add_argument(
        "--center",
        help="optical centre X,Y in pixels, for --strategy mirror (default: the sidecar's model optical_center, "
        "else the image centre; that point is the sensor's: for an image turned upright by its EXIF orientation "
        "and an off-centre lens, give the turned point here)",
    )
    p.add_argument(
        "--detail", choices=DETAILS, help="after stitching: luma or rgb (default: the sidecar's postprocess)"
    )
    p.add_argument("--wb-gains", help="white-balance gains R,G,B of the frame, for --detail luma (default: 1,1,1)")
    p.add_argument(
        "--strength",
        type=float,
        help="keep this much of the change after the detail step, 0..2 (default 1), as isp-collab process --strength",
    )
    p.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads, >= 1 (default: ORT's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = p.parse_args(argv)
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
        detail = args.detail or (restorer.meta.get("postprocess") or {}).get("detail", "rgb")
        if args.wb_gains and detail != "luma":
            raise ValueError(f"--wb-gains: applies to --detail luma only (this run keeps {detail})")
        image, depth, grey = read_image(args.input)
        h, w = image.shape[:2]
        if center and not (0 <= center[0] <= w - 1 and 0 <= center[1] <= h - 1):
            raise ValueError(f"--center: ({center[0]:g}, {center[1]:g}) is outside the {w}x{h} image {args.input}")
        trained = (restorer.meta.get("model") or {}).get("optical_center")  # fractions of width and height
        if center is None and strategy == "mirror" and isinstance(trained, list) and len(trained) == 2:
            center = (float(trained[0]) * w - 0.5, float(trained[1]) * h - 0.5)  # the lens's axis, as trained
        gain = exposure_gain(restorer.meta, image)  # a dark frame is restored brighter, then divided back
        restored = restorer(image * np.float32(gain), strategy, center) / np.float32(gain)
        out = postprocess(restorer.meta, image, restored, detail, gains)
        if args.strength is not None and args.strength != 1:
            out = image + np.float32(args.strength) * (out - image)
        write_image(args.output, out, depth, args.overwrite, grey)
    except (ValueError, OSError) as e:  # FileNotFoundError is an OSError
        print(f"consume_onnx: error: {_reason(e)}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
