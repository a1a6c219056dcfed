"""Drivers of ``isp-collab bench``: each runs one benchmark and writes its RESULTS.md section + plots.

Every driver takes the output folder (RESULTS.md and PNGs go there), ``quick`` (tiny sizes, checks
the machinery in seconds; its sections say so) and optional user images.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import report, sections
from .data import VAL_DIR, BenchImage, load_levin_kernels
from .inputs import LENS_QUICK_CROP
from .options import BenchOptions
from .params import classical_params, rel_path
from .plots import QUICK, plot_crops, plot_ksim, plot_latency_vs_params, plot_psnr_vs_n, plot_psnr_vs_sigma
from .run_training import COLLAB_GAIN_HEADING, TRAINING_HEADING, bench_training  # noqa: F401 (the CLI's drivers)
from .timing import set_threads

#: The benchmark image of the before/after figure (fine detail and strong edges).
FIGURE_IMAGE = "set5/butterfly"


def write_machine(opts: BenchOptions) -> None:
    """The machine section: this machine, and per section measured in this run its threads, device and date.

    Rows of sections measured by earlier runs are kept; nothing is claimed for a section this run did not measure.
    """
    if not opts.measured:
        return
    old = report.read_section(opts.results.read_text(), "machine") if opts.results.is_file() else None
    body = report.machine_section(report.machine_info(opts.threads), opts.measured, old)
    report.write_section(opts.results, "machine", body)


# ----------------------------------------------------------------------------------------------


def _ran_note(n: int, ran: list[int]) -> str:
    """``" (ran at N=1)"`` (``"N=1-3"`` over images of several sizes) where a model trained at ``n`` ran at fewer."""
    if min(ran) >= n:
        return ""
    return f" (ran at N={min(ran)}{f'-{max(ran)}' if max(ran) > min(ran) else ''})"


def bench_kernels(opts: BenchOptions) -> dict[str, Any]:
    """Paper §3 experiment: KSIM vs N for Levin's kernels; section ``kernel-estimation``, ksim_vs_n.png."""
    from . import kernel_estimation as ke

    set_threads(opts.threads)
    t0 = time.perf_counter()
    ims = opts.load(max_images=3 if opts.quick else None)
    grey = [ke.grey(im.srgb) for im in ims]
    kernels = load_levin_kernels()
    if opts.quick:
        kernels = dict(list(kernels.items())[:3])
    seeds = 2 if opts.quick else 10
    try:
        experiments = [ke.run_experiment(grey, kernels, ke.DEFAULT_NS, seeds=seeds, boundary=b) for b in ke.BOUNDARIES]
    except ValueError as e:  # images too small for the crops
        raise ValueError(f"{opts.images or VAL_DIR}: {e}") from None
    base_eps = ke.wiener_eps(ke.DEFAULT_PATCH, ke.DEFAULT_NOISE)
    sensitivity = [
        (f, ke.run_experiment(grey, kernels, ke.DEFAULT_NS, seeds=max(1, seeds // 2), eps=f * base_eps))
        for f in (0.1, 1.0, 10.0, 100.0)
    ]
    seconds = time.perf_counter() - t0
    plot = opts.file("ksim_vs_n", ".png")
    plot_ksim(experiments, plot, opts.quick)
    report.write_section(
        opts.results,
        opts.section("kernel-estimation"),
        sections.kernels_section(experiments, plot.name, seconds, opts.quick, sensitivity, opts.describe_images(ims)),
    )
    summary = {
        e.boundary: {
            "ns": e.ns,
            "mean_ksim": [round(float(v), 4) for v in e.mean()],
            "saturation_n": e.saturation_n(),  # None: not saturated by the largest N
            "within_best_n": e.within_best_n(),
        }
        for e in experiments
    }
    for e in experiments:
        s = summary[e.boundary]
        opts.say(
            f"kernels [{e.boundary}]: mean KSIM {dict(zip(s['ns'], s['mean_ksim'], strict=True))}; {e.saturation_text()}"
        )
    opts.measured[opts.section("kernel-estimation")] = "- (numpy)"
    opts.say(f"kernels: wrote {plot} and section kernel-estimation of {opts.results} ({seconds:.0f} s)")
    return summary


def bench_tune(opts: BenchOptions) -> dict[str, Any]:
    """Grid-search the classical sharpeners on the validation set; writes the params JSON + section."""
    from . import tune

    ims = opts.load(max_images=2 if opts.quick else None)
    params_file = opts.file("classical_params", ".json")  # the committed file when out is benchmarks/
    small = (
        {
            "crop": 64,
            "unsharp_grid": {"amount": [0.5, 1.0], "radius": [1.0]},
            "polyblur_stages": [{"alpha": [2.0, 1.0]}, {"b": [0.768, 0.3]}],
        }
        if opts.quick
        else {}
    )
    record = tune.tune_classical(
        ims,
        out=params_file,
        threads=opts.threads,
        progress=opts.say,
        quick=opts.quick,  # recorded: a full benchmark refuses quick-tuned parameters
        folder=rel_path(Path(opts.images or VAL_DIR), opts.out),
        **small,
    )
    section = sections.classical_section(record, rel_path(params_file, opts.out))
    report.write_section(opts.results, opts.section("classical-params"), section)
    opts.measured[opts.section("classical-params")] = "- (OpenCV, Polyblur on torch CPU)"
    return record


def bench_quality(opts: BenchOptions) -> dict[str, Any]:
    """Sharpening table + lens table + plots (psnr_vs_sigma, psnr_vs_n, crops)."""
    from . import classical, quality
    from .protocol import degradation_names

    set_threads(opts.threads)
    device = opts.device_name
    t0 = time.perf_counter()
    ims = opts.load(max_images=2 if opts.quick else None)
    crop = 96 if opts.quick else None
    degs = degradation_names((2.0,)) if opts.quick else degradation_names()
    params, record, params_path = classical_params(opts)
    methods = classical.classical_methods(params)
    names = opts.models_of("sharpen")
    notes = []
    no_polyblur = None if "Polyblur" in methods else classical.polyblur_status()[1]
    if no_polyblur:  # the row is missing: the section says why, not only the console
        notes.append(f"Polyblur was not run: {no_polyblur}.")
    if not names:
        whose = "among --models" if opts.models is not None else "shipped yet"
        notes.append(f"No sharpening model {whose}: the network rows appear for models whose card task is `sharpen`.")
        opts.say(f"quality: no sharpening model {whose}; classical rows only")
    model_fns, cards = quality.model_methods(names, opts.device) if names else ({}, {})
    methods.update(model_fns)
    names_all = [im.name for im in ims]
    figure_image = FIGURE_IMAGE if FIGURE_IMAGE in names_all else names_all[0]
    figure_deg = degs[0] if opts.quick else "sigma=2"
    rows, kept = quality.run_quality(
        ims,
        methods,
        degs,
        crop=crop,
        keep=lambda im, d: im == figure_image and d == figure_deg,
        progress=opts.say if not opts.quick else None,
    )
    psnr_t, ssim_t = quality.summarise(rows, "psnr"), quality.summarise(rows, "ssim")
    seconds = time.perf_counter() - t0
    sec = {m: float(np.mean([r.seconds for r in rows if r.method == m])) for m in psnr_t}
    section = sections.classical_section(record, rel_path(params_path, opts.out))
    report.write_section(opts.results, opts.section("classical-params"), section)
    shapes = [(min(im.srgb.shape[0], crop or 1 << 30), min(im.srgb.shape[1], crop or 1 << 30)) for im in ims]

    def ran(label: str) -> list[int]:  # restore caps a stack at the image's tile count under max pooling
        n = int(cards[label]["n_trained"])
        return quality.stack_sizes(shapes, n, device=device) if cards[label].get("pooling", "max") == "max" else [n]

    plots = []
    p = plot_psnr_vs_sigma(psnr_t, opts.file("psnr_vs_sigma", ".png"), opts.quick)
    plots.append(p.name)
    if names:  # one line per family of one recipe apart from N: never a curve across unrelated networks
        families = [
            [
                (n := int(cards[lb]["n_trained"]), psnr_t[lb]["mean"], lb + _ran_note(n, ran(lb)))
                for lb in map(quality.model_label, family)
            ]
            for family in quality.recipe_families(names)
        ]
        baselines = {m: psnr_t[m]["mean"] for m in psnr_t if m not in cards}
        p = plot_psnr_vs_n(families, baselines, opts.file("psnr_vs_n", ".png"), opts.quick)
        plots.append(p.name)
    for key, outs in kept.items():
        image, deg = key.rsplit(" ", 1)
        scores = {r.method: r.psnr for r in rows if r.image == image and r.degradation == deg}
        p = plot_crops(
            outs,
            f"{key} (centre crop, shown in sRGB)" + QUICK * opts.quick,
            opts.file("crops", ".png"),
            crop=64 if opts.quick else 128,
            scores=scores,
            scored=f"crop ≤ {crop} px" if crop else "whole image",
        )
        plots.append(p.name)
    # restore caps a stack at the image's tile count under max pooling (more would only repeat tiles)
    ns = sorted(
        {int(c["n_trained"]) for c in cards.values() if int(c["n_trained"]) > 1 and c.get("pooling", "max") == "max"}
    )
    effective = "; ".join(
        f"N={n} runs at N={min(k)}{f'-{max(k)}' if max(k) > min(k) else ''}"
        + (f" (median {int(np.median(k))})" if max(k) > min(k) else "")
        for n in ns
        for k in [quality.stack_sizes(shapes, n, device=device)]
    )
    how = (
        f"{opts.describe_images(ims)}{f', centre crops of at most {crop}x{crop}' if crop else ', full size'}, unprocessed to linear camera RGB with the fixed camera "
        "(Brooks et al. 2019; `isp_collab.bench.protocol`), blurred with 33x33 Gaussian kernels (reflect borders): "
        f"{', '.join(degs)} (`sigma=s`: isotropic, s px; `aniso`: one random anisotropic kernel per image, stds "
        "U[0.3, 4], seed 0), white Gaussian noise 0.5/255, clipped to [0, 1]. PSNR and SSIM (scikit-image, channel_axis, "
        "data_range 1) in linear RGB on the image minus a 16-px border, mean over images. Networks: whole-image "
        '`isp_collab.restore.restore(..., strategy="spread", n=<card n_trained>)`'
        f"{f' on {device}' if names else ''}"
        + (
            f"; restore's default tile for N on {device} (on a CPU 256 px, 192 for N = 3..4, 160 above; 256 on a GPU); "
            "a stack holds at most the "
            "image's number of tiles (more would only repeat tiles), so on these "
            f"images {effective}"
            if effective
            else ""
        )
        + f". Classical rows use the tuned "
        f"parameters ({', '.join(f'{k}: ' + ', '.join(f'{a}={b}' for a, b in v.items() if a != 'source') for k, v in params.items() if k != 'polyblur' or not no_polyblur)}). "
        f"{opts.threads} CPU thread(s); mean seconds per image: "
        + ", ".join(f"{m} {s:.2f}" for m, s in sec.items())
        + f". Total {seconds:.0f} s."
    )
    if opts.quick:
        how = "**Quick run (machinery check, not the reported numbers).** " + how
    body = sections.quality_section(psnr_t, ssim_t, degs, how, plots, notes)
    report.write_section(opts.results, opts.section("quality"), body)
    opts.remove_unlinked(body, ("psnr_vs_sigma", "psnr_vs_n", "crops"))
    opts.measured[opts.section("quality")] = (device if names else "- (classical rows only)") + (
        "; Polyblur not run (see the section)" if no_polyblur else ""
    )
    opts.say(f"quality: wrote section {opts.section('quality')} and {', '.join(plots)} in {opts.out} ({seconds:.0f} s)")
    for m, per in psnr_t.items():
        opts.say(f"  {m:28s} mean PSNR {per['mean']:.2f} dB  SSIM {ssim_t[m]['mean']:.4f}")
    summary = {"psnr": psnr_t, "ssim": ssim_t}
    summary["lens"] = bench_lens(opts, ims, LENS_QUICK_CROP if opts.quick else None)
    return summary


def bench_lens_only(opts: BenchOptions) -> dict[str, Any] | None:
    """Only the lens table of :func:`bench_quality` (``isp-collab bench lens``)."""
    set_threads(opts.threads)
    ims = opts.load(max_images=2 if opts.quick else None)
    return bench_lens(opts, ims, LENS_QUICK_CROP if opts.quick else None)


def bench_lens(opts: BenchOptions, ims: Sequence[BenchImage], crop: int | None) -> dict[str, Any] | None:
    """Lens table (edge / intermediate / centre) of the lens models (``--models``, else shipped), each on its own lens."""
    from . import lens
    from .quality import model_label

    names = opts.models_of("lens")
    if not names:
        whose = "among --models" if opts.models is not None else "shipped"
        body = (
            "## Lens correction: PSNR (dB) by field region (paper Table 3 layout)\n\n"
            f"{report.NOT_MEASURED}no lens model {whose} (card task `lens`). "
            "The code path is `isp_collab.bench.lens.run_lens`.\n"
        )
        report.write_section(opts.results, opts.section("lens"), body)
        opts.say(f"lens: no lens model {whose}; section left as a placeholder")
        return None
    groups = lens.lens_models(names)  # refuses a model whose lens cannot be rebuilt
    device = opts.device_name
    t0 = time.perf_counter()
    rows = lens.run_lens(ims, names, crop=crop, device=opts.device, progress=None if opts.quick else opts.say)
    table = lens.summarise_lens(rows)
    fields = "; ".join(
        f"`{lz.key}` ({', '.join(f'`{model_label(n)}`' for n in ns)})"
        + (" = `make_lens('" + lz.key + "', image_size, seed=0)`" if lz.path is None else f" = calibration `{lz.path}`")
        for lz, ns in groups.items()
    )
    how = (
        f"{opts.describe_images(ims)}{f', centre crops of at most {crop}x{crop},' if crop else ''} in linear camera RGB, each "
        f"model's own lens (card `lens`): {fields}, applied with `apply_psf_field`, noise 0.5/255; restored "
        'whole-image with `strategy="mirror"` (stacks of patches mirrored about the optical centre, flipped into '
        'alignment) or `strategy="local"` (no alignment). PSNR per region of normalised distance r to the optical '
        "centre (r = 1 at the farthest corner): centre r < 1/3, intermediate 1/3-2/3, edge >= 2/3; 16-px border "
        f"removed; mean over images. Networks on {device}, {opts.threads} CPU thread(s), {time.perf_counter() - t0:.0f} s."
    )
    if opts.quick:
        how = "**Quick run (machinery check, not the reported numbers).** " + how
    report.write_section(opts.results, opts.section("lens"), sections.lens_section(table, how))
    opts.measured[opts.section("lens")] = device
    opts.say(f"lens: wrote section {opts.section('lens')}")
    return table


def bench_speed(opts: BenchOptions) -> dict[str, Any]:
    """Cost tables + latency_vs_params.png."""
    from . import speed, speed_specs

    specs, trimmed = speed_specs.specs_to_time(opts.models, opts.quick)
    if trimmed:
        opts.say(trimmed)
    params, _, _ = classical_params(opts)
    result = speed.run_speed(
        specs,
        threads=opts.threads,
        size=opts.size or speed_specs.default_size(specs, opts.quick),
        reps=2 if opts.quick else 5,
        matmul_n=256 if opts.quick else 2048,
        classical_params=params,
        images=opts.load(max_images=1),
        progress=opts.say,
    )
    plot = plot_latency_vs_params(result, opts.file("latency_vs_params", ".png"), opts.quick)
    how = "\n" + "".join(f"- {h};\n" for h in speed.HOW)
    how += (
        f"- this run: {result.size}x{result.size} image ({speed_specs.tiling_note(result.size)}), {result.reps} timed runs, "
        f"{result.threads} thread(s); "
        f"1-min load average {result.load[0]:.1f} before, {result.load[1]:.1f} after on {os.cpu_count()} CPUs "
        "(a load above the thread count means other processes shared the cores and the times are pessimistic)."
    )
    if any("untrained" in m["label"] for m in result.models):
        how += (
            "\n- no model measured (none given, or none shipped): rows are untrained networks of the planned "
            "architectures (cost does not depend on the weights)."
        )
    report.write_section(
        opts.results, opts.section("speed"), sections.speed_section(result, plot.name, how, opts.quick)
    )
    no_polyblur = any(s.startswith("Polyblur:") for s in result.skipped)
    opts.measured[opts.section("speed")] = "per runtime (see the section)" + ("; Polyblur not run" * no_polyblur)
    opts.say(f"speed: wrote section {opts.section('speed')} and {plot.name} in {opts.out}")
    return {"models": result.models, "matmul": result.matmul, "skipped": result.skipped}
