"""The benchmark's own RESULTS.md sections (kernels, classical parameters, quality, lens, speed) as Markdown.

How RESULTS.md is read and written, the machine section and :func:`~.report.md_table` are in
:mod:`isp_collab.bench.report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report import md_table, plural

if TYPE_CHECKING:
    from .speed import SpeedResult

# ----------------------------------------------------------------------------------------------
# kernel estimation


def kernels_section(
    experiments: Sequence,
    plot_name: str,
    seconds: float,
    quick: bool = False,
    sensitivity: Sequence[tuple[float, Any]] = (),
    images: str | None = None,
) -> str:
    """Markdown of the §3 experiment: mean KSIM per N (one column per boundary model) and per kernel.

    ``sensitivity``: ``(eps factor, experiment)`` pairs, the circular experiment rerun with eps scaled.
    ``images``: what the images were (:meth:`~isp_collab.bench.options.BenchOptions.describe_images`).
    """
    main = experiments[0]
    ns = main.ns
    rows = []
    for i, n in enumerate(ns):
        row = [n]
        for e in experiments:
            row.append(f"{e.mean()[i]:.3f} ± {e.std_of_mean()[i]:.3f}")
        rows.append(row)
    header = ["N"] + [f"mean KSIM ({e.boundary})" for e in experiments]
    per = md_table(
        ["kernel", "size"] + [f"N={n}" for n in ns],
        [
            [name, f"{main.extra.get('sizes', {}).get(name, '?')}"] + [f"{v:.3f}" for v in main.mean_per_kernel()[k]]
            for k, name in enumerate(main.kernel_names)
        ],
    )
    sat = "; ".join(
        f"{e.boundary}: "
        + (
            f"doubling N gains < 0.01 from N = {e.saturation_n()}"
            if e.saturation_n() is not None
            else f"every doubling gains ≥ 0.01, {e.saturation_text()}"
        )
        + f", within 0.01 of the best mean from N = {e.within_best_n()}"
        for e in experiments
    )
    sens = ""
    if sensitivity:
        srows = [[f"{f:g} x P^2 sigma^2"] + [f"{v:.3f}" for v in e.mean()] for f, e in sensitivity]
        sens = f"\nSensitivity to eps (circular, {plural(sensitivity[0][1].seeds, 'seed')}, mean KSIM):\n\n" + md_table(
            ["eps", *[f"N={n}" for n in sensitivity[0][1].ns]], srows
        )
    return (
        "## Kernel estimation from N pairs (paper §3, Fig. 1)\n\n"
        + ("**Quick run (machinery check, not the reported numbers).**\n\n" if quick else "")
        + f"How measured: for each of the {len(main.kernel_names)} kernels of Levin et al. 2009 and each of "
        f"{plural(main.seeds, 'seed')}, {max(ns)} random {main.patch}x{main.patch} grey-level crops (mean of the sRGB "
        f"channels) of the {images or plural(main.n_images, 'benchmark image')}; blurry crop = kernel * crop + Gaussian noise of std {main.noise_sigma:g} "
        "(1 %). The kernel is estimated from the first N pairs with the closed form of Eq. 2, "
        "K = sum conj(X_n) Y_n / (sum |X_n|^2 + eps) with eps = P^2 sigma^2 (the Wiener value for a unit prior "
        "on |K|^2), cut to the true support, negative taps clipped, normalised to sum 1. Score: KSIM "
        "(Hu & Yang 2012 / Xu et al. 2013: maximum normalised cross-correlation over shifts); mean over kernels "
        "and seeds, ± the standard error over seeds. `circular`: the blurry crop is the circular blur of the "
        "sharp crop (Eq. 1 exactly, the paper's setting). `linear`: crops co-located in a linearly blurred "
        "image (content outside the crop leaks in), Tukey-windowed (alpha 0.5) after removing the sharp "
        f"crop's mean. Pairs are nested across N. Run time {seconds:.0f} s.\n\n"
        + md_table(header, rows)
        + f"\nSaturation: {sat}.\n\n"
        f"Per kernel ({main.boundary}, mean over seeds):\n\n" + per + sens + f"\n![KSIM vs N]({plot_name})\n"
    )


# ----------------------------------------------------------------------------------------------
# classical parameters


def classical_section(record: dict[str, Any] | None, params_file: str) -> str:
    """The tuned unsharp-mask / Polyblur parameters and how they were chosen."""
    if not record:
        return "## Classical sharpeners: tuned parameters\n\nNot tuned yet (`isp-collab bench tune`); package defaults are used.\n"
    rows = []
    for key, label in (("unsharp", "unsharp mask (OpenCV)"), ("polyblur", "Polyblur (`polyblur` package)")):
        if key not in record:
            rows.append([label, "not tuned (package missing)", "", "", ""])
            continue
        e = record[key]
        rows.append(
            [
                label,
                ", ".join(f"{k}={v}" for k, v in e["chosen"].items()),
                f"{e['mean_psnr']:.2f}",
                ", ".join(f"{k}={v}" for k, v in e["default"].items()),
                "-" if e.get("default_mean_psnr") is None else f"{e['default_mean_psnr']:.2f}",
            ]
        )
    blurry = record.get("blurry_input", {}).get("mean_psnr")
    names = record.get("images") or []
    folder = f" of `{record['image_folder']}`" if record.get("image_folder") else ""
    listed = f": `{'`, `'.join(names)}`" if names and len(names) <= 8 else ""
    tuned_on = f"Tuned on {plural(len(names), 'image')}{folder}{listed}. " if names else ""
    return (
        "## Classical sharpeners: tuned parameters\n\n"
        + ("**Quick run (machinery check, not the reported numbers).**\n\n" if record.get("quick") else "")
        + f"How chosen: {record['how']} {tuned_on}"
        f"Date {record.get('date', '?')}, {record.get('threads', '?')} thread(s). "
        f"Full record (grids, top 5, per-degradation scores): `{params_file}`.\n\n"
        + md_table(["method", "chosen", "mean PSNR (dB)", "package default", "default PSNR (dB)"], rows)
        + (f"\nBlurry input on the same crops: {blurry:.2f} dB.\n" if blurry is not None else "")
    )


# ----------------------------------------------------------------------------------------------
# quality


def quality_section(
    psnr_table: dict[str, dict[str, float]],
    ssim_table: dict[str, dict[str, float]],
    degradations: Sequence[str],
    how: str,
    plots: Sequence[str],
    notes: Sequence[str] = (),
) -> str:
    """Markdown of the quality table: one row per method, "PSNR / SSIM" per degradation and their mean.

    ``psnr_table`` / ``ssim_table``: method -> degradation -> score; ``how`` the method text, ``plots`` image paths.
    """
    cols = [*degradations, "mean"]
    rows = [
        [m] + [f"{psnr_table[m].get(d, float('nan')):.2f} / {ssim_table[m].get(d, float('nan')):.4f}" for d in cols]
        for m in psnr_table
    ]
    return (
        "## Quality: PSNR (dB) / SSIM, paper §5.2 protocol\n\n"
        f"How measured: {how}\n\n"
        + md_table(["method", *cols], rows)
        + "".join(f"\n{n}\n" for n in notes)
        + "\n"
        + "\n".join(f"![{Path(p).stem}]({p})" for p in plots)
        + "\n"
    )


def lens_section(table: dict[str, dict[str, float]], how: str, notes: Sequence[str] = ()) -> str:
    """Markdown of the lens table (:func:`isp_collab.bench.lens.summarise_lens`): method -> region -> PSNR (dB)."""
    regions = ("edge", "intermediate", "centre")
    rows = [[m] + [f"{table[m][r]:.2f}" for r in regions] for m in table]
    return (
        "## Lens correction: PSNR (dB) by field region (paper Table 3 layout)\n\n"
        f"How measured: {how}\n\n" + md_table(["method", *regions], rows) + "".join(f"\n{n}\n" for n in notes)
    )


# ----------------------------------------------------------------------------------------------
# speed

#: The latency table's last column: achieved GFLOP/s over ``torch.mm``'s, which faster kernels can exceed.
MM_COLUMN = "of torch.mm throughput"


def speed_section(result: SpeedResult, plot_name: str | None, how: str, quick: bool = False) -> str:
    """Markdown of :class:`~isp_collab.bench.speed.SpeedResult`."""
    mm = result.matmul.get("gflops")  # torch.mm's fp32 throughput: a reference, not a hardware peak
    mrows = [[m["label"], m["n"], f"{m['params']:,}", f"{m['gflops_per_mp']:.1f}"] for m in result.models]
    lrows = []
    for r in result.latency:
        if "error" in r:
            lrows.append([r["label"], r["kind"], "error", "", "", "", r["error"]])
            continue
        ach = r.get("achieved_gflops")
        if r["kind"] == "onnx-int8" or r["kind"].startswith("cuda"):
            frac = f"n/a ({r['kind']})"  # int8 ops, or a GPU, against a CPU fp32 rate
        else:
            frac = f"{100 * ach / mm:.0f} %" if ach and mm else ""
        lrows.append(
            [
                r["label"],
                r["kind"],
                f"{r['ms_per_mp']:.0f}",
                f"{r['mp_per_s']:.2f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{ach:.1f}" if ach else "",
                frac,
            ]
        )
    crows = [
        [
            r["label"],
            f"{r['ms_per_mp']:.0f}" if "ms_per_mp" in r else "error",
            f"{r['mp_per_s']:.2f}" if "mp_per_s" in r else r.get("error", ""),
            f"{r['peak_rss_mb']:.0f}",
        ]
        for r in result.classical
    ]
    text = (
        "## Cost: parameters, FLOPs, latency per runtime\n\n"
        + ("**Quick run (machinery check, not the reported numbers).**\n\n" if quick else "")
        + f"How measured: {how}\n\n"
        + md_table(["model", "N", "params", "GFLOPs/MP (2 x GMACs)"], mrows)
        + "\n"
        + md_table(["model", "runtime", "ms / MP", "MP / s", "peak RSS (MiB)", "achieved GFLOP/s", MM_COLUMN], lrows)
        + "\n"
        + md_table(["classical", "ms / MP", "MP / s", "peak RSS (MiB)"], crows)
        + (
            f"\ntorch.mm throughput (fp32, {result.matmul.get('n')}², median): {mm:.1f} GFLOP/s at "
            f"{result.threads} thread(s); a reference rate, not the hardware peak.\n"
            if mm
            else ""
        )
    )
    if result.skipped:
        text += "\nSkipped: " + "; ".join(result.skipped) + "\n"
    if plot_name:
        text += f"\n![latency vs parameters]({plot_name})\n"
    return text
