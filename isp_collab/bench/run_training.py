"""The driver of ``isp-collab bench training``: the training tables and curves, and the collaboration gain.

The other drivers are in :mod:`isp_collab.bench.run`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import report
from .data import VAL_DIR
from .options import BenchOptions
from .params import rel_path
from .timing import set_threads

#: Headings of the sections of ``bench training`` (every section opens with its own ``##`` heading).
TRAINING_HEADING = "## Training: validation PSNR of the models (from their card.json and train_log.jsonl)"
COLLAB_GAIN_HEADING = "## Collaboration gain vs tile and stack size (evaluation only)"


def bench_training(opts: BenchOptions) -> dict[str, Any]:
    """Training tables/curves from the cards (shipped, or ``--models``), and the collaboration gain vs tile and stack size.

    Everything is measured before a section is written.
    """
    from ..training.report import training_section
    from .collab_gain import collab_gain_markdown, collab_gain_table
    from .inputs import COLLAB_TILES

    set_threads(opts.threads)
    device = opts.device_name
    images = str(opts.images or VAL_DIR)
    tiles, max_images = COLLAB_TILES[opts.quick], (2 if opts.quick else 19)
    models = opts.models_of("sharpen")
    opts.say(f"training: collaboration gain vs tile size {tiles} and stack size (evaluation only, on {device})")
    t0 = time.perf_counter()
    rows = (
        collab_gain_table(
            [images], tiles=tiles, max_images=max_images, models=models, device=device, progress=not opts.quick
        )
        if models
        else []
    )
    seconds = time.perf_counter() - t0
    whose = "models/*" if opts.models is None else "the --models folders'"
    opts.say(f"training: validation tables and curves from {whose} card.json + train_log.jsonl")
    body = training_section(opts.out, opts.models, plot_path=lambda task: opts.file(f"training_{task}", ".png"))
    if not body.strip():
        whose = "among --models" if opts.models is not None else "shipped"
        body = (
            f"{report.NOT_MEASURED}no trained model {whose} (a card.json with a `validation` record, as "
            "`isp-collab train` writes).\n"
        )
        opts.say(f"training: no trained model {whose}; section left as a placeholder")
    report.write_section(opts.results, opts.section("training"), f"{TRAINING_HEADING}\n\n{body}")
    opts.remove_unlinked(body, ("training_sharpen", "training_lens"))
    if rows:
        how = (
            f"Evaluation only ({seconds:.0f} s, networks on {device}, {opts.threads} CPU thread(s)): the training "
            f"validation protocol (photos of `{rel_path(Path(images), opts.out)}` unprocessed to linear RGB with a fixed "
            "seed, isotropic Gaussian blur σ ∈ {1, 2, 3, 4}, demosaicking residual noise), "
            f"{rows[0]['tiles_per_image']} tiles per photo; each cell is the mean PSNR "
            "over σ (dB, linear RGB, tile minus a border of min(8, tile/8) px). 'stack at test' = how many tiles "
            "of one photo the network restores together (same weights); `(trained)` marks the model's trained N."
        )
        if opts.quick:
            how = "**Quick run (machinery check, not the reported numbers).** " + how
        body = f"{COLLAB_GAIN_HEADING}\n\n{how}\n\n{collab_gain_markdown(rows)}"
        report.write_section(opts.results, opts.section("collab-gain"), body)
        opts.measured[opts.section("collab-gain")] = device
    written = [opts.section("training")] + ([opts.section("collab-gain")] if rows else [])
    plots = [p.name for p in map(opts.file, ("training_sharpen", "training_lens"), (".png", ".png")) if p.is_file()]
    opts.say(
        f"training: wrote section(s) {', '.join(written)}{''.join(f', {p}' for p in plots)} in {opts.out} "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    return {"collab_gain": rows}
