"""Pictures of the training physics, written to ``benchmarks/``.

    python benchmarks/plot_physics.py [--images FOLDER] [--out-dir benchmarks] [--only NAME ...] [--overwrite]

Each figure is one function ``make_<name>(args) -> matplotlib Figure`` registered in
:data:`FIGURES`; add a panel (e.g. the lens PSF field) by writing a function and registering it.
Without ``--images`` the stacks are cut from procedural dead leaves (the figure title says so); the
published ``sharpen_stack.png`` was drawn from the Set14 validation photos (``--images`` of their folder).
A figure already in ``--out-dir`` is replaced only with ``--overwrite`` (checked before anything is drawn);
each is written atomically. Images are linear camera RGB; they are shown white-balanced with the stack's gains and encoded
with the plain sRGB curve (:func:`~isp_collab.physics.unprocess.linear_to_srgb`).
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from isp_collab.atomic import atomic_write_bytes  # noqa: E402
from isp_collab.bench.report import refuse  # noqa: E402
from isp_collab.data.sharpen import SharpenSampler  # noqa: E402
from isp_collab.data.sources import image_files, image_source  # noqa: E402
from isp_collab.physics.unprocess import ISPParams, linear_to_srgb  # noqa: E402


def to_display(linear: torch.Tensor, params: ISPParams | None = None) -> np.ndarray:
    """``(3, H, W)`` linear camera RGB → ``H x W x 3`` sRGB in [0, 1] for imshow (white-balanced if ``params``)."""
    if params is not None:
        gains = torch.tensor([params.red_gain, 1.0, params.blue_gain]) * params.rgb_gain
        linear = linear * gains[:, None, None]
    return linear_to_srgb(linear.clamp(0, 1)).permute(1, 2, 0).numpy()


def plot_stack(axes: np.ndarray, blurry: torch.Tensor, sharp: torch.Tensor, params: ISPParams | None = None) -> None:
    """Draw a stack on a ``(2, N)`` grid of axes: blurry (top) and sharp (bottom); ``(N, 3, P, P)`` inputs."""
    for j in range(blurry.shape[0]):
        for row, (img, name) in enumerate(((blurry[j], "blurry"), (sharp[j], "sharp"))):
            ax = axes[row, j]
            ax.imshow(to_display(img, params))
            ax.set_title(f"{name} {j + 1}", fontsize=9)
            ax.axis("off")


def plot_kernel(ax: plt.Axes, kernel: torch.Tensor, title: str) -> None:
    """Draw a ``(k, k)`` blur kernel."""
    ax.imshow(kernel.numpy(), cmap="magma", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def make_sharpen_stack(args: argparse.Namespace) -> Figure:
    """One sharpen training stack (N patches sharing one Gaussian kernel) and its kernel."""
    source = image_source([args.images] if args.images else None)
    sampler = SharpenSampler(source, n=args.n, patch=args.patch, sigma_range=(1.0, 4.0))
    batch = sampler.sample(1, torch.Generator().manual_seed(args.seed))
    n = args.n
    fig, axes = plt.subplots(2, n + 1, figsize=(2.4 * (n + 1), 5.0), squeeze=False)
    plot_stack(axes[:, :n], batch.blurry[0], batch.sharp[0], batch.info["isp"][0])
    sx, sy = batch.info["sigmas"][0].tolist()
    theta = float(batch.info["theta"][0])
    plot_kernel(axes[0, n], batch.info["kernels"][0], f"kernel σ=({sx:.1f}, {sy:.1f}) θ={np.degrees(theta):.0f}°")
    axes[1, n].axis("off")
    of = "" if args.images else " of dead leaves"
    fig.suptitle(f"sharpen stack{of}: one anisotropic Gaussian blur + demosaicking residual noise, per-patch noise")
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[argparse.Namespace], Figure]] = {
    "sharpen_stack": make_sharpen_stack,
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, help="folder of photos (default: procedural dead leaves)")
    p.add_argument("--out-dir", default=str(Path(__file__).parent))
    p.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="figures to make (default: all)")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--overwrite", action="store_true", help="replace figures already in --out-dir")
    args = p.parse_args(argv)
    out = Path(args.out_dir)
    names = args.only or list(FIGURES)
    taken = [str(out / f"{name}.png") for name in names if (out / f"{name}.png").exists()]
    if taken and not args.overwrite:
        refuse(f"{', '.join(taken)}: already there; pass --overwrite to replace, or another --out-dir")
    if args.images is not None and not args.images.is_dir():
        what = "not a folder" if args.images.exists() else "no such folder"
        refuse(f"{args.images}: {what} (--images takes a folder of photos; leave it out for dead leaves)")
    if args.images is not None and not image_files(args.images):
        refuse(f"{args.images}: no images found (--images takes a folder of photos; leave it out for dead leaves)")
    if args.images is None:
        print("no --images: the stacks are cut from procedural dead leaves")
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        fig = FIGURES[name](args)
        buf = io.BytesIO()
        fig.savefig(buf, dpi=100, format="png")
        plt.close(fig)
        print(f"wrote {atomic_write_bytes(out / f'{name}.png', buf.getvalue(), overwrite=True)}")


if __name__ == "__main__":
    main()
