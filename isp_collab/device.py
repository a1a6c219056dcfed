"""Device selection: CUDA when available, else CPU. Nothing in the package assumes a GPU."""

from __future__ import annotations

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` ('cpu', 'cuda', 'cuda:1') or None for the best available device."""
    if requested:
        try:
            dev = torch.device(requested)
        except RuntimeError:
            raise ValueError(f"device {requested!r}: not a device name (use cpu, cuda or cuda:K)") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
