"""``isp-collab process``: RAW files or ordinary images in, finished images out (see :mod:`isp_collab.pipeline`)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

from ..pipeline.collaborative import LENS_MODEL, MAX_N
from ..pipeline.io import DEFAULT_MAX_PIXELS, OUTPUT_EXTENSIONS
from ..shipped import DEFAULT_MODEL
from .paths import nonblank
from .process_options import NETWORK_STAGES, build_pipeline


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``process`` subcommand to ``sub``."""
    p = sub.add_parser(
        "process",
        help="process RAW files or images through the camera pipeline with collaborative sharpening",
        description="Decode RAW (LibRaw formats, or headerless .raw with a .json/.toml description) or "
        "PNG/JPEG/TIFF, demosaic, white-balance, run the restoration stages on linear RGB, apply the "
        "colour matrix and tone, and write PNG/JPEG/TIFF. A bad file is reported by name and the others "
        "still finish; exit code 2 if any input was bad.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files and/or folders")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=nonblank,
        help="output file (one file input, a name with a suffix: x.png) or folder",
    )
    p.add_argument(
        "--stages",
        help="comma-separated restoration stages to run: sharpen, lens, unsharp, or 'none' "
        "(default: sharpen, or what --config enables)",
    )
    p.add_argument("--model", help=f"sharpen model: shipped name or model folder (default {DEFAULT_MODEL})")
    p.add_argument("--lens-model", help=f"lens-correction model: shipped name or model folder (default {LENS_MODEL})")
    p.add_argument(
        "--n",
        type=int,
        help=f"stack size N for the collaborative stages, 1..{MAX_N} (default: the model's; lens: best 1, 2 or a multiple of 4, "
        "as its stacks are mirror orbits of 4 tiles; another N runs with a warning)",
    )
    p.add_argument(
        "--tile",
        type=int,
        help="tile size for the collaborative stages, a multiple of the network's 2**depth (8 for UNet-T; default: on a CPU 256, 192 for N = 3..4, 160 above; 256 on a GPU; an ONNX file's own)",
    )
    p.add_argument("--backend", choices=("torch", "onnx"), help="network runtime (default torch)")
    p.add_argument(
        "--onnx",
        metavar="PATH",
        help="exported ONNX model for the one network stage run (implies --backend onnx; its sidecar X.json, "
        "required beside X.onnx, names the model and its task, so --model is not needed and, without --stages, "
        "the task picks the stage; for lens and sharpen together give each its onnx_path in --config)",
    )
    p.add_argument("--demosaic", choices=("malvar", "opencv_ea", "bilinear"), help="demosaicking method")
    p.add_argument(
        "--strength",
        type=float,
        help="sharpen stage: how much of the network's change to keep, 0..2 (default 1; 0 returns the input)",
    )
    p.add_argument(
        "--white-balance",
        metavar="MODE",
        help="RAW white balance: as_shot (the file's; gray world without one), gray_world, none, or gains R,G,B "
        "(default: as_shot, or the --config's)",
    )
    p.add_argument(
        "--exposure-ev",
        type=float,
        metavar="EV",
        help="brighten (or darken, < 0) by EV stops before the tone curve, -16..16 (e.g. a DNG's BaselineExposure)",
    )
    p.add_argument("--config", metavar="TOML", help="pipeline configuration file")
    p.add_argument("--format", choices=("png", "jpg", "tif"), help="output type in folder mode (default png)")
    p.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 16),
        help="output bit depth (default: the input's for PNG/JPEG/TIFF inputs, 8 for JPEG outputs, with a warning "
        "for 16-bit inputs; RAW: 8 for PNG/JPEG, 16 for TIFF)",
    )
    p.add_argument("--compare", action="store_true", help="also write OUTPUT_compare.png: before/after crop")
    replace = p.add_mutually_exclusive_group()
    replace.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    replace.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave inputs whose outputs exist alone: a re-run into the same folder processes only new files",
    )
    p.add_argument(
        "--max-pixels", type=int, metavar="N", help=f"refuse inputs above N pixels (default {DEFAULT_MAX_PIXELS:,})"
    )
    p.add_argument("--timings", action="store_true", help="print seconds per stage for each file")
    p.set_defaults(func=run)


