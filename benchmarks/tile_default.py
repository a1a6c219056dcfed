"""Restore's default tile per stack size: PyTorch CPU time per MP by tile, and whole-image quality at 256 and at the default.

    .venv/bin/python benchmarks/tile_default.py [--rounds 5] [--threads 2] [--section tile-default]

Speed: a 1920x1080 frame (random linear RGB: the time does not depend on the content; ``--image``: a file, decoded
as ``process`` does) restored by
``isp_collab.restore.restore`` with each shipped UNet-TX sharpening model (its trained N, spread stacks, the
CPU backend's defaults) at every tile of ``--tiles``, the runs interleaved over ``--rounds`` rounds (so a
slow spell of the machine hits every tile alike); median and minimum seconds per MP; and the N=4 model exported
to ONNX fp32 at each tile (``export_model``, a static shape per file) through ONNX Runtime. Quality: the *quality*
protocol (``isp-collab bench quality``: 17 photos, σ = 1..4 and one anisotropic blur) for the sharpening models
and the *lens* protocol (``bench lens``, lens-a) for the lens-a models, at tile 256 and at
``isp_collab.restore.default_tile`` of the model's N, on one thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from isp_collab.bench.data import load_images
from isp_collab.bench.lens import run_lens, summarise_lens
from isp_collab.bench.protocol import degradation_names
from isp_collab.bench.quality import model_restorer, run_quality, summarise
from isp_collab.bench.report import check_section, md_table, publish
from isp_collab.models import load_model
from isp_collab.restore import TorchBackend, default_tile, restore

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SHARPEN = ("sharpen-unet-tx-n1", "sharpen-unet-tx-n4", "sharpen-unet-tx-n8")
LENS = ("lens-a-unet-tx-n1", "lens-a-unet-tx-n4")


def _interleaved(image: np.ndarray, backends: dict[int, object], rounds: int) -> dict[int, list[float]]:
    """Seconds per MP of ``restore(image, backends[tile], tile=tile)`` per tile, the tiles interleaved per round."""
    mp = image.shape[0] * image.shape[1] / 1e6
    for tile, backend in backends.items():
        restore(image[:300, :300], backend, tile=tile)  # warm-up
    times: dict[int, list[float]] = {t: [] for t in backends}
    for _ in range(rounds):
        for tile, backend in backends.items():
            t0 = time.perf_counter()
            restore(image, backend, tile=tile)
            times[tile].append((time.perf_counter() - t0) / mp)
    return times


def read_frame(path: str | None) -> np.ndarray:
    """The frame to time: a file decoded as ``isp-collab process`` decodes it (the image its restoration stages get,
    linear camera RGB), or a random 1920x1080 one (None)."""
    if path is None:
        return np.random.default_rng(0).random((1080, 1920, 3), dtype=np.float32) * 0.5
    from isp_collab.pipeline import Pipeline

    return Pipeline().read(path)[0]


def speed_table(tiles: list[int], rounds: int, threads: int, image: np.ndarray) -> str:
    """Median (min) s/MP per model and tile, interleaved rounds; the default tile of each N in bold. The last row:
    ONNX Runtime fp32 on files of the N=4 model exported at each tile (a static shape each)."""
    from isp_collab.export.api import export_model
    from isp_collab.restore import OnnxBackend

    rows = []

    def row(label: str, times: dict[int, list[float]], bold: int | None) -> None:
        cells = []
        for t in tiles:
            cell = f"{statistics.median(times[t]):.2f} ({min(times[t]):.2f})"
            cells.append(f"**{cell}**" if t == bold else cell)
        rows.append([label, *cells])
        print(f"speed {label}: " + " | ".join(cells), flush=True)

    for name in SHARPEN:
        backend = TorchBackend(load_model(name, device="cpu"), "cpu")
        n = int(backend.model.card["n_trained"])
        row(f"{name} (N={n}), PyTorch", _interleaved(image, dict.fromkeys(tiles, backend), rounds), default_tile(n))
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for t in tiles:
            (art,) = export_model(
                SHARPEN[1], tile=t, formats=("onnx",), precisions=["fp32"], out_dir=Path(tmp) / str(t)
            )
            files[t] = OnnxBackend(art.path, threads=threads)
        row(f"{SHARPEN[1]} (N=4), ONNX Runtime fp32", _interleaved(image, files, rounds), None)
    return md_table(["model", *(f"tile {t}" for t in tiles)], rows)


def quality_table() -> str:
    """Mean PSNR at tile 256 and at the default tile: sharpening (quality protocol) and lens-a (edge / mean)."""
    photos = load_images(None, None)
    rows = []
    for name in SHARPEN:
        n = int(load_model(name, device="cpu").card["n_trained"])
        per_tile = {}
        for t in dict.fromkeys((256, default_tile(n))):
            run, _ = model_restorer(name, tile=t)
            per_tile[t] = summarise(run_quality(photos, {"m": run}, degradation_names())[0])["m"]["mean"]
        d = default_tile(n)
        rows.append([name, "quality, mean over blurs", f"{per_tile[256]:.3f}", d, f"{per_tile[d]:.3f}"])
        print(rows[-1], flush=True)
    for name in LENS:
        n = int(load_model(name, device="cpu").card["n_trained"])
        d = default_tile(n)
        scores = {t: summarise_lens(run_lens(photos, [name], tile=t)) for t in dict.fromkeys((256, d))}
        for label in scores[256]:
            if label.startswith(name) and "no alignment" not in label:
                cells = [
                    " / ".join(f"{scores[t][label][r]:.2f}" for r in ("edge", "intermediate", "centre"))
                    for t in (256, d)
                ]
                rows.append([label, "lens-a, edge / intermediate / centre", cells[0], d, cells[1]])
                print(rows[-1], flush=True)
    return md_table(["model", "protocol", "tile 256", "default tile", "at the default"], rows)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", default="256,224,192,160,128", help="tiles to time (comma-separated)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the speed runs (default 5)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads of the speed runs (default 2)")
    ap.add_argument("--image", help="time on this file, decoded as process does (default: a random 1920x1080 frame)")
    ap.add_argument("--skip-quality", action="store_true", help="time only")
    ap.add_argument("--section", help="RESULTS.md section to write (default: print only)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="let --section replace a section RESULTS.md holds, or one another command writes",
    )
    args = ap.parse_args(argv)
    check_section(args.results, args.section, args.overwrite)
    tiles = [int(t) for t in args.tiles.split(",")]
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    image = read_frame(args.image)
    speed = speed_table(tiles, args.rounds, args.threads, image)
    parts = [
        "## Restore's default tile per stack size\n\n"
        "One network call holds a stack of N tiles, so its activations grow with N x tile²; on this CPU past its cache "
        "every conv slows per pixel. `isp_collab.restore.default_tile` therefore takes 256 px for N <= 2, 192 for "
        "N = 3..4 and 160 above (a caller's `tile` and an exported file's static tile are kept; ONNX Runtime showed "
        "no such step). Command: `.venv/bin/python benchmarks/tile_default.py --section tile-default --overwrite`.",
        f"Speed: whole-image restore on the CPU, PyTorch (channels-last, BatchNorm folded) and ONNX Runtime, "
        f"{args.threads} thread(s), {args.image or 'a random'} {image.shape[1]}x{image.shape[0]} frame, s/MP median (min) of {args.rounds} interleaved rounds; bold: "
        "`default_tile` of the model's N.",
        speed,
    ]
    if not args.skip_quality:
        torch.set_num_threads(1)
        parts += ["Quality (PSNR, dB, linear RGB; 1 thread):", quality_table()]
    parts.append(f"{time.perf_counter() - t0:.0f} s in all.")
    body = "\n\n".join(parts)
    publish(body, args.results, args.section, args.overwrite)
    return body


if __name__ == "__main__":
    main()
