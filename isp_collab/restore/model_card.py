"""What a model says about how to run it: its card, or an exported file's sidecar, and the defaults read from it.

A trained model's ``card.json`` names the gathering strategy it was trained for (``recommended_strategy``:
``mirror`` for lens models) and, for a lens calibrated off-axis, its ``optical_center`` as fractions of the
frame's width and height; an ONNX export's sidecar carries the card's keys in its ``model`` block and the
strategy and overlap the file was exported for in ``tiling``. ``restore`` uses them when the
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
    unreadable sidecar, or one whose tiling the file cannot run with, is a ValueError naming it."""
    sidecar = Path(onnx_path).with_name(Path(onnx_path).stem + ".json")
    if not sidecar.is_file():
        return {}, sidecar
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{sidecar}: cannot read the ONNX model's sidecar ({str(e).splitlines()[0]})") from None
    data = data if isinstance(data, dict) else {}
    _check_tiling(data.get("tiling"), sidecar)
    return data, sidecar


def _check_tiling(tiling: object, sidecar: Path) -> None:
    """The ``tiling`` block's strategy and overlap, checked once when the file is opened (not found wrong for every
    image it restores); absent values keep restore's defaults."""
    if not isinstance(tiling, dict):
        return
    strategy, overlap, tile = tiling.get("strategy"), tiling.get("overlap"), tiling.get("tile")
    if strategy is not None and strategy not in STRATEGIES:
        raise ValueError(f"{sidecar}: tiling.strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if overlap is None:
        return
    size = tile if type(tile) is int and tile > 0 else None
    if type(overlap) is not int or overlap < 0 or (size is not None and overlap > size // 2):
        bound = f"in [0, tile // 2 = {size // 2}]" if size else ">= 0"
        raise ValueError(f"{sidecar}: tiling.overlap must be an integer {bound}, got {overlap!r}")


def model_card(model: object, runner: object) -> dict[str, Any]:
    """How the model was trained to run: the card of a PyTorch model (``model.card``, the backend's ``card`` or
    its ``model.card``); for an ONNX backend, its sidecar's ``model`` block, with the gathering and overlap the file
    was exported for (``tiling.strategy`` as ``recommended_strategy``, ``tiling.overlap`` as
    ``exported_overlap``), as ``process --onnx`` and ``consume_onnx.py`` use them; else ``{}`` (an un-carded
    network, an ONNX file without a sidecar)."""
    card = (
        getattr(model, "card", None)
        or getattr(runner, "card", None)  # a backend of one's own (a wrapper, another runtime) may carry it
        or getattr(getattr(runner, "model", None), "card", None)
    )
    if isinstance(card, dict):
        return card
    path = getattr(runner, "path", None)
    if path is None or not str(path).lower().endswith(".onnx"):
        return {}
    data, _ = onnx_sidecar(path)
    block = dict(data["model"]) if isinstance(data.get("model"), dict) else {}
    tiling = data.get("tiling") if isinstance(data.get("tiling"), dict) else {}
    if tiling.get("strategy") in STRATEGIES:
        block["recommended_strategy"] = tiling["strategy"]
    overlap = tiling.get("overlap")
    if isinstance(overlap, int) and not isinstance(overlap, bool):
        block["exported_overlap"] = overlap
    return block


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


def center_in_pixels(fractions: tuple[float, float], width: int, height: int) -> tuple[float, float]:
    """A trained optical centre, (x, y) fractions of the width and height, as pixel-index coordinates of a
    ``width`` x ``height`` image (the centre of pixel (0, 0) is (0, 0)), kept inside the image."""
    fx, fy = fractions
    return (min(max(fx * width - 0.5, 0.0), width - 1.0), min(max(fy * height - 0.5, 0.0), height - 1.0))
