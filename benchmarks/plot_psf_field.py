"""Picture of a PSF field: the grid of RGB kernels at their node positions, blur size against field radius, zooms.

.venv/bin/python benchmarks/plot_psf_field.py --overwrite     # rewrites benchmarks/psf_field_lens-a.png
.venv/bin/python benchmarks/plot_psf_field.py --lens lens-b --out /tmp/b.png
.venv/bin/python benchmarks/plot_psf_field.py --calibration my_lens.npz --out my_lens.png

An existing output is replaced only with ``--overwrite``; the PNG is written atomically.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from isp_collab.atomic import atomic_write_bytes  # noqa: E402
from isp_collab.bench.report import refuse  # noqa: E402
from isp_collab.physics.psf_field import PSFField, load_calibration, make_lens  # noqa: E402

HERE = Path(__file__).resolve().parent


def kernel_mosaic(field: PSFField, gap: int = 2, gamma: float = 0.5) -> np.ndarray:
    """The kernels (R, C, 3, k, k) tiled as one RGB image (R*(k+gap), C*(k+gap), 3) in [0, 1].

    Each kernel is divided by its own maximum over the three channels (so its colour fringes stay
    visible) and shown with ``x ** gamma`` so the faint tails (coma, astigmatic lines) are visible.
    """
    kernels = field.kernels.numpy()
    rows, cols, _, k, _ = kernels.shape
    cell = k + gap
    mosaic = np.ones((rows * cell - gap, cols * cell - gap, 3), dtype=np.float32)
    for i in range(rows):
        for j in range(cols):
            ker = kernels[i, j].transpose(1, 2, 0)
            mosaic[i * cell : i * cell + k, j * cell : j * cell + k] = (ker / max(ker.max(), 1e-12)) ** gamma
    return mosaic


def rms_radius(field: PSFField) -> np.ndarray:
    """(R, C, 3) RMS radius in pixels of each kernel channel about its centroid."""
    kernels = field.kernels.numpy().astype(np.float64)
    k = kernels.shape[-1]
    g = np.arange(k) - k // 2
    mx = (kernels * g[None, :]).sum(axis=(-2, -1))
    my = (kernels * g[:, None]).sum(axis=(-2, -1))
    ex2 = (kernels * (g[None, :] ** 2 + g[:, None] ** 2)).sum(axis=(-2, -1))
    return np.sqrt(np.maximum(ex2 - mx**2 - my**2, 0))


def plot_psf_field(field: PSFField, out: str | Path, title: str | None = None, *, overwrite: bool = False) -> Path:
    """Write a PNG: the kernel grid (per-kernel normalised, gamma 0.5), RMS radius vs field radius, three zooms.

    Written atomically; an existing ``out`` is replaced only with ``overwrite`` (else FileExistsError)."""
    mosaic = kernel_mosaic(field)
    radius = field.field_radius(field.positions[..., 0], field.positions[..., 1]).numpy().ravel()
    rms = rms_radius(field).reshape(-1, 3)
    rows, cols = field.grid
    fig = plt.figure(figsize=(15, 6.6))
    grid = fig.add_gridspec(2, 4, width_ratios=[7, 1, 1, 1], height_ratios=[1.4, 1])
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(
        f"{title or field.name}: {rows}x{cols} nodes over a {field.image_size[1]}x{field.image_size[0]} image, "
        f"{field.ksize}x{field.ksize} px kernels\n(each kernel scaled to its max, shown as value^0.5)",
        fontsize=10,
    )
    ax = fig.add_subplot(grid[0, 1:])
    for c, colour in enumerate(("tab:red", "tab:green", "tab:blue")):
        ax.scatter(radius, rms[:, c], s=10, color=colour, label="RGB"[c])
    ax.set_xlabel("normalised field radius (0 centre, 1 corner)")
    ax.set_ylabel("kernel RMS radius (px)")
    ax.set_title("blur size against field radius", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    # linear-scale zooms: centre, right edge, bottom-right corner
    half = min(field.ksize // 2, 10)
    for n, (i, j, label) in enumerate(
        ((rows // 2, cols // 2, "centre"), (rows // 2, cols - 1, "edge"), (-1, -1, "corner"))
    ):
        ker = field.kernels[i, j].numpy().transpose(1, 2, 0)
        c = field.ksize // 2
        ax = fig.add_subplot(grid[1, 1 + n])
        ax.imshow((ker / ker.max())[c - half : c + half + 1, c - half : c + half + 1], interpolation="nearest")
        ax.set_title(f"{label} (linear, central {2 * half + 1} px)", fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    plt.close(fig)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(out, buf.getvalue(), overwrite=overwrite)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lens", default="lens-a", help="named lens (lens-a, lens-b)")
    ap.add_argument("--calibration", help="plot a calibration .npz instead of a named lens")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="output PNG (default benchmarks/psf_field_<lens>.png)")
    ap.add_argument("--overwrite", action="store_true", help="replace the output PNG if it exists")
    args = ap.parse_args(argv)
    out = Path(args.out or HERE / f"psf_field_{Path(args.calibration).stem if args.calibration else args.lens}.png")
    if out.exists() and not args.overwrite:
        refuse(f"{out}: already there; pass --overwrite to replace it, or another --out")
    try:
        field = load_calibration(args.calibration) if args.calibration else make_lens(args.lens, seed=args.seed)
    except ValueError as e:  # one line naming the file (load_calibration) or the unknown lens
        refuse(str(e))
    print(plot_psf_field(field, out, overwrite=True))


if __name__ == "__main__":
    main()
