"""``isp-collab process``'s flags and ``--config`` file -> the :class:`~isp_collab.pipeline.Pipeline` they describe.

Refusals are one line naming the flag (``ValueError``); the file is read first, flags win over it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import TYPE_CHECKING

from ..pipeline.collaborative import MAX_N, MAX_TILE
from ..pipeline.stages import MAX_GAIN_RATIO

if TYPE_CHECKING:
    from ..pipeline import Pipeline

RESTORATION = ("sharpen", "lens", "unsharp")
NETWORK_STAGES = ("lens", "sharpen")


def build_pipeline(args: argparse.Namespace) -> Pipeline:
    """The :class:`~isp_collab.pipeline.Pipeline` the arguments describe (config file, then flags)."""
    from ..pipeline import Demosaic, Encode, Pipeline

    pipeline = Pipeline.from_toml(args.config) if args.config else Pipeline()
    wanted: set[str] | None = None
    if args.stages is not None:
        if not args.stages.strip(" ,"):
            raise ValueError("--stages: empty (name the stages, or 'none' to run no restoration)")
        names = {s.strip() for s in args.stages.split(",") if s.strip()}
        if "none" in names and len(names) > 1:
            raise ValueError(f"--stages {args.stages}: 'none' runs no restoration; it cannot be combined with stages")
        wanted = names - {"none"}
        unknown = wanted - set(RESTORATION)
        if unknown:
            raise ValueError(
                f"--stages: unknown stage {sorted(unknown)[0]!r} (choose from {', '.join(RESTORATION)}, none)"
            )
    elif not args.config:
        wanted = {_onnx_stage(args.onnx)} if args.onnx is not None else {"sharpen"}
    if args.n is not None and not 1 <= args.n <= MAX_N:
        raise ValueError(f"--n must be between 1 and {MAX_N}, got {args.n}")
    if args.tile is not None and not 1 <= args.tile <= MAX_TILE:
        raise ValueError(f"--tile must be between 1 and {MAX_TILE}, got {args.tile}")
    backend = args.backend
    if args.onnx is not None:
        if backend == "torch":
            raise ValueError("--onnx needs --backend onnx (got --backend torch)")
        backend = "onnx"  # --onnx alone implies the ONNX backend
    for name in RESTORATION:
        stage = getattr(pipeline, name)
        changes = {} if wanted is None else {"enabled": name in wanted}
        if name in NETWORK_STAGES:
            model = args.model if name == "sharpen" else args.lens_model
            extra = dict(model=model, n=args.n, tile=args.tile, backend=backend)
            changes.update({k: v for k, v in extra.items() if v is not None})
        setattr(pipeline, name, dataclasses.replace(stage, **changes))
    running = {name for name in NETWORK_STAGES if getattr(pipeline, name).enabled}
    for flag, value, stages in (
        ("--model", args.model, {"sharpen"}),
        ("--lens-model", args.lens_model, {"lens"}),
        ("--n", args.n, set(NETWORK_STAGES)),
        ("--tile", args.tile, set(NETWORK_STAGES)),
        ("--backend", args.backend, set(NETWORK_STAGES)),
        ("--strength", args.strength, {"sharpen"}),
    ):
        if value is not None and not running & stages:  # an option for a stage that does not run
            raise ValueError(f"{flag} {value}: applies to the {' or '.join(sorted(stages))} stage, which does not run")
    if args.backend == "onnx" and args.onnx is None:
        for name in sorted(running):
            if not getattr(pipeline, name).onnx_path:
                raise ValueError(f"--backend onnx: the {name} stage needs --onnx PATH (or onnx_path in --config)")
    if args.onnx is not None:  # one file is one model: it serves exactly one network stage
        networks = [name for name in NETWORK_STAGES if getattr(pipeline, name).enabled]
        if len(networks) != 1:
            raise ValueError(
                f"--onnx {args.onnx}: one ONNX model serves one network stage, but "
                + (
                    "no lens or sharpen stage runs"
                    if not networks
                    else "lens and sharpen both run (give each stage its onnx_path in a --config TOML: "
                    '[lens] onnx_path = "..." and [sharpen] onnx_path = "...")'
                )
            )
        name = networks[0]
        setattr(pipeline, name, dataclasses.replace(getattr(pipeline, name), onnx_path=args.onnx))
    if args.demosaic:
        pipeline.demosaic = dataclasses.replace(pipeline.demosaic, method=args.demosaic)
    if args.strength is not None:
        if not 0 <= args.strength <= 2:
            raise ValueError(f"--strength must be in [0, 2] (1: the network's sharpening), got {args.strength:g}")
        pipeline.sharpen = dataclasses.replace(pipeline.sharpen, strength=args.strength)
    for flag, value, section in (
        ("--white-balance", args.white_balance, "white_balance"),
        ("--exposure-ev", args.exposure_ev, "tone"),
    ):
        if value is not None and not getattr(pipeline, section).enabled:  # a flag the run would silently ignore
            value = f"{value:g}" if isinstance(value, float) else value
            raise ValueError(
                f"{flag} {value}: the --config file turns the {section} stage off ([{section}] enabled = false); "
                "drop the flag or enable the stage"
            )
    if args.white_balance is not None:
        mode, gains = _white_balance(args.white_balance)  # the config's other settings (clip...) are kept
        pipeline.white_balance = dataclasses.replace(pipeline.white_balance, mode=mode, gains=gains)
    if args.exposure_ev is not None:
        try:
            pipeline.tone = dataclasses.replace(pipeline.tone, exposure_ev=args.exposure_ev)
        except ValueError:
            raise ValueError(f"--exposure-ev must be between -16 and 16, got {args.exposure_ev:g}") from None
    if args.bit_depth:
        pipeline.output = dataclasses.replace(pipeline.output, bit_depth=args.bit_depth)
    elif not isinstance(pipeline.output, Encode):
        pipeline.output = Encode()
    if args.max_pixels is not None:
        if args.max_pixels < 1:
            raise ValueError(f"--max-pixels must be positive, got {args.max_pixels}")
        pipeline.max_pixels = args.max_pixels
    assert isinstance(pipeline.demosaic, Demosaic)
    return pipeline


def _onnx_stage(onnx: str) -> str:
    """The network stage an exported file serves, from its sidecar's task (``lens``...); ``sharpen`` when the
    sidecar does not say (a missing or broken sidecar is refused later, when the stage loads the file)."""
    from ..restore.model_card import onnx_sidecar

    try:
        data, _ = onnx_sidecar(onnx)
    except ValueError:
        return "sharpen"
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    return "lens" if str(model.get("task") or "").startswith("lens") else "sharpen"


def _white_balance(text: str) -> tuple[str, tuple[float, float, float] | None]:
    """``--white-balance``: ``(mode, gains)`` for a mode, or for explicit gains ``R,G,B`` (positive numbers)."""
    if text in ("as_shot", "gray_world", "none"):
        return text, None
    parts = text.split(",")
    try:
        gains = tuple(float(v) for v in parts)
    except ValueError:
        gains = ()
    if len(gains) != 3 or not all(math.isfinite(g) and g > 0 for g in gains):
        raise ValueError(
            f"--white-balance must be as_shot, gray_world, none or three positive gains R,G,B, got {text!r}"
        )
    if max(gains) > MAX_GAIN_RATIO * min(gains):
        raise ValueError(
            f"--white-balance: the gains R,G,B must be within {MAX_GAIN_RATIO:g}x of each other, got {text!r}"
        )
    return "as_shot", gains  # type: ignore[return-value]
