"""Runtimes that execute the network on stacks of tiles, behind one interface.

A backend has ``run(stacks) -> restored`` with ``stacks`` a ``(S, N, 3, T, T)`` float32 numpy array
of linear-RGB tiles and the result the same shape, dtype and colour space. ``n`` / ``tile`` tell
the fixed stack size and tile size a backend requires (None: any).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # torch is imported where a torch network runs: the ONNX path never loads it
    import torch
    from torch import nn


@runtime_checkable
class Backend(Protocol):
    """Anything that restores ``(S, N, 3, T, T)`` float32 stacks into the same shape.

    ``n`` / ``tile``: the stack size and tile size it requires (None: any); ``multiple``: what H and W must be a
    multiple of (2**depth for a UNet).
    """

    n: int | None
    tile: int | None
    multiple: int

    def run(self, stacks: np.ndarray) -> np.ndarray:
        """``stacks``: (S, N, 3, T, T) float32 linear RGB tiles, S stacks of N tiles sharing a blur (about [0, 1],
        not clipped); returns the restored tiles, same shape, dtype and colour space."""
        ...


# Default memory format per device type. CPU: channels-last measured faster for UNet-TX N=4 on
# 4 stacks of 4 x 256^2 tiles on this project's 2-core AMD EPYC (min of interleaved runs, a loaded
# machine, s per batch: 5.4 vs 7.8 and 4.2 vs 5.8 unfused, 3.6 vs 4.8 with BN folded; see
# `bench_restore.py --formats`).
# CUDA: measured on an H200 (`bench speed`, whole 512x512 image, ms/MP NCHW vs channels-last, two runs:
# N=1 144/140 and 101/96, N=4 169/180 and 233/139, N=8 271/241 and 226/227; benchmarks/cuda-h200/): the
# format matters less than run-to-run noise, so PyTorch's own default (NCHW) is kept.
CHANNELS_LAST_DEFAULT = {"cpu": True, "cuda": False}


class TorchBackend:
    """Run a :class:`~isp_collab.models.CollaborativeUNet` (or any module taking (B, N, 3, H, W)) with torch.

    ``device``: None picks CUDA when available, else CPU. ``channels_last``: None uses the measured
    default for the device type. The network runs on a private copy in eval mode, BatchNorm folded
    into the convolutions, under ``torch.inference_mode``: the caller's module is never modified
    (device, memory format, train/eval mode, weights). A network in another float dtype (``.half()``,
    ``.double()``) gets the stacks in its dtype and gives float32 back.
    """

    def __init__(
        self, model: nn.Module, device: str | torch.device | None = None, channels_last: bool | None = None
    ) -> None:
        import torch

        from ..device import pick_device
        from ..models.fold import fold_batchnorm_inplace

        self.device = pick_device(str(device) if device is not None else None)
        if channels_last is None:
            channels_last = CHANNELS_LAST_DEFAULT.get(self.device.type, False)
        self.channels_last = bool(channels_last)
        # the copy costs the weights once (a few MB) and keeps the caller's module untouched
        net = fold_batchnorm_inplace(copy.deepcopy(model).eval()).to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.model = net
        # the dtype the network computes in (its first float parameter; float32 for one without)
        self.dtype = next((p.dtype for p in net.parameters() if p.is_floating_point()), torch.float32)
        self.n = None  # a torch model runs at any N and tile size
        self.tile = None
        self.multiple = int(getattr(model, "multiple", 1))
        self.pooling = str(getattr(getattr(model, "config", None), "pooling", "max"))

    def run(self, stacks: np.ndarray) -> np.ndarray:
        """``(S, N, 3, T, T)`` float32 linear RGB -> restored, same shape and dtype."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(stacks, dtype=np.float32)).to(self.device, self.dtype)
        with torch.inference_mode():
            y = self.model(x)
        return y.float().cpu().numpy()