def plan_jobs(
    jobs: list[tuple[Path, Path]], output: str | os.PathLike, compare: bool, taken: set[Path] = frozenset()
) -> list[tuple[Path, Path, Path | None]]:
    """(input, output, compare file or None) for each job, no two output paths of the run the same.

    :func:`~isp_collab.pipeline.batch.plan_outputs` names a second ``a.png`` ``a_png.png``; a third, or an
    input whose name is another's compare file (``a_compare.png``), would land on a path this run
    already writes, and an output must not replace another input of the run. In folder mode such an
    output gets ``_2``, ``_3``, ... (deterministic: jobs keep their order); an explicitly named output
    file is never renamed, so a clash there is an error. An output that is its own input (the same file,
    through a link or a case-insensitive file system too) is an error in both modes, even with
    ``--overwrite``. Paths compare case-insensitively (macOS, Windows). ``taken``: existing files no output may
    replace (``--skip-existing``: other inputs' results), avoided like the run's own outputs.
    """
    from ..pipeline import OutputError

    def key(p: Path) -> str:
        return os.path.normcase(os.path.abspath(p)).casefold()

    def compare_of(d: Path) -> Path | None:
        return d.with_name(f"{d.stem}_compare.png") if compare else None

    single = len(jobs) == 1 and jobs[0][1] == Path(output)
    inputs = {key(src) for src, _ in jobs}
    used: set[str] = {key(p) for p in taken}
    planned: list[tuple[Path, Path, Path | None]] = []
    for src, dst in jobs:
        refuse_own_input(src, dst, single)
        # an output may not take a path written earlier in the run or another input's; the compare
        # file not even its own input's
        blocked = used | (inputs - {key(src)})
        out, k = dst, 1
        while key(out) in blocked or ((c := compare_of(out)) is not None and key(c) in used | inputs):
            if single:
                raise OutputError(f"{compare_of(out)}: the compare image would replace the input {src}")
            k += 1
            out = dst.with_name(f"{dst.stem}_{k}{dst.suffix}")
        cmp = compare_of(out)
        used.update(key(p) for p in (out, cmp) if p is not None)
        planned.append((src, out, cmp))
    return planned


def refuse_own_input(src: Path, dst: Path, single: bool) -> None:
    """An output that is its own input (the same file, through a link or a case-insensitive file system too) is an
    error, even with ``--overwrite`` or ``--skip-existing``; ``single``: an explicitly named output file."""
    from ..pipeline import OutputError

    if _same_file(dst, src):
        raise OutputError(
            f"{dst}: the output would replace its own input; choose another {'output' if single else 'output folder'}"
        )


def _has_restoration_table(config: str | os.PathLike) -> bool:
    """Whether a (valid, already read) configuration file has a [sharpen], [lens] or [unsharp] table."""
    import tomllib

    from .process_options import RESTORATION

    with open(config, "rb") as f:
        tables = tomllib.load(f)
    return any(name in tables for name in RESTORATION)


def _same_file(a: Path, b: Path) -> bool:
    """Whether paths ``a`` and ``b`` are one file: the same resolved path, or (both existing) one inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _in_flag_terms(message: str, stage: str, args: argparse.Namespace) -> str:
    """A stage's ``sharpen.tile ...`` complaint worded as ``--tile ...`` when the value came from that flag,
    else led by the ``--config`` file it came from (``p.toml: [sharpen] overlap ...``)."""
    for key in ("tile", "n"):
        prefix = f"{stage}.{key}"
        if getattr(args, key, None) is not None and message.startswith(prefix):
            return f"--{key}{message[len(prefix) :]}"
    if getattr(args, "config", None) and message.startswith(f"{stage}."):
        from ..pipeline.pipeline import in_table

        return f"{args.config}: {in_table(stage, message)}"
    return message


def _synthetic_lens_note(stage: object) -> str | None:
    """A line for when the lens stage runs a model of a synthetic lens: on another lens it corrects the wrong
    aberrations; None otherwise."""
    lens = getattr(stage, "_model_card", {}).get("lens")
    if getattr(stage, "name", "") != "lens" or not isinstance(lens, str):
        return None
    from ..physics.optics import LENSES  # torch: only for a lens model

    if lens not in LENSES:
        return None
    return (
        f"isp-collab process: note: the lens model corrects the aberrations of the synthetic lens {lens!r}; on "
        "photos from another lens it over-corrects: dark halos on bright edges, fine texture smoothed away, colour "
        "fringes (README: Retrain for your own lens)"
    )


def _is_raw(path: Path) -> bool:
    """Whether ``path`` is decoded from a sensor mosaic (LibRaw or headerless), i.e. demosaicked."""
    from ..pipeline.io import input_kind

    try:
        return input_kind(path) != "rgb"
    except ValueError:  # unsupported: reported by name when processed
        return False


def _one_line(src: Path, err: BaseException) -> str:
    """The first line of ``err``, led by the input's path unless it already names a file it is about."""
    from ..pipeline import InputError, OutputError

    text = str(err).splitlines()[0] if str(err) else err.__class__.__name__
    named = isinstance(err, (InputError, OutputError)) or text.startswith(str(src))
    return text if named else f"{src}: {text}"


