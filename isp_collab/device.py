"""Device selection: CUDA when available, else CPU. Nothing in the package assumes a GPU."""

from __future__ import annotations

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` ('cpu', 'cuda', 'cuda:1') or None for the best available device.

    Raises:
        ValueError: (one line) for a name that is not a device, or a device this machine or this
            PyTorch build cannot use (``mps`` without MPS support, ``cuda:K`` past the device count).
    """
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"device {requested!r}: not a device name (use cpu, cuda or cuda:K)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device {requested!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
        return dev
    if dev.type == "meta":
        raise ValueError(f"device {requested!r}: holds no data; use cpu, cuda or cuda:K")
    if dev.type != "cpu":
        try:  # mps, xpu, ...: usable only when this PyTorch build and machine support them
            torch.empty(1, device=dev)
        except (RuntimeError, AssertionError, AttributeError):
            raise ValueError(f"device {requested!r}: not available in this PyTorch build or on this machine") from None
    return dev
