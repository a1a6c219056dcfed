"""Cost benchmark: parameters, FLOPs, whole-image latency per runtime, throughput, memory.

How it measures: see :data:`HOW` (also written into RESULTS.md).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .speed_specs import OVERLAP, TILE, ModelSpec, size_refusal
from .timing import matmul_peak, peak_rss_mb, set_threads, summary, time_fn

if TYPE_CHECKING:
    from ..restore.backends import Backend

RUNTIMES = ("torch", "torch-cl", "onnx-fp32", "onnx-int8", "cuda", "cuda-cl")
CUDA_RUNTIMES = ("cuda", "cuda-cl")
#: One bullet per aspect of the method; RESULTS.md repeats them.
HOW: tuple[str, ...] = (
    "every measurement runs in a fresh `spawn` child process with a fixed thread count (torch intra-op threads "
    "and 1 inter-op thread, ONNX Runtime `intra_op_num_threads`, OpenCV `setNumThreads`); peak RSS is that "
    "process's `VmHWM` (Python and the libraries included), so it belongs to one runtime alone",
    "latency: whole-image `isp_collab.restore.restore` (tile 256 for every runtime, the exports' static tile; "
    "restore's own default with PyTorch on a CPU is 192 for N = 3..4 and 160 above, faster there: RESULTS *tile-default*; "
    "overlap 32, the model's trained N, "
    '`strategy="spread"`, `"mirror"` for a lens model) of one benchmark image resized to a square (linear RGB; '
    "512x512 unless `--size`, larger where its tiles would not fill a stack of the largest N: `restore` caps a stack "
    "at the image's tiles, a static-N export repeats them); one warm-up run, then the median of the timed runs, in ms per megapixel of image. "
    "The tiles of a small image cover more than its pixels (2.25x at 512x512), so its ms/MP overstate a camera "
    "frame's (`--size 2048`: 1.56x)",
    "runtimes: `torch` = eager float32 on CPU, NCHW (`TorchBackend(channels_last=False)`); `torch-cl` = the same "
    "in channels-last (NHWC) memory format (restore's CPU default); `onnx-fp32` / `onnx-int8` = ONNX Runtime CPU "
    "on the files of `isp_collab.export.api.export_model` (BatchNorm folded; int8 = static QDQ, calibrated on "
    "validation stacks); `cuda` / `cuda-cl` = the same torch float32 on the GPU, NCHW / channels-last, when "
    "`torch.cuda.is_available()` (else skipped, with the reason; times synchronised with `torch.cuda.synchronize`, "
    "and include the host work of tiling, gathering and stitching and the copies to and from the GPU)",
    "FLOPs: `isp_collab.models.gflops_per_megapixel` (`torch.utils.flop_counter`, GFLOPs = 2 x GMACs, per "
    "megapixel of network input); tiling overlap and stack padding make a whole image cost more than that",
    "achieved GFLOP/s: torch-counted FLOPs of one (1, N, 3, 256, 256) stack / the median time of one backend "
    "call on it (network only), as a fraction of the fp32 throughput of `torch.mm` on two square fp32 "
    "matrices (2 n^3 FLOPs, median of runs) at the same thread count: a reference rate, not the hardware "
    "peak, so a runtime with faster kernels (ONNX Runtime) can exceed 100 %; for int8 it is an fp32-equivalent "
    "rate, not comparable with the fp32 reference",
    "classical sharpeners: unsharp mask (OpenCV) and Polyblur (`polyblur` package, torch CPU) with the tuned "
    "parameters, timed on the same image",
)
# ----------------------------------------------------------------------------------------------
# ONNX artefacts


def model_dir_for(spec: ModelSpec, workdir: Path) -> str:
    """A folder ``export_model`` can read: the shipped name, or the untrained stand-in saved under ``workdir``."""
    if spec.name is not None:
        return spec.name
    from ..models import save_model

    out = workdir / _slug(spec.label)
    if not (out / "card.json").is_file():
        save_model(spec.build("cpu"), out, {"name": _slug(spec.label), "n_trained": spec.n, "task": "sharpen"})
    return str(out)


def export_onnx_files(
    spec: ModelSpec, precisions: Sequence[str], tile: int, workdir: Path
) -> tuple[dict[str, Path], str]:
    """ONNX files ``{precision: path}`` of ``spec`` for a static (1, N, 3, tile, tile) stack.

    One call of ``isp_collab.export.api.export_model(..., formats=("onnx",), precisions=...)`` (BatchNorm
    folded, fp32 parity-checked, int8 = static QDQ calibrated on validation stacks). Returns
    ``(files, "")`` or ``({}, reason)`` when the export is unavailable or fails.
    """
    if not precisions:
        return {}, ""
    try:
        from ..export.api import export_model
    except ImportError as e:
        return {}, f"isp_collab.export.api is not available ({e})"
    import warnings

    out = workdir / "onnx" / _slug(spec.label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arts = export_model(
                model_dir_for(spec, workdir),
                n=spec.n,
                tile=tile,
                formats=("onnx",),
                precisions=list(precisions),
                out_dir=out,
                overwrite=True,
            )
    except Exception as e:  # report and go on with the other runtimes
        return {}, f"export_model failed: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return {a.precision: Path(a.path) for a in arts}, ""


# ----------------------------------------------------------------------------------------------
# child-process measurements


def _worker(job: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh process; returns timings and the process's peak RSS."""
    threads = int(job["threads"])
    set_threads(threads)
    kind = job["kind"]
    image: np.ndarray = job["image"]
    mpix = image.shape[0] * image.shape[1] / 1e6
    reps, warmup = int(job["reps"]), int(job.get("warmup", 1))
    out: dict[str, Any] = {"kind": kind, "label": job["label"], "mpix": mpix, "threads": threads}
    try:
        if kind == "matmul":
            out.update(matmul_peak(threads, int(job["matmul_n"]), reps))
        elif kind in ("unsharp", "polyblur"):
            from . import classical

            p = job["params"]
            fn = (
                (lambda: classical.unsharp_mask(image, **p))
                if kind == "unsharp"
                else (lambda: classical.polyblur_deblur(image, **p))
            )
            times = time_fn(fn, reps, warmup)
            out.update(summary(times, mpix))
        else:
            out.update(_time_restore(job, image, mpix, reps, warmup))
    except Exception as e:
        out["error"] = f"{e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def make_runtime_backend(job: dict[str, Any]) -> Backend:
    """The ``restore`` backend of a job's runtime (torch NCHW / channels-last / CUDA, or ONNX Runtime CPU)."""
    from ..restore import OnnxBackend, TorchBackend

    spec: ModelSpec = job["spec"]
    kind = job["kind"]
    threads = int(job["threads"])
    if kind.startswith("onnx"):
        return OnnxBackend(job["onnx_path"], providers=["CPUExecutionProvider"], threads=threads)
    device = "cuda" if kind in CUDA_RUNTIMES else "cpu"
    return TorchBackend(spec.build(device), device, channels_last=kind.endswith("-cl"))


