"""Parity of an exported ONNX file with the PyTorch model, on random and on real stacks.

The reference is the *original* PyTorch model (BatchNorm not folded) in float32. ``random``:
uniform [0, 1) stacks; ``real``: blurry validation stacks from :mod:`.calibration`. Figures are max
and mean absolute differences and the PSNR of the exported output against PyTorch's.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from ..models import CollaborativeUNet
from .calibration import ValStack, validation_stacks
from .onnx_export import INPUT_NAME, OUTPUT_NAME

FP32_TOLERANCE = 1e-4


def onnx_session(path: str | os.PathLike, threads: int | None = None) -> ort.InferenceSession:
    """A CPU ONNX Runtime session (``threads``: intra-op threads, None = ORT's default)."""
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(Path(path)), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(session: ort.InferenceSession, stack: np.ndarray) -> np.ndarray:
    """stack (1, N, 3, T, T) float32 -> restored, same shape."""
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(stack, dtype=np.float32)})[0]


@torch.no_grad()
def run_torch(model: CollaborativeUNet, stack: np.ndarray) -> np.ndarray:
    """stack (B, N, 3, T, T) float32 -> the PyTorch model's output (run on its device), same shape."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)).to(device)
    return model.eval()(x).cpu().numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of ``a`` against ``b`` on the [0, 1] range (inf when identical; ``None`` in parity dicts)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def random_stacks(n: int, tile: int, count: int = 1, seed: int = 0) -> list[np.ndarray]:
    """``count`` uniform [0, 1) float32 stacks (1, n, 3, tile, tile)."""
    rng = np.random.default_rng(seed)
    return [rng.random((1, n, 3, tile, tile), dtype=np.float32) for _ in range(count)]


def _diffs(outs: list[np.ndarray], refs: list[np.ndarray]) -> dict[str, float]:
    d = np.concatenate([np.abs(o - r).ravel() for o, r in zip(outs, refs, strict=True)])
    cat = np.concatenate([o.ravel() for o in outs]), np.concatenate([r.ravel() for r in refs])
    p = psnr(*cat)
    return {
        "max_abs": float(d.max()),
        "mean_abs": float(d.mean()),
        "psnr_db": round(p, 2) if math.isfinite(p) else None,
    }


def measure_parity(
    path: str | os.PathLike,
    model: CollaborativeUNet,
    n: int,
    tile: int,
    *,
    real: list[ValStack] | None = None,
    count: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """ONNX Runtime (CPU) vs PyTorch on ``count`` random and ``count`` real stacks.

    ``real`` defaults to :func:`validation_stacks` (seed ``seed + 1``). Returns
    ``{"reference", "random": {"max_abs", "mean_abs", "psnr_db"}, "real": {...}, "real_source",
    "real_kind", "quality"}``; ``real_kind`` is ``"photos"`` or ``"synthetic"`` (no photos found) and
    ``quality`` the restoration PSNR against the real stacks' sharp tiles: ``psnr_db`` of the exported
    file, ``torch_psnr_db`` of PyTorch, ``delta_db`` their difference (what the variant costs).
    """
    session = onnx_session(path)
    rand = random_stacks(n, tile, count, seed)
    real = real if real is not None else validation_stacks(n, tile, count, seed=seed + 1)
    out: dict[str, Any] = {
        "reference": "PyTorch float32 (unfolded), CPU",
        "runtime": f"onnxruntime {ort.__version__} CPU",
    }
    for label, stacks in (("random", rand), ("real", [s.blurry for s in real])):
        outs = [run_onnx(session, s) for s in stacks]
        refs = [run_torch(model, s) for s in stacks]
        out[label] = {**_diffs(outs, refs), "stacks": len(stacks)}
    out["real_source"] = sorted({s.name for s in real})
    out["real_kind"] = "synthetic" if any(s.name.startswith("synthetic") for s in real) else "photos"
    sharp = np.concatenate([s.sharp.ravel() for s in real])
    exported, reference = (
        psnr(np.concatenate([o.ravel() for o in outs]), sharp),
        psnr(np.concatenate([r.ravel() for r in refs]), sharp),
    )
    blurry = psnr(np.concatenate([s.blurry.ravel() for s in real]), sharp)
    out["quality"] = {
        "psnr_db": round(exported, 3),
        "torch_psnr_db": round(reference, 3),
        "blurry_psnr_db": round(blurry, 3),  # the input itself: what the model must beat
        "delta_db": round(exported - reference, 3) + 0.0,  # + 0.0: no "-0.0"
        "against": f"the sharp tiles of the {len(real)} real stacks (linear RGB, [0, 1] peak)",
        "scope": "photos at their usual exposure (99th percentile near 0.5); darker frames, where an int8 "
        "variant loses more, are not covered: check a variant on your own exposures",
    }
    return out


def measure_coreml_parity(
    path: str | os.PathLike, model: CollaborativeUNet, n: int, tile: int, *, count: int = 2, seed: int = 0
) -> dict[str, Any]:
    """Core ML vs PyTorch like :func:`measure_parity` — on macOS only; elsewhere a ``status`` line."""
    from .coreml_export import coreml_prediction_available, predict_coreml

    if not coreml_prediction_available():
        return {"status": "not measured: running a Core ML package needs macOS (spec validated instead)"}
    rand = random_stacks(n, tile, count, seed)
    real = [s.blurry for s in validation_stacks(n, tile, count, seed=seed + 1)]
    out: dict[str, Any] = {"reference": "PyTorch float32 (unfolded), CPU", "runtime": "Core ML"}
    for label, stacks in (("random", rand), ("real", real)):
        out[label] = {**_diffs([predict_coreml(path, s) for s in stacks], [run_torch(model, s) for s in stacks])}
    return out
