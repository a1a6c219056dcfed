"""Measurements behind the pipeline's defaults (run with one thread; figures go in docstrings/RESULTS): the
pipeline's own bench, kept in the measuring layer so the pipeline never imports it.

python -m isp_collab.bench.pipeline demosaic [IMAGE_OR_FOLDER ...]   # PSNR and time per method
python -m isp_collab.bench.pipeline stages RAW_FILE [--repeat 3]     # seconds per stage
python -m isp_collab.bench.pipeline stages RAW_FILE --sharpen-onnx X.onnx --threads 2 --write benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..pipeline.decode import ImageDecode
from ..pipeline.demosaic import DEMOSAIC_METHODS, demosaic
from ..pipeline.frame import CFA_PATTERNS, site_colour
from ..pipeline.stages import srgb_to_linear
from . import metrics

SHARED_VAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "images" / "val"
CAMERA_GAINS = np.array([2.2, 1.0, 1.9], dtype=np.float32)  # a typical daylight WB: camera R and B are weak


def mosaic_rgb(image: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 3) -> (H, W) Bayer mosaic with ``pattern`` (H, W cropped to even)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    colour = site_colour(pattern)  # type: ignore[arg-type]
    out = np.empty((h, w), dtype=np.float32)
    for i in range(2):
        for j in range(2):
            out[i::2, j::2] = image[i:h:2, j:w:2, colour[i, j]]
    return out


def psnr(a: np.ndarray, b: np.ndarray, border: int = 8) -> float:
    """PSNR in dB of the (H, W, 3) estimate ``a`` clipped to [0, 1] against ``b``, ``border`` pixels excluded."""
    return metrics.psnr(np.clip(a, 0, 1), b, border)


def compare_demosaic(paths: list[Path], methods: Sequence[str] = DEMOSAIC_METHODS) -> dict[str, dict[str, float]]:
    """Mean linear-RGB PSNR over images x 4 patterns, on balanced and camera (unbalanced) mosaics."""
    scores: dict[str, dict[str, list[float]]] = {
        m: {"balanced": [], "camera": [], "camera_prebalanced": []} for m in methods
    }
    for p in paths:
        srgb, _ = ImageDecode()(p)
        lin = srgb_to_linear(srgb)
        lin = lin[: lin.shape[0] // 2 * 2, : lin.shape[1] // 2 * 2]
        for pattern in CFA_PATTERNS:
            m = mosaic_rgb(lin, pattern)
            cam = mosaic_rgb(lin / CAMERA_GAINS, pattern)
            f = (CAMERA_GAINS / CAMERA_GAINS.max())[site_colour(pattern)]  # type: ignore[arg-type]
            pre = cam * np.tile(f, (cam.shape[0] // 2, cam.shape[1] // 2))
            for method in methods:
                s = scores[method]
                s["balanced"].append(psnr(demosaic(m, pattern, method), lin))
                s["camera"].append(psnr(demosaic(cam, pattern, method) * CAMERA_GAINS, lin))
                # what Demosaic does with known WB gains: pre = lin / max(gains) at every site
                s["camera_prebalanced"].append(psnr(demosaic(pre, pattern, method) * CAMERA_GAINS.max(), lin))
    return {m: {k: float(np.mean(v)) for k, v in s.items()} for m, s in scores.items()}


def time_demosaic(shape: tuple[int, int] = (2176, 4128), repeat: int = 3) -> dict[str, float]:
    """Best-of-``repeat`` seconds per method on a random mosaic of ``shape`` (the Blackmagic frame)."""
    m = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = {}
    for method in DEMOSAIC_METHODS:
        demosaic(m[:64, :64], "RGGB", method)  # warm-up (imports, torch init)
        best = np.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            demosaic(m, "RGGB", method)
            best = min(best, time.perf_counter() - t0)
        out[method] = best
    return out


def time_stages(path: Path, repeat: int = 3, **pipeline_kwargs) -> dict[str, float]:
    """Best-of-``repeat`` seconds per step of :meth:`Pipeline.run` + encode on ``path`` (nothing written)."""
    from ..pipeline import Pipeline

    pipeline = Pipeline(**pipeline_kwargs)
    best: dict[str, float] = {}
    for _ in range(repeat):
        result = pipeline.run(path)
        t0 = time.perf_counter()
        pipeline.output(result.image, result.frame, Path("x.png"))
        result.timings["encode_png8"] = time.perf_counter() - t0
        for k, v in result.timings.items():
            best[k] = min(best.get(k, np.inf), v)
    best["total"] = sum(best.values())
    return best


def main(argv: list[str] | None = None) -> None:
    """``python -m isp_collab.bench.pipeline``: the demosaic or per-stage measurements (module docstring)."""
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(prog="python -m isp_collab.bench.pipeline")
    sub = ap.add_subparsers(dest="what", required=True)
    d = sub.add_parser("demosaic")
    d.add_argument("images", nargs="*", type=Path)
    s = sub.add_parser("stages")
    s.add_argument("raw", type=Path)
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument("--demosaic", default="malvar", choices=DEMOSAIC_METHODS)
    s.add_argument("--sharpen-onnx", type=Path, help="run the sharpen stage with this exported ONNX model")
    s.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1); ONNX Runtime uses its default (all physical cores)",
    )
    s.add_argument("--write", type=Path, help="write the table as the 'pipeline' section of this RESULTS.md")
    args = ap.parse_args(argv)
    if args.what == "demosaic":
        items = args.images or [SHARED_VAL / "set14", SHARED_VAL / "set5"]
        paths = sorted(q for i in items for q in (i.iterdir() if i.is_dir() else [i]) if q.suffix.lower() == ".png")
        scores = compare_demosaic(paths)
        times = time_demosaic()
        print(f"{len(paths)} images x {len(CFA_PATTERNS)} patterns; linear-RGB PSNR (dB); time on 2176x4128, 1 thread")
        for m in DEMOSAIC_METHODS:
            s = scores[m]
            print(
                f"{m:10s} balanced {s['balanced']:6.2f}  camera {s['camera']:6.2f}  "
                f"camera pre-balanced {s['camera_prebalanced']:6.2f}  {times[m]:.3f} s"
            )
    else:
        import os

        from ..pipeline.collaborative import Sharpen
        from ..pipeline.demosaic import Demosaic

        torch.set_num_threads(args.threads)
        kwargs: dict = {"demosaic": Demosaic(args.demosaic)}
        if args.sharpen_onnx:
            kwargs["sharpen"] = Sharpen(onnx_path=str(args.sharpen_onnx))
        t = time_stages(args.raw, args.repeat, **kwargs)
        stage = f"sharpen on ONNX Runtime ({args.sharpen_onnx.name})" if args.sharpen_onnx else "no restoration stage"
        head = f"`{args.raw.name}`, {stage}, demosaic {args.demosaic}: best of {args.repeat} runs, {args.threads} thread(s)"
        print(head)
        for k, v in t.items():
            print(f"  {k:14s} {v:.3f} s")
        if args.write:
            from .report import write_section

            rows = "\n".join(f"| {k} | {v:.2f} |" for k, v in t.items())
            body = (
                "## Pipeline: seconds per stage on one RAW frame\n\n"
                f"Command: `python -m isp_collab.bench.pipeline stages {args.raw} "
                f"{'--sharpen-onnx ' + str(args.sharpen_onnx) + ' ' if args.sharpen_onnx else ''}--threads {args.threads}` "
                f"({time.strftime('%Y-%m-%d')}). {head}; load average before: {os.getloadavg()[0]:.1f}.\n\n"
                f"| step | seconds |\n|---|---:|\n{rows}\n"
            )
            write_section(args.write, "pipeline", body)
            print(f"wrote the pipeline section of {args.write}")


if __name__ == "__main__":
    main()