def _time_restore(job: dict, image: np.ndarray, mpix: float, reps: int, warmup: int) -> dict[str, Any]:
    import torch

    from ..restore import restore

    spec: ModelSpec = job["spec"]
    backend = make_runtime_backend(job)
    sync = torch.cuda.synchronize if job["kind"] in CUDA_RUNTIMES else None
    res = summary(
        time_fn(
            lambda: restore(image, backend, n=spec.n, strategy=spec.strategy, tile=TILE, overlap=OVERLAP),
            reps,
            warmup,
            sync,
        ),
        mpix,
    )
    # Network only: one (1, N, 3, TILE, TILE) stack through the backend; FLOPs counted on the torch graph.
    stack = np.random.default_rng(0).random((1, spec.n, 3, TILE, TILE), dtype=np.float32)
    t = statistics.median(time_fn(lambda: backend.run(stack), reps, warmup, sync))
    flops = float(job["net_flops"])
    res.update({"net_flops": flops, "net_median_s": t, "achieved_gflops": flops / t / 1e9})
    return res


def run_jobs(jobs: Sequence[dict[str, Any]], progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run each job in its own ``spawn`` child (one at a time, so they do not compete)."""
    ctx = mp.get_context("spawn")
    results = []
    for job in jobs:
        with ctx.Pool(1, maxtasksperchild=1) as pool:
            r = pool.apply(_worker, (job,))
        results.append(r)
        if progress:
            what = r.get("error") or (
                f"{r['ms_per_mp']:.0f} ms/MP" if "ms_per_mp" in r else f"{r.get('gflops', 0):.1f} GFLOP/s"
            )
            progress(f"  speed: {r['label']} [{r['kind']}] {what}")
    return results


def bench_image(size: int, images: Sequence | None = None) -> np.ndarray:
    """``size x size x 3`` float32 linear RGB: the first benchmark image, resized (area / cubic)."""
    import cv2

    from .data import load_images
    from .protocol import linearise

    im = (images or load_images(max_images=1))[0].srgb
    interp = cv2.INTER_AREA if min(im.shape[:2]) > size else cv2.INTER_CUBIC
    return linearise(np.clip(cv2.resize(im, (size, size), interpolation=interp), 0, 1))


@dataclass
class SpeedResult:
    """Everything the speed section reports."""

    threads: int
    size: int
    reps: int
    models: list[dict[str, Any]]
    latency: list[dict[str, Any]]
    classical: list[dict[str, Any]]
    matmul: dict[str, Any]
    skipped: list[str]
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average before / after the measurements


def run_speed(
    specs: Sequence[ModelSpec],
    threads: int = 1,
    size: int = 512,
    reps: int = 5,
    runtimes: Sequence[str] = RUNTIMES,
    matmul_n: int = 2048,
    classical_params: dict[str, dict[str, Any]] | None = None,
    images: Sequence | None = None,
    workdir: str | Path | None = None,
    progress: Callable[[str], None] | None = print,
) -> SpeedResult:
    """Measure every model x runtime, the classical sharpeners and the ``torch.mm`` reference throughput.

    ``workdir`` receives the ONNX files (and saved stand-in models); default a temporary folder,
    removed afterwards.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="isp-collab-bench-") as d:
            return run_speed(
                specs, threads, size, reps, runtimes, matmul_n, classical_params, images, Path(d), progress
            )
    import torch

    from ..models import count_params, gflops_per_megapixel
    from ..models.complexity import stack_flops
    from . import classical

    if any(rt.startswith("onnx") for rt in runtimes) and (why := size_refusal(specs, size)):
        raise ValueError(why)
    if reps < 5:
        print(f"bench speed: {reps} reps (< 5): machinery check only, not a reportable figure")
    say = progress or (lambda s: None)
    image = bench_image(size, images)
    skipped: list[str] = []
    runtimes = list(runtimes)
    if any(r in runtimes for r in CUDA_RUNTIMES) and not torch.cuda.is_available():
        runtimes = [r for r in runtimes if r not in CUDA_RUNTIMES]
        skipped.append("cuda: torch.cuda.is_available() is False on this machine (CUDA reference not measured)")
    base = {"threads": threads, "image": image, "reps": reps}
    models_info, jobs = [], []
    tmp = Path(workdir)
    for spec in specs:
        model = spec.build("cpu")
        info = {
            "label": spec.label,
            "n": spec.n,
            "params": count_params(model),
            "gflops_per_mp": gflops_per_megapixel(model, n=spec.n),
            "stack_flops": stack_flops(model, spec.n, TILE),
        }
        models_info.append(info)
        precisions = [rt.split("-", 1)[1] for rt in runtimes if rt.startswith("onnx")]
        say(f"speed: exporting {spec.label} to ONNX {', '.join(precisions)} ...")
        files, why = export_onnx_files(spec, precisions, TILE, tmp)
        for rt in runtimes:
            job = {**base, "kind": rt, "label": spec.label, "spec": spec, "net_flops": info["stack_flops"]}
            if rt.startswith("onnx"):
                path = files.get(rt.split("-", 1)[1])
                if path is None:
                    reason = why or "no file written"
                    skipped.append(f"{spec.label} {rt}: {reason}")
                    print(f"bench speed: skipping {spec.label} {rt}: {reason}")
                    continue
                job["onnx_path"] = str(path)
            jobs.append(job)
    params = classical_params or classical.load_params()
    jobs.append(
        {**base, "kind": "unsharp", "label": "unsharp mask", "params": _only(params["unsharp"], classical.UNSHARP_KEYS)}
    )
    ok, why = classical.polyblur_status()
    if ok:
        jobs.append(
            {
                **base,
                "kind": "polyblur",
                "label": "Polyblur",
                "params": _only(params["polyblur"], classical.POLYBLUR_KEYS),
            }
        )
    else:
        skipped.append(f"Polyblur: {why}")
        print(f"bench speed: skipping Polyblur: {why}")
    jobs.append({**base, "kind": "matmul", "label": "torch.mm fp32", "matmul_n": matmul_n})
    say(f"speed: {len(jobs)} measurements, {threads} thread(s), {size}x{size} image, median of {reps}")
    load_before = os.getloadavg()[0]
    results = run_jobs(jobs, say)
    load_after = os.getloadavg()[0]
    latency = [r for r in results if r["kind"] in RUNTIMES]
    for r in latency:
        info = next(m for m in models_info if m["label"] == r["label"])
        r["params"], r["gflops_per_mp"] = info["params"], info["gflops_per_mp"]
        if "error" in r:
            skipped.append(f"{r['label']} {r['kind']}: {r['error']}")
    return SpeedResult(
        threads=threads,
        size=size,
        reps=reps,
        models=models_info,
        latency=latency,
        classical=[r for r in results if r["kind"] in ("unsharp", "polyblur")],
        matmul=next(r for r in results if r["kind"] == "matmul"),
        skipped=skipped,
        load=(load_before, load_after),
    )


def _only(d: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k in keys}


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s)
