"""``isp-collab info``: versions, device, shipped models and the network family table."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand to ``sub``."""
    p = sub.add_parser(
        "info",
        help="show versions, device, shipped models and the parameter/FLOP table",
        description="Print package and library versions, the compute device, the shipped models, and the "
        "parameter / GFLOPs-per-megapixel table of the UNet family next to the paper's counts.",
    )
    p.add_argument(
        "--n",
        type=int,
        default=4,
        help="stack size N the collaborative rows are counted at, 2..64 (default 4); parameters and GFLOPs per "
        "megapixel do not change with it (each tile's merge convolutions are its own, the max pooling next to free)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out ``isp-collab info``; returns the exit status."""
    import torch

    from ..pipeline.collaborative import MAX_N
    from . import CLIError

    if not 2 <= args.n <= MAX_N:  # checked before anything is printed
        raise CLIError(
            f"--n {args.n}: the stack size of the N>1 rows must be between 2 and {MAX_N} (N=1 rows are always shown)"
        )

    import os

    from .. import __version__
    from ..device import pick_device
    from ..models import family_table, read_card, shipped_models
    from ..models.weights import models_dir

    env = os.environ.get("ISP_COLLAB_MODELS")
    if env and not models_dir().is_dir():
        raise CLIError(f"{env}: ISP_COLLAB_MODELS names no folder")

    print(
        f"isp-collab {__version__}  torch {torch.__version__}  device {pick_device()}  "
        f"threads {torch.get_num_threads()}"
    )
    models = shipped_models()
    print(f"\nshipped models ({len(models)}, {models_dir()}):")
    unreadable = []
    for name in models:
        try:
            card = read_card(name)
            n_trained = card["n_trained"]
        except Exception as e:  # noqa: BLE001 - one broken card (any shape of JSON): reported, the listing goes on
            unreadable.append(name)
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"  {name:28s} unreadable card: {reason}")
            continue
        validation = card.get("validation")
        val = validation.get("mean_psnr") if isinstance(validation, dict) else None
        extra = f"  val PSNR {val:.2f} dB" if isinstance(val, (int, float)) else ""
        print(f"  {name:28s} task={str(card.get('task', '?')):8s} N={n_trained}{extra}")
    print(f"\n{'arch':9s} {'N':4s} {'params':>12s} {'paper':>10s} {'diff':>7s} {'GFLOPs/MP':>10s}")
    for r in family_table(args.n):
        paper = f"{r['paper'] / 1e6:.3g}M" if r["paper"] else "-"
        diff = f"{100 * (r['params'] / r['paper'] - 1):+.1f}%" if r["paper"] else ""
        label = r["n"] if r["n"] == "N=1" else f"N={args.n}"
        print(f"{r['arch']:9s} {label:4s} {r['params']:12,d} {paper:>10s} {diff:>7s} {r['gflops_per_mp']:10.1f}")
    if unreadable:
        raise CLIError(f"{len(unreadable)} model card(s) unreadable: {', '.join(unreadable)} (see above)")
    return 0
