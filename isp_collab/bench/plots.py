"""The benchmark's PNG plots, referenced from the ``benchmarks/RESULTS.md`` sections of :mod:`.report`.

Plots use matplotlib's Agg backend; images in figures are shown in sRGB (processed back with the
fixed camera of :mod:`isp_collab.bench.protocol`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .speed import SpeedResult

#: Appended to the title of a plot of a quick run (``--quick``): its numbers are not the reported ones.
QUICK = " [quick run: machinery check]"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: str | Path) -> Path:
    """Lay out, write as PNG (120 dpi) atomically (temp file + rename) and free the figure."""
    from ..atomic import atomic_write_bytes

    try:
        if fig.get_layout_engine() is None:  # a figure made with layout="constrained" keeps it
            fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, dpi=120, format="png")
        return atomic_write_bytes(path, buf.getvalue(), overwrite=True)
    finally:
        _plt().close(fig)


def plot_ksim(experiments: Sequence, path: str | Path, quick: bool = False) -> Path:
    """KSIM vs N (log2 axis): each kernel thin, the mean thick; one panel per boundary model."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(experiments), figsize=(5.2 * len(experiments), 4), sharey=True, squeeze=False)
    for ax, e in zip(axes[0], experiments, strict=True):
        per = e.mean_per_kernel()
        for k, name in enumerate(e.kernel_names):
            ax.plot(e.ns, per[k], "-", lw=1, alpha=0.6, label=name.replace("kernel", "k"))
        ax.errorbar(e.ns, e.mean(), yerr=e.std_of_mean(), fmt="k-o", lw=2.5, label="mean", capsize=3)
        if e.saturation_n() is not None:  # none drawn where no N up to the largest saturates
            ax.axvline(e.saturation_n(), color="grey", ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xticks(e.ns, [str(n) for n in e.ns])
        ax.set_xlabel("N (pairs sharing the kernel)")
        ax.set_title(f"{e.boundary} blur, {e.patch}px crops, noise {100 * e.noise_sigma:g}%")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("KSIM")
    axes[0][-1].legend(fontsize=7, ncol=2, loc="lower right")
    fig.suptitle("Least-squares kernel estimate (Eq. 2) from N sharp/blurry pairs" + QUICK * quick)
    return _save(fig, path)


def plot_psnr_vs_sigma(table: dict[str, dict[str, float]], path: str | Path, quick: bool = False) -> Path:
    """Mean PSNR vs isotropic sigma, one line per method."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, per in table.items():
        pts = sorted((float(d.split("=", 1)[1]), v) for d, v in per.items() if d.startswith("sigma="))
        if pts:
            ax.plot(*zip(*pts, strict=True), "-o", label=method)
    ax.set_xlabel("Gaussian blur sigma (px)")
    ax.set_ylabel("PSNR (dB), linear RGB")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("PSNR vs blur, noise 0.5/255" + QUICK * quick)
    return _save(fig, path)


def plot_psnr_vs_n(
    families: Sequence[Sequence[tuple[int, float, str]]],
    baselines: dict[str, float],
    path: str | Path,
    quick: bool = False,
) -> Path:
    """Mean PSNR vs trained N: each model a labelled point; a line joins only the models of one family.

    ``families``: per family (recipes equal apart from N, :func:`~isp_collab.bench.quality.recipe_families`),
    its models as ``(n_trained, mean PSNR, label)``; a label says so where the model ran at another N (small
    images: restore caps a stack at their tiles). Classical rows are horizontal lines.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, family in enumerate(families):
        pts = sorted(family)
        label = " / ".join(p[2] for p in pts) + (" (one recipe, N varies)" if len(pts) > 1 else "")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=f"C{i % 10}", label=label)
        for n, v, name in pts:
            ax.annotate(name, (n, v), textcoords="offset points", xytext=(4, 4), fontsize=6, color=f"C{i % 10}")
    for i, (name, v) in enumerate(baselines.items()):
        ax.axhline(v, ls="--", lw=1, color=f"C{(i + len(families)) % 10}", label=name)
    ax.set_xscale("log", base=2)
    ns = sorted({p[0] for family in families for p in family}) or [1]
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.margins(x=0.2)  # room for the point names
    ax.set_xlabel("trained N (patches restored together)")
    ax.set_ylabel("mean PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("PSNR vs N; a line joins models trained with one recipe apart from N" + QUICK * quick, fontsize=9)
    return _save(fig, path)


def plot_crops(
    kept: dict[str, np.ndarray],
    title: str,
    path: str | Path,
    crop: int = 128,
    scores: dict[str, float] | None = None,
    scored: str = "whole image",
) -> Path:
    """Before/after crops (sRGB display): sharp, blurry input, then each method (``scores``: PSNR on ``scored``,
    the image the methods ran on)."""
    from .protocol import center_crop, to_display

    plt = _plt()
    names = list(kept)
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    # constrained layout sizes the rows around the two-line titles and the suptitle (tight_layout let
    # a row's titles overlap the images above)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.4 * rows + 0.3), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names, strict=False):
        ax.imshow(np.clip(to_display(center_crop(kept[name], crop)), 0, 1), interpolation="nearest")
        score = (scores or {}).get(name)
        ax.set_title(name if score is None else f"{name}\n{score:.2f} dB ({scored})", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_latency_vs_params(result: SpeedResult, path: str | Path, quick: bool = False) -> Path:
    """ms/MP per model (ordered by parameter count, then N), one marker per runtime, on a log axis.

    Models of one size (UNet-TX at N=4 and N=8) get a column each, so no point hides another.
    """
    plt = _plt()
    rows = [r for r in result.latency if "ms_per_mp" in r]
    measured = {r["label"] for r in rows}
    models = sorted((m["params"], m["n"], m["label"]) for m in result.models if m["label"] in measured)
    column = {label: i for i, (_, _, label) in enumerate(models)}
    runtimes = list(dict.fromkeys(r["kind"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(models) + 2), 4))
    width = 0.6 / max(1, len(runtimes))
    for i, rt in enumerate(runtimes):
        pts = [
            (column[r["label"]] + (i - (len(runtimes) - 1) / 2) * width, r["ms_per_mp"])
            for r in rows
            if r["kind"] == rt
        ]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", color=f"C{i}", label=rt)
    for r in result.classical:
        if "ms_per_mp" in r:
            ax.axhline(r["ms_per_mp"], ls="--", lw=1, color="grey")
            ax.text(-0.45, r["ms_per_mp"], r["label"], fontsize=7, va="bottom")
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels([f"{label}\n{params / 1e3:,.0f}K params" for params, _, label in models], fontsize=7)
    ax.set_xlim(-0.5, max(1, len(models)) - 0.5)
    ax.set_yscale("log")
    ax.set_ylabel("whole-image latency (ms per megapixel)")
    ax.grid(alpha=0.3, which="both", axis="y")
    ax.legend(fontsize=8)
    ax.set_title(f"Latency per model and runtime, {result.threads} CPU thread(s)" + QUICK * quick)
    return _save(fig, path)
