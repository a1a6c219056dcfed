"""What a model says about how to run it: its card, or an exported file's sidecar, and the defaults read from it.

A trained model's ``card.json`` (and the ``model`` block of an ONNX export's sidecar) names the gathering
strategy it was trained for (``recommended_strategy``: ``mirror`` for lens models) and, for a lens calibrated
off-axis, its ``optical_center`` as fractions of the frame's width and height. ``restore`` uses them when the
caller does not say otherwise, as ``isp-collab process`` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .gathering import STRATEGIES


def onnx_sidecar(onnx_path: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """The export sidecar beside ``onnx_path`` (``x.onnx`` -> ``x.json``; blocks such as ``model`` and
    ``tiling``, see :mod:`isp_collab.export.sidecar`), ``{}`` when there is none; and its path. An
    unreadable sidecar is a ValueError naming it."""
    sidecar = Path(onnx_path).with_name(Path(onnx_path).stem + ".json")
    if not sidecar.is_file():
        return {}, sidecar
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{sidecar}: cannot read the ONNX model's sidecar ({str(e).splitlines()[0]})") from None
    return (data if isinstance(data, dict) else {}), sidecar


def model_info(model: object, runner: object) -> dict[str, Any]:
    """The card of a PyTorch model (``model.card`` or the backend's ``model.card``), else the ``model`` block of
    an ONNX backend's sidecar, else ``{}`` (an un-carded network, an ONNX file without a sidecar)."""
    card = getattr(model, "card", None) or getattr(getattr(runner, "model", None), "card", None)
    if isinstance(card, dict):
        return card
    path = getattr(runner, "path", None)
    if path is not None and str(path).endswith(".onnx"):
        data, _ = onnx_sidecar(path)
        block = data.get("model")
        return block if isinstance(block, dict) else {}
    return {}


def default_strategy(card: dict[str, Any]) -> str:
    """Gathering strategy for a model: the card's ``recommended_strategy`` (or ``strategy``), else
    ``mirror`` for lens models, else ``spread``."""
    for key in ("recommended_strategy", "strategy"):
        if card.get(key) in STRATEGIES:
            return card[key]
    return "mirror" if str(card.get("task", "")).startswith("lens") else "spread"


def trained_center(card: dict[str, Any]) -> tuple[float, float] | None:
    """The card's ``optical_center`` (x, y) as fractions of the width and height, or None (absent or malformed)."""
    value = card.get("optical_center")
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in value)
    ):
        return float(value[0]), float(value[1])
    return None