def onnx_providers(device: str | None = None) -> list:
    """ONNX Runtime execution providers for a device name: None the best available (CUDA when this ONNX Runtime
    has its provider, else CPU), ``"cpu"`` the CPU alone, ``"cuda"`` / ``"cuda:K"`` that GPU (CPU for the
    operators it lacks).

    Raises:
        ValueError: (one line) for another device, or CUDA with an ONNX Runtime without its provider.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    cuda = "CUDAExecutionProvider" in available
    name = "" if device is None else str(device)
    if not name:
        return (["CUDAExecutionProvider"] if cuda else []) + ["CPUExecutionProvider"]
    if name == "cpu":
        return ["CPUExecutionProvider"]
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"device {name!r}: the onnx backend runs on cpu, cuda or cuda:K")
    if not cuda:
        raise ValueError(
            f"device {name!r}: this ONNX Runtime has no CUDA provider (install onnxruntime-gpu, or use device 'cpu')"
        )
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]


class OnnxBackend:
    """Run an exported ONNX model with ONNX Runtime.

    The model has input ``stack`` and output ``restored`` (``isp-collab export``, export/README.md), usually of a
    static shape ``[B, N, 3, T, T]``; ``n`` and ``tile`` then come from the file. With a static B
    (exported models use 1) stacks are run B at a time, the last group padded with repeats.
    ``providers`` (ONNX Runtime execution providers) default to those of ``device``
    (:func:`onnx_providers`: None is CUDA when ONNX Runtime has it, else CPU); ``threads`` sets the
    intra-op thread count (None: ONNX Runtime's default).
    """

    INPUT, OUTPUT = "stack", "restored"

    def __init__(
        self,
        path: str | os.PathLike,
        providers: list | None = None,
        threads: int | None = None,
        device: str | None = None,
    ) -> None:
        import onnxruntime as ort  # imported here: slow to import, and only this backend needs it

        self.path = Path(path)
        if self.path.is_dir():  # a Core ML .mlpackage or a model folder is not an .onnx file
            kind = "a Core ML package" if self.path.suffix == ".mlpackage" else "a folder"
            raise ValueError(f"{self.path}: is {kind}, not an ONNX model file (.onnx)")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX model file")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
        if providers is None:
            providers = onnx_providers(device)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own exception types for corrupt/invalid files
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ValueError(f"{self.path}: cannot load ONNX model ({reason})") from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if self.INPUT not in inputs or self.OUTPUT not in outputs:
            raise ValueError(
                f"{self.path}: expected input {self.INPUT!r} and output {self.OUTPUT!r}, "
                f"found inputs {sorted(inputs)} and outputs {sorted(outputs)}"
            )
        shape = inputs[self.INPUT].shape
        if len(shape) != 5:
            raise ValueError(f"{self.path}: input {self.INPUT!r} must be 5-D (B, N, 3, T, T), got {shape}")

        def static(d: object) -> int | None:  # symbolic dims are strings or None
            return d if isinstance(d, int) and d > 0 else None

        self.batch, self.n, tile_h, tile_w = static(shape[0]), static(shape[1]), static(shape[3]), static(shape[4])
        if tile_h != tile_w:
            raise ValueError(f"{self.path}: tiles must be square, got input shape {shape}")
        self.tile = tile_h
        self.multiple = 1  # a static file dictates the tile; a dynamic one gives no depth to check

    def run(self, stacks: np.ndarray) -> np.ndarray:
        """``(S, N, 3, T, T)`` float32 linear RGB -> restored, same shape and dtype."""
        stacks = np.ascontiguousarray(stacks, dtype=np.float32)
        s, n, _, th, tw = stacks.shape
        if (self.n is not None and n != self.n) or (self.tile is not None and (th, tw) != (self.tile, self.tile)):
            raise ValueError(
                f"{self.path}: model takes stacks of N={self.n}, tile {self.tile}; got N={n}, tile {th}x{tw}"
            )
        b = self.batch or s  # dynamic batch: everything at once
        out = np.empty_like(stacks)
        for i in range(0, s, b):
            chunk = stacks[i : i + b]
            k = len(chunk)
            if k < b:  # static batch: pad with repeats, drop their outputs
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - k, axis=0)])
            out[i : i + k] = self.session.run([self.OUTPUT], {self.INPUT: chunk})[0][:k]
        return out