def run(args: argparse.Namespace) -> int:
    """Carry out ``isp-collab process``; returns the exit status."""
    import cv2
    from tqdm import tqdm

    from ..allocator import keep_freed_memory
    from ..atomic import check_output, check_writable_folder
    from ..pipeline import Encode, PipelineWarning
    from ..pipeline.batch import expand_inputs, plan_outputs, skip_done
    from ..pipeline.encode import check_output_format
    from ..pipeline.io import check_input_file
    from ..pipeline.pipeline import out_of_memory
    from . import require_parent_folder

    # OpenCV prints its own complaints about corrupt files on stderr; we report those ourselves.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    empty: list[ValueError] = []  # input folders with nothing to process: reported, the batch goes on
    repeats: list[tuple[Path, Path]] = []  # files named twice (or via a link): processed once, said so
    notes: list[str | None] = []  # about the models: said once the batch has a file to process
    subfolders: list[Path] = []  # inside input folders: not read, said so
    try:
        pipeline = build_pipeline(args)
        if args.config and args.stages is None and not _has_restoration_table(args.config):
            notes.append(  # a file that only sets, say, the output's bit depth turned the default sharpening off
                f"isp-collab process: note: {args.config} has no [sharpen], [lens] or [unsharp] table, so no "
                "restoration runs (add [sharpen] for the default sharpening, or pass --stages sharpen)"
            )
        folders = [item for item in args.inputs if Path(item).is_dir()]
        files = expand_inputs(args.inputs, problems=empty, repeats=repeats, subfolders=subfolders)
        planned = plan_outputs(files, args.output, f".{args.format or 'png'}", folders=folders)
        named = len(planned) == 1 and planned[0][1] == Path(args.output)
        for flag, value in (("--demosaic", args.demosaic), ("--white-balance", args.white_balance)):
            if value and not any(_is_raw(f) for f in files):
                raise ValueError(f"{flag} {value}: applies to RAW inputs, and none of the inputs is RAW")
        # a named file's folder must exist; an output folder may be created, its parent must exist
        require_parent_folder(args.output, "output folder" if named else "parent folder")
        if (
            named
            and args.format
            and Path(args.output).suffix.lower().replace("jpeg", "jpg").replace("tiff", "tif") != (f".{args.format}")
        ):
            raise ValueError(f"--format {args.format} contradicts the output file name {args.output}")
        if args.format and args.bit_depth and args.bit_depth not in OUTPUT_EXTENSIONS[f".{args.format}"]:
            raise ValueError(f"--format {args.format} cannot hold --bit-depth {args.bit_depth} samples (8-bit only)")
        taken: set[Path] = set()
        if args.skip_existing:  # the output decides (its --compare image is not written again for a skipped input)
            for src, dst in planned:  # an output that is its input is an error, not an input already done
                refuse_own_input(src, dst, named)
            if named:  # (an input that is not there is said so, not skipped as done)
                done = Path(args.output).exists() and Path(planned[0][0]).is_file()
                planned, skipped = ([], 1) if done else (planned, 0)
            else:  # the outputs that record an input as their source (names depend on the batch)
                planned, skipped, taken = skip_done(planned, args.output)
            if skipped:
                print(f"isp-collab process: note: {skipped} input(s) skipped: their outputs exist", file=sys.stderr)
        jobs = plan_jobs(planned, args.output, args.compare, taken)
        bits = pipeline.output.bit_depth if isinstance(pipeline.output, Encode) else None
        for dst in {dst.suffix.lower(): dst for _, dst, _ in jobs}.values():  # one per type, before any decoding
            check_output_format(dst, bits)
        for folder in dict.fromkeys(dst.parent for _, dst, _ in jobs):  # a read-only place fails now, not per file
            check_writable_folder(folder)
        for stage in pipeline.restoration:  # load networks once, before the batch; a bad model stops here
            if stage.enabled and hasattr(stage, "network"):
                try:
                    with warnings.catch_warnings(record=True) as caught:  # a tile below the training patch: one line
                        warnings.simplefilter("always")
                        runner = stage.network()
                    if getattr(getattr(runner, "device", None), "type", None) == "cpu":
                        keep_freed_memory()  # torch's calls reuse freed memory, not fresh pages (allocator.py)
                    for w in caught:
                        if not issubclass(w.category, PipelineWarning):  # library chatter: shown as usual
                            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
                            continue
                        said = _in_flag_terms(str(w.message).splitlines()[0], stage.name, args)
                        print(f"isp-collab process: warning: {said}", file=sys.stderr)
                    notes.append(_synthetic_lens_note(stage))
                except ValueError as e:
                    message = _in_flag_terms(str(e), stage.name, args)
                    other = next((t for t in NETWORK_STAGES if t != stage.name and f"a '{t}" in message), None)
                    if other and "cannot run the" in message:  # where that model does run: the user's own words
                        flag = "--onnx" if args.onnx is not None else {"lens": "--lens-model"}.get(other, "--model")
                        given = (
                            args.onnx
                            if args.onnx is not None
                            else {"lens": args.lens_model}.get(stage.name, args.model)
                        )
                        message += f"; run it with --stages {other} {flag} {shlex.quote(str(given or 'DIR'))}"
                    raise ValueError(message) from None
    except (ValueError, OSError) as e:  # printed here as one plain line (exit 2)
        print(f"isp-collab process: error: {str(e).splitlines()[0] if str(e) else repr(e)}", file=sys.stderr)
        return 2

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: object = None,
    ) -> None:
        tqdm.write(f"isp-collab process: warning: {str(message).splitlines()[0]}", file=sys.stderr)

    if any(src.is_file() for src, _, _ in jobs):  # not before the one-line error of a batch of missing files
        for note in filter(None, notes):
            print(note, file=sys.stderr)
    for err in empty:
        print(f"isp-collab process: error: {err}", file=sys.stderr)
    for parent in dict.fromkeys(sub.parent for sub in subfolders):
        inside = [sub.name for sub in subfolders if sub.parent == parent]
        shown = ", ".join(inside[:3]) + (", ..." if len(inside) > 3 else "")
        print(
            f"isp-collab process: note: {parent}: {len(inside)} subfolder{'s' if len(inside) > 1 else ''} not "
            f"processed ({shown}; folders are read one level deep: name a subfolder as an input to process it)",
            file=sys.stderr,
        )
    for again, kept in repeats:
        print(f"isp-collab process: note: {again}: the same file as {kept}, processed once", file=sys.stderr)
    bad_input, other = len(empty), 0
    with warnings.catch_warnings():
        warnings.showwarning = show
        bar = tqdm(jobs, unit="file", disable=None, file=sys.stderr, dynamic_ncols=True)
        for done, (src, dst, compare) in enumerate(bar):
            bar.set_postfix_str(src.name)
            t0 = time.perf_counter()
            try:
                check_input_file(src)  # a missing input is said as such, before its output's name
                check_output(dst, overwrite=args.overwrite)
                result = pipeline.process_file(src, dst, overwrite=args.overwrite, compare=compare)
            except KeyboardInterrupt:  # Ctrl-C / SIGTERM: say how far the batch got, then exit 130 / 143
                if len(jobs) > 1:
                    bar.close()
                    finished = done - bad_input - other + len(empty)
                    print(
                        f"isp-collab process: {finished} of {len(jobs)} inputs written before the interruption "
                        f"({src.name} and after not; --skip-existing picks up where it stopped)",
                        file=sys.stderr,
                    )
                raise
            except (ValueError, OSError) as e:
                bad_input += 1
                tqdm.write(f"isp-collab process: error: {_one_line(src, e)}", file=sys.stderr)
                continue
            except Exception as e:  # a failing network or library: report it, finish the batch
                if (too_big := out_of_memory(src, e)) is not None:  # an input too big for this machine: exit 2
                    bad_input += 1
                    tqdm.write(f"isp-collab process: error: {too_big}", file=sys.stderr)
                    continue
                other += 1
                tqdm.write(f"isp-collab process: error: {_one_line(src, e)} ({e.__class__.__name__})", file=sys.stderr)
                continue
            h, w = result.image.shape[:2]
            msg = f"{dst}  {w}x{h}  {time.perf_counter() - t0:.2f} s"
            if compare is not None:
                msg += f"  (+ {compare.name})"
            tqdm.write(msg)
            if args.timings:
                tqdm.write("  " + "  ".join(f"{k} {v:.3f}" for k, v in result.timings.items()))
    failed = bad_input + other
    if len(jobs) + len(empty) > 1 and failed:
        print(
            f"isp-collab process: {len(jobs) + len(empty) - failed} of {len(jobs) + len(empty)} inputs processed, "
            f"{failed} failed",
            file=sys.stderr,
        )
    return 2 if bad_input else (1 if other else 0)
