"""``isp-collab bench {quality,lens,speed,kernels,training,tune,all}``: regenerate benchmarks/RESULTS.md and its plots."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .paths import path_arg

ACTIONS = ("quality", "lens", "speed", "kernels", "training", "tune", "all")
DEFAULT_THREADS = 1
#: The RESULTS.md sections each action writes (before the --images suffix); the machine section only merges rows.
ACTION_SECTIONS = {
    "kernels": ("kernel-estimation",),
    "tune": ("classical-params",),
    "training": ("training", "collab-gain"),
    "quality": ("quality", "lens"),
    "lens": ("lens",),
    "speed": ("speed",),
}
ACTION_SECTIONS["all"] = tuple(s for a in ("kernels", "training", "quality", "speed") for s in ACTION_SECTIONS[a])
#: Sections an action also rewrites from what it reads (quality: the tuned parameters it used). An earlier
#: run's copy does not block the action (``bench tune`` then ``bench quality`` into one folder), but a
#: failed run takes them back like the sections above.
ACTION_ALSO_WRITES = {"quality": ("classical-params",), "all": ("classical-params",)}
#: The files (stem, suffix) each action writes beside RESULTS.md (stems suffixed for --images like sections).
ACTION_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "kernels": (("ksim_vs_n", ".png"),),
    "tune": (("classical_params", ".json"),),
    "training": (("training_sharpen", ".png"), ("training_lens", ".png")),
    "quality": (("psnr_vs_sigma", ".png"), ("psnr_vs_n", ".png"), ("crops", ".png")),
    "lens": (),
    "speed": (("latency_vs_params", ".png"),),
}
ACTION_FILES["all"] = tuple(f for a in ("kernels", "training", "quality", "speed") for f in ACTION_FILES[a])
#: The actions that measure Polyblur (skipped, with a printed reason, when its package is missing).
USES_POLYBLUR = ("tune", "quality", "speed", "all")
#: The model task each action needs at least one model of, when --models names them.
ACTION_TASKS = {"lens": "lens"}
#: Actions that measure nothing without a model: ``--models`` naming none is refused (in quality and
#: all, whose other sections still measure something, their sections say "Not measured" instead).
NEEDS_A_MODEL = ("lens", "training")
#: Actions that read the tuned classical parameters (a full run refuses quick-tuned ones).
USES_PARAMS = ("quality", "speed", "all")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand and its flags."""
    p = sub.add_parser(
        "bench",
        help="benchmarks: quality vs classical sharpeners, cost per runtime, the kernel-estimation experiment",
        description=(
            "Run a benchmark and write its section of RESULTS.md plus PNG plots in --out. "
            "quality: PSNR/SSIM of the blurry input, unsharp mask, Polyblur and the shipped models (paper §5.2), "
            "and the lens table; lens: the lens table alone (each lens model on the lens of its card); speed: "
            "params, GFLOPs/MP, latency per runtime, memory; kernels: the paper's §3 "
            "kernel-estimation experiment (KSIM vs N); tune: grid-search the classical sharpeners' parameters "
            "on the validation set (writes classical_params.json; not part of 'all'); training: tables and "
            "curves of the shipped models and the collaboration gain vs tile/stack size; all: "
            "kernels + training + quality + speed. The machine section records, per section measured, the "
            "threads and device. Your own models, device, threads or images go to --out DIR: the published "
            "benchmarks/ is refused without --overwrite, and so is a --out DIR whose RESULTS.md already holds the "
            "sections this action writes. With --images every section and plot name gets the "
            "folder's name and a short hash of its path; greyscale images are skipped, with a warning naming "
            "them. Parameters tuned by `tune --quick` are marked quick, and a full quality, speed or all "
            "refuses them."
        ),
    )
    p.add_argument("action", choices=ACTIONS, help="which benchmark")
    p.add_argument(
        "--quick",
        action="store_true",
        help="check the machinery in under 2 minutes (tiny crops, 1-2 images, few repetitions); "
        "writes to a temporary folder unless --out is given",
    )
    p.add_argument("--images", type=Path, default=None, help="folder of colour images (default: benchmarks/data/val)")
    p.add_argument(
        "--out", type=path_arg, default=None, help="output folder for RESULTS.md and plots (default: benchmarks/)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"CPU threads for every runtime (default {DEFAULT_THREADS})",
    )
    p.add_argument(
        "--size",
        type=int,
        default=None,
        metavar="PX",
        help="speed, all: side of the square image whose restore is timed (default 512, 128 with --quick, larger "
        "where a model's N needs more tiles); the tiles of a small image cover more than its pixels, so a "
        "camera-sized --size 2048 gives lower ms/MP. A size whose 256-px tiles are fewer than a model's N is "
        "refused: torch would run fewer tiles per stack than the static-N ONNX export",
    )
    p.add_argument(
        "--models",
        nargs="*",
        default=None,
        help="model names or folders (default: all shipped models; --models alone: none, the classical "
        "baselines and untrained networks only, refused by lens and training, which need a model); "
        "quality, lens, speed, training, all",
    )
    p.add_argument(
        "--device",
        default=None,
        help="device for the networks of quality, lens and training (default: CUDA when available, else CPU)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="let --models, --device, --threads, --quick or --images write into the published benchmarks/RESULTS.md "
        "and its plots (without it such a run needs --out DIR), and let a run replace the sections of an earlier "
        "run in --out DIR",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check every input, then run the action and write its sections, plots and machine rows in --out."""
    from ..bench.data import BENCH_DIR
    from ..bench.inputs import unused_flag
    from ..bench.options import BenchOptions
    from ..bench.params import check_params_not_quick
    from ..bench.report import read_results
    from ..bench.rollback import all_or_nothing
    from ..bench.run import (
        bench_kernels,
        bench_lens_only,
        bench_quality,
        bench_speed,
        bench_training,
        bench_tune,
        write_machine,
    )
    from ..shipped import in_checkout
    from . import CLIError, require_parent_folder

    if args.threads < 1:
        raise CLIError(f"--threads must be >= 1, got {args.threads}")
    cpus = os.cpu_count() or 1
    if args.threads > cpus:
        print(
            f"bench {args.action}: warning: --threads {args.threads} exceeds the {cpus} CPUs here; "
            "threads then share cores and the times are pessimistic",
            file=sys.stderr,
        )
    if args.size is not None:
        if args.action not in ("speed", "all"):
            raise CLIError(
                f"--size does not apply to `bench {args.action}` (only speed and all time an image); drop it"
            )
        if not 64 <= args.size <= 8192:
            raise CLIError(f"--size must be between 64 and 8192 px, got {args.size}")
    if args.images is not None and not args.images.is_dir():
        what = "not a folder" if args.images.exists() else "no such image folder"
        raise CLIError(f"{args.images}: {what} (--images takes a folder of colour images)")
    refusal = unused_flag(args.action, args.models, args.device)
    if refusal is not None:
        raise CLIError(refusal)
    if args.models == [] and args.action in NEEDS_A_MODEL:
        raise CLIError(
            f"`bench {args.action}` needs a model: --models names none (name models or folders, "
            "or drop --models for the shipped ones)"
        )
    if args.out is not None:
        out = args.out
        require_parent_folder(out, "parent folder")
    elif args.quick:
        out = None  # a temporary folder, made once the inputs are checked
    elif not in_checkout():  # a wheel install: no benchmarks/ folder of a checkout to publish into
        raise CLIError("pass --out DIR (or --quick): the published benchmarks/ folder exists only in a source checkout")
    else:
        out = BENCH_DIR
    if out is not None and not args.overwrite:
        _refuse_published(args, out, BENCH_DIR)
        _refuse_replacing(args, out, BENCH_DIR)
    if out is not None:  # section markers that do not pair up: a merge would drop sections, so refused now
        read_results(BenchOptions(out=out, images=args.images).results)
    # the published sections themselves (--images writes sections and plots of its own names)
    publishing = out is not None and out.resolve() == BENCH_DIR.resolve() and not args.quick and args.images is None
    if publishing and args.action in USES_POLYBLUR:
        from ..bench.classical import polyblur_status

        ok, why = polyblur_status()
        if not ok:  # the published Polyblur rows and tuned parameters would be dropped
            raise CLIError(f"{why}; it is needed to regenerate the published {BENCH_DIR / 'RESULTS.md'}")
    _check_inputs(args)  # models, their lenses, device, images: before anything is written
    if args.size is not None:  # a stack the image's tiles cannot fill: torch caps it, a static-N export repeats tiles
        from ..bench.speed_specs import size_refusal, specs_to_time

        refusal = size_refusal(specs_to_time(args.models, args.quick)[0], args.size)
        if refusal is not None:
            raise CLIError(refusal)
    if out is not None and args.action in USES_PARAMS:
        check_params_not_quick(BenchOptions(out=out, quick=args.quick, images=args.images))
    if out is None:
        out, created = Path(tempfile.mkdtemp(prefix="isp-collab-bench-quick-")), True
    else:
        created = not out.exists()
        if out.exists() and not out.is_dir():
            raise CLIError(f"{out}: a file, not a folder (--out takes the folder to write RESULTS.md and plots into)")
        try:
            out.mkdir(exist_ok=True)
        except OSError as e:
            raise CLIError(f"{out}: cannot create the output folder ({e.strerror})") from None
        _require_writable(out, created)
    opts = BenchOptions(
        out=out,
        quick=args.quick,
        images=args.images,
        threads=args.threads,
        models=args.models,
        device=args.device,
        size=args.size,
    )
    print(f"bench {args.action}: writing to {out}{' (quick mode)' if args.quick else ''}, {args.threads} thread(s)")
    written = [opts.file(stem, suffix) for stem, suffix in ACTION_FILES[args.action]]
    written_sections = (*ACTION_SECTIONS[args.action], *ACTION_ALSO_WRITES.get(args.action, ()))
    sections = [*map(opts.section, written_sections), "machine"]
    with all_or_nothing(out, created, written, opts.results, sections):  # a failure half-way takes its writes back
        steps = {
            "kernels": (bench_kernels,),
            "tune": (bench_tune,),
            "training": (bench_training,),
            "quality": (bench_quality,),
            "lens": (bench_lens_only,),
            "speed": (bench_speed,),
            "all": (bench_kernels, bench_training, bench_quality, bench_speed),
        }
        for step in steps[args.action]:
            step(opts)
        write_machine(opts)  # threads / device / date of the sections this run measured, and of no other
    print(f"bench {args.action}: done, see {opts.results}")
    return 0


def _require_writable(out: Path, created: bool) -> None:
    """Refuse, before anything is computed, an output folder this run cannot write into."""
    from . import CLIError

    try:
        fd, probe = tempfile.mkstemp(prefix=".isp-collab-bench-", dir=out)
    except OSError as e:
        if created:
            out.rmdir()
        raise CLIError(f"{out}: cannot write into the output folder ({e.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def _refuse_published(args: argparse.Namespace, out: Path, published: Path) -> None:
    """Refuse a run with the user's own models / device / threads / quick sizes / images into the published folder.

    Images of another folder would add sections of the user's photos (and their path) to the published file.
    """
    from ..bench.options import BenchOptions
    from . import CLIError

    if out.resolve() != published.resolve():
        return
    given = [
        flag
        for flag, on in (
            ("--models", args.models is not None),
            ("--device", args.device is not None),
            (f"--threads {args.threads}", args.threads != DEFAULT_THREADS),
            ("--quick", args.quick),
            (f"--size {args.size}", args.size is not None and args.size != 512),
            ("--images", BenchOptions(out=out, images=args.images).images_tag is not None),
        )
        if on
    ]
    if given:
        raise CLIError(
            f"{' '.join(given)} would write this run's figures into the published sections of "
            f"{published / 'RESULTS.md'} and its plots; pass --out DIR for your own results "
            "(or --overwrite to write them there)"
        )


def _refuse_replacing(args: argparse.Namespace, out: Path, published: Path) -> None:
    """Refuse a run into a folder of the user's whose RESULTS.md already holds this action's sections.

    The published benchmarks/ is exempt: it is regenerated in place and kept under version control.
    """
    from ..bench.options import BenchOptions
    from ..bench.report import held_sections
    from . import CLIError

    opts = BenchOptions(out=out, images=args.images)  # for the section names, suffixed for --images
    results = opts.results
    if out.resolve() == published.resolve():
        return
    existing = [p for p in (opts.file(stem, suffix) for stem, suffix in ACTION_FILES[args.action]) if p.exists()]
    if existing:
        raise CLIError(
            f"{existing[0]}: already exists ({len(existing)} of the files `bench {args.action}` writes are in {out}); "
            "pass --overwrite to replace them, or another --out DIR"
        )
    # a placeholder ("Not measured: no lens model") of an earlier run is there to be filled in: it does not block
    held = held_sections(results, [opts.section(s) for s in ACTION_SECTIONS[args.action]], placeholders=False)
    if held:
        raise CLIError(
            f"{results}: already holds section(s) {', '.join(held)} of an earlier run; "
            "pass --overwrite to replace them, or another --out DIR"
        )


def _check_inputs(args: argparse.Namespace) -> None:
    """Refuse, up front: unknown models, a lens model whose lens cannot be rebuilt, an unusable device,
    an image folder without colour images, and images below the size the action needs."""
    from ..bench.data import load_images
    from ..bench.inputs import check_images, skipped_warning
    from ..bench.quality import label_clash
    from ..models import WeightsError, load_model, read_card
    from . import CLIError

    clash = label_clash(args.models or [])
    if clash:
        raise CLIError(f"--models: {clash}")
    for name in args.models or []:
        read_card(name)
        try:
            load_model(name, device="cpu")  # the weights too: a corrupt file is found now, not half-way
        except WeightsError as e:
            raise CLIError(str(e)) from None
    task = ACTION_TASKS.get(args.action)
    if args.models and task is not None:
        from ..bench.quality import by_task

        if not by_task(args.models)[task]:
            raise CLIError(f"--models: `bench {args.action}` needs a {task} model, and none of {args.models} is one")
    ksize = 0
    if args.action in ("quality", "lens", "all"):
        from ..bench.lens import lens_models
        from ..bench.quality import by_task, shipped_by_task

        lenses = by_task(args.models)["lens"] if args.models is not None else shipped_by_task()["lens"]
        ksize = max((lz.ksize for lz in lens_models(lenses)), default=0)
    if args.device is not None:
        _check_device(args.device, CLIError)
    if args.images is not None:
        skipped: list[Path] = []
        load_images(args.images, skipped=skipped)  # decodes every image: a truncated one is refused now
        if skipped:
            print(f"bench {args.action}: warning: {skipped_warning(args.images, skipped)}", file=sys.stderr)
        check_images(args.images, args.action, args.quick, ksize)


def _check_device(name: str, error: type[Exception]) -> None:
    """``--device`` must be usable here: selected (ValueError) and able to hold a tensor (RuntimeError)."""
    import torch

    from ..device import pick_device

    try:
        torch.zeros(1, device=pick_device(name))
    except (ValueError, RuntimeError, AssertionError) as e:  # AssertionError: torch built without CUDA
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise error(reason if name in reason else f"device {name!r}: not usable here ({reason})") from None
