"""Whole-image quality of sharpening models restored with more (or fewer) tiles per stack than they were trained with.

    .venv/bin/python benchmarks/stack_at_inference.py sharpen-unet-tx-n4@4,8,16 sharpen-unet-tx-n8@8,16 \\
        [--images DIR] [--crop 256] [--section stack-at-inference --note "what was run"]

The *quality* protocol of ``isp-collab bench quality`` (``isp_collab.bench.quality``: photos unprocessed to
linear RGB, Gaussian blurs σ = 1..4 and one anisotropic blur per photo, white noise 0.5/255, PSNR in linear
RGB minus a border), with each model restored by ``restore(..., strategy="spread", n=N)`` at every N listed
after its ``@`` (the same weights: pooling over the stack works at any N), on the tile it runs at by default
(``default_tile`` of its trained N, whatever N; the published section predates it: 256 px). Prints a markdown table of mean
PSNR per blur; with ``--section`` also writes it into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from isp_collab.bench.data import load_images
from isp_collab.bench.protocol import degradation_names
from isp_collab.bench.quality import label_clash, model_label, model_restorer, run_quality, stack_sizes, summarise
from isp_collab.bench.report import check_section, md_table, publish, refuse
from isp_collab.models import read_card
from isp_collab.restore import default_tile

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def parse_spec(spec: str) -> tuple[str, list[int]]:
    """``"name@4,8"`` -> ``("name", [4, 8])``; a bare name runs at the card's trained N (``[]``)."""
    name, _, sizes = spec.partition("@")
    try:
        ns = [int(s) for s in sizes.split(",")] if sizes else []
    except ValueError:
        refuse(f"{spec}: stack sizes after @ must be integers, e.g. {name}@4,8")
    if not name or any(n < 1 for n in ns):
        refuse(f"{spec}: expected MODEL or MODEL@N[,N...] with N >= 1")
    return name, ns


def measure(
    specs: list[str], images: str | None = None, crop: int | None = None, max_images: int | None = None
) -> tuple[str, float]:
    """The markdown table (blurry input first, then each model at each stack size) and the seconds taken (all of
    it: loading the photos and models, and restoring)."""
    t0 = time.perf_counter()
    clash = label_clash(list(dict.fromkeys(parse_spec(spec)[0] for spec in specs)))
    if clash:
        refuse(clash)
    photos = load_images(images, max_images)
    shapes = [(min(p.srgb.shape[0], crop or 1 << 30), min(p.srgb.shape[1], crop or 1 << 30)) for p in photos]
    methods, trained = {}, {}
    for spec in specs:
        name, sizes = parse_spec(spec)
        for n in sizes or [None]:
            n_trained = max(1, int(read_card(name)["n_trained"]))
            tile = default_tile(n_trained)  # one tiling for every N of a model: the one it runs at by default
            run, card = model_restorer(name, n=n, tile=tile)
            n_used = n or n_trained
            label = f"{model_label(name)} @ N={n_used}"
            ran = stack_sizes(shapes, n_used, tile)  # restore caps a stack at the photo's tile count
            if min(ran) < n_used:
                span = f"{min(ran)}-{max(ran)}" if min(ran) < max(ran) else f"{min(ran)}"
                label += f" (runs at N={span}: the photo's tiles)"
            methods[label], trained[label] = run, n_used == int(card["n_trained"])
    degradations = degradation_names()
    rows, _ = run_quality(photos, methods, degradations, crop=crop)
    table = summarise(rows)
    header = ["method", *degradations, "mean"]
    body = []
    for label, per in table.items():
        shown = label + (" (trained N)" if trained.get(label) else "")
        body.append([shown, *(f"{per[d]:.2f}" for d in degradations), f"**{per['mean']:.3f}**"])
    return md_table(header, body), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="MODEL@N[,N...]: a shipped name or folder and the stack sizes to run")
    ap.add_argument("--images", help="folder of colour photos (default: the committed benchmark set)")
    ap.add_argument("--crop", type=int, help="centre crop of each photo, px (default: whole photos)")
    ap.add_argument("--max-images", type=int, help="use the first K photos only")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--section", help="RESULTS.md section to write (default: print only)")
    ap.add_argument("--note", default="", help="markdown paragraph put above the table")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="let --section replace a section RESULTS.md holds, or one another command writes",
    )
    args = ap.parse_args(argv)
    for flag in ("crop", "max_images", "threads"):  # 0 would mean the whole photo, 1 photo, torch's threads
        value = getattr(args, flag)
        if value is not None and value < 1:
            refuse(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    check_section(args.results, args.section, args.overwrite)
    torch.set_num_threads(args.threads)
    table, seconds = measure(args.models, args.images, args.crop, args.max_images)
    took = f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"
    how = f"Mean PSNR (dB, linear RGB) over the photos, {took} s on {args.threads} CPU thread(s)."
    body = "\n\n".join(([args.note] if args.note else []) + [how, table])
    publish(body, args.results, args.section, args.overwrite)
    return body


if __name__ == "__main__":
    main()
