"""Training checkpoints: everything needed to continue a run exactly, written atomically."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import OutputError, atomic_path


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save to a temp file in the same folder, then rename: a crash never leaves half a file.

    The file is readable by others (0644, like model files), so colleagues can resume or inspect a run.
    Raises :class:`~isp_collab.atomic.OutputError` (one line naming ``path``) when it cannot be written.
    """
    with atomic_path(path, mode=0o644) as tmp:
        try:
            torch.save(state, tmp)
        except (RuntimeError, OSError) as e:  # torch reports a full disk as a RuntimeError
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise OutputError(f"{path}: cannot write the checkpoint ({reason})") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state :func:`save_checkpoint` wrote (tensors on the CPU); ValueError (one line) for an unreadable file.

    Unpickles with ``weights_only=False``: load only checkpoints you trust.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        reason = str(e).splitlines()[0][:120] if str(e) else ""
        raise ValueError(
            f"{path}: unreadable checkpoint ({e.__class__.__name__}{': ' + reason if reason else ''})"
        ) from None


def rng_state() -> dict[str, Any]:
    """The global torch (CPU), numpy and Python random states, for a checkpoint."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back the random states :func:`rng_state` took."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
