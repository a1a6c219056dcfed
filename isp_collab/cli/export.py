"""``isp-collab export``: a trained model -> static-shape ONNX / Core ML artefacts with sidecars."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .paths import path_arg


def _csv(value: str) -> list[str]:
    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand to ``sub``."""
    from ..restore.tiling import MAX_N
    from ..shipped import DEFAULT_MODEL

    p = sub.add_parser(
        "export",
        help="export a model to ONNX / Core ML for a static stack [1, N, 3, tile, tile]",
        description="Export a trained model for on-device use: ONNX (opset 18, BatchNorm folded, static shapes, "
        "optional fp16 / int8 variants) and Core ML ML Program packages (FLOAT16 compute by default). Each "
        "artefact gets a sidecar NAME-nN-tT[-VARIANT].json (input/output, colour space, tiling, parity). "
        "Core ML packages run on macOS / iOS only; on Linux their spec is validated.",
    )
    p.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"shipped model name or model folder (default {DEFAULT_MODEL})"
    )
    p.add_argument("--n", type=int, help=f"tiles per stack N, 1..{MAX_N} (default: the N the model was trained with)")
    p.add_argument("--tile", type=int, default=256, help="tile size T, a multiple of 2**depth (default 256)")
    p.add_argument(
        "--overlap",
        type=int,
        help="pixels between tiles that the sidecar tells runtimes to use, 0..tile // 2 (default: 32, at most tile // 4)",
    )
    p.add_argument(
        "--strategy",
        choices=("spread", "local", "mirror"),
        help="gathering the sidecar tells runtimes to use (default: the model's, mirror for lens models, else spread)",
    )
    p.add_argument("--format", type=_csv, default=["onnx", "coreml"], help="onnx,coreml (default both)")
    p.add_argument(
        "--precision",
        type=_csv,
        default=None,
        help="fp32,fp16,int8 (int8: ONNX only; default: ONNX fp32 and Core ML fp16)",
    )
    p.add_argument(
        "--calibration-images",
        type=Path,
        help="folder of photos for int8 calibration and the parity / quality checks, taken to linear camera "
        "RGB (default: the validation photos of a source checkout; else synthetic images, with a warning)",
    )
    p.add_argument("--out", type=path_arg, default=Path("export"), help="output folder (default export/)")
    p.add_argument("--overwrite", action="store_true", help="replace existing artefacts")
    p.set_defaults(func=run)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: object = None,
) -> None:
    """Print isp-collab's own warnings as one line as they happen; drop third-party chatter."""
    if issubclass(category, UserWarning) and "isp_collab" in str(filename):
        print(f"isp-collab export: warning: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Carry out ``isp-collab export``; returns the exit status."""
    from ..export import ExportError, export_model
    from . import CLIError, require_parent_folder

    out = args.out
    if out.suffix.lower() in (".onnx", ".mlpackage", ".json") and not out.is_dir():  # became a folder of that name
        raise ValueError(
            f"{out}: a file name; --out is the folder the files go to (they are named after the model, "
            "e.g. sharpen-unet-tx-n4-n4-t256.onnx)"
        )
    require_parent_folder(out, "parent folder")  # --out itself may be created, not a tree of folders
    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = _show_warning  # restored by catch_warnings
        try:
            written = export_model(
                args.model,
                n=args.n,
                tile=args.tile,
                overlap=args.overlap,
                strategy=args.strategy,
                formats=args.format,
                precisions=args.precision,
                out_dir=args.out,
                overwrite=args.overwrite,
                calibration_images=args.calibration_images,
                log=lambda msg: print(msg, file=sys.stderr, flush=True),
            )
        except ExportError as e:
            raise CLIError(str(e)) from None
        except ValueError as e:  # worded for the Python API (``n must ...``): name the flag instead
            message = str(e)
            for key in ("n", "tile", "overlap", "strategy"):
                if message.startswith(f"{key} must"):
                    message = f"--{message}"
            raise ValueError(message) from None
    print(f"wrote {len(written)} artefact(s) + sidecars to {args.out}/:")
    for art in written:
        print(f"  {art.summary()}")
    return 0
