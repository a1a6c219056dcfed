"""Core ML export: an ML Program ``.mlpackage`` with a static stack shape.

Path: BatchNorm folded in a copy -> ``torch.export.export`` -> ``run_decompositions({})`` (needed
with recent torch) -> ``coremltools.convert(convert_to="mlprogram")``. Input ``stack`` and output
``restored`` are float32 ``[1, N, 3, T, T]`` linear RGB; the compute precision inside is FLOAT16
(default, Neural Engine friendly) or FLOAT32.

Running a Core ML package needs macOS (Core ML framework); on Linux :func:`validate_mlpackage`
checks the saved package's spec instead: ML Program type, input/output names, shapes and dtypes,
and the op types of the program.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models import CollaborativeUNet
from ..models.fold import fold_batchnorm
from .errors import ExportError
from .onnx_export import INPUT_NAME, OUTPUT_NAME, check_fold

DEFAULT_TARGET = "iOS16"
PRECISIONS = {"fp16": "FLOAT16", "fp32": "FLOAT32"}
# MIL ops a collaborative UNet may lower to; anything else in a package is flagged by validation.
EXPECTED_OPS = frozenset(
    {
        "const",
        "conv",
        "relu",
        "reshape",
        "concat",
        "reduce_max",
        "reduce_mean",
        "tile",
        "max_pool",
        "upsample_bilinear",
        "resize_bilinear",
        "add",
        "cast",
        "mul",
        "sub",
        "expand_dims",
        "squeeze",
        "identity",
    }
)


@contextlib.contextmanager
def _quiet():
    """Silence coremltools / torch.export chatter (progress bars, version warnings)."""
    loggers = [logging.getLogger(n) for n in ("coremltools", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _explicit_pool_strides(program: torch.export.ExportedProgram) -> None:
    """Write the default stride (= kernel size) into ``max_pool2d`` nodes in place.

    torch.export drops default arguments (``max_pool2d(x, [2, 2])``) and coremltools' converter
    requires the stride argument to be present.
    """
    pools = {torch.ops.aten.max_pool2d.default, torch.ops.aten.max_pool2d_with_indices.default}
    changed = False
    for node in program.graph.nodes:
        if node.op == "call_function" and node.target in pools and len(node.args) < 3:
            node.args = (*node.args, node.args[1])
            changed = True
    if changed:
        program.graph_module.recompile()


def coremltools() -> Any:
    """The ``coremltools`` module, imported quietly (its import prints version and missing-native-library notes on
    Linux). A dependency of the package, but one a platform may lack a build of, or an install may have broken:
    then one line (``ExportError``) saying so and how to export without it, not a traceback."""
    try:
        with _quiet():
            import coremltools as ct
    except Exception as e:  # not installed (ImportError), or a broken install failing in its own import code
        raise ExportError(
            f"Core ML export needs coremltools, which cannot be imported here ({type(e).__name__}: {e}); install it "
            "(pip install coremltools) or export ONNX only (--format onnx)"
        ) from None
    return ct


def deployment_target(name: str) -> Any:
    """``coremltools.target.<name>`` (``iOS16``, ``macOS13`` ...); ``ValueError`` if unknown or older than iOS15."""
    ct = coremltools()
    target = getattr(ct.target, str(name), None)
    if target is None:
        raise ValueError(f"unknown Core ML deployment target {name!r} (e.g. iOS16, macOS13)")
    if target < ct.target.iOS15:
        raise ValueError(f"Core ML ML Programs need iOS15 / macOS12 or newer, got {name}")
    return target


def export_coreml(
    model: CollaborativeUNet,
    path: str | os.PathLike,
    n: int,
    tile: int,
    *,
    precision: str = "fp16",
    minimum_deployment_target: str = DEFAULT_TARGET,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Convert ``model`` for a static (1, n, 3, tile, tile) float32 stack to the ML Program ``path``.

    ``precision``: ``"fp16"`` (compute in FLOAT16 except the final residual add, which keeps the
    input image in float32) or ``"fp32"``; I/O stays float32 either way.
    ``minimum_deployment_target``: a ``coremltools.target`` name (``iOS16``, ``macOS13``, ...).
    The caller handles atomicity. Returns ``{"compute_precision", "minimum_deployment_target",
    "fold_max_abs", "seconds"}``.
    """
    ct = coremltools()
    if precision not in PRECISIONS:
        raise ValueError(f"Core ML precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    target = deployment_target(minimum_deployment_target)
    t0 = time.perf_counter()
    folded = fold_batchnorm(model)
    fold_diff = check_fold(model, folded, n)
    example = torch.rand(1, n, 3, tile, tile, generator=torch.Generator().manual_seed(0))
    shape = tuple(example.shape)
    with _quiet():
        program = torch.export.export(folded, (example,)).run_decompositions({})
        _explicit_pool_strides(program)
        mlmodel = ct.convert(
            program,
            inputs=[ct.TensorType(name=INPUT_NAME, shape=shape, dtype=np.float32)],
            outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
            convert_to="mlprogram",
            # fp16: every op but the global residual add (restored = stack + residual), so the image itself
            # is not rounded to fp16 on its way through (as the ONNX fp16 export keeps that Add in fp32)
            compute_precision=ct.transform.FP16ComputePrecision(op_selector=lambda op: op.op_type != "add")
            if precision == "fp16"
            else ct.precision.FLOAT32,
            minimum_deployment_target=target,
        )
    mlmodel.short_description = (
        f"Collaborative blind deblurring: stack [1,{n},3,{tile},{tile}] float32 linear RGB -> restored, same shape."
    )
    mlmodel.input_description[INPUT_NAME] = (
        f"N={n} tiles sharing one blur, linear camera RGB, nominally [0, 1] (not clipped), [1,{n},3,{tile},{tile}]"
    )
    mlmodel.output_description[OUTPUT_NAME] = (
        "restored tiles, linear RGB, same shape as the input; not clipped (overshoots [0, 1] at edges)"
    )
    for key, value in (metadata or {}).items():
        mlmodel.user_defined_metadata[key] = str(value)
    with _quiet():
        mlmodel.save(str(Path(path)))
    tidy_package(Path(path))
    return {
        "compute_precision": PRECISIONS[precision],
        "minimum_deployment_target": minimum_deployment_target,
        "fold_max_abs": fold_diff,
        "seconds": time.perf_counter() - t0,
    }


def coreml_versions() -> dict[str, str]:
    """coremltools' version and the newest torch it was tested with (its conversion of a newer torch is
    untested upstream: recorded, and said once as a warning, since ``_quiet`` hides coremltools' own)."""
    ct = coremltools()
    from coremltools import _deps

    tested = str(getattr(_deps, "_TORCH_MAX_VERSION", ""))
    out = {"coremltools_version": ct.__version__, "coremltools_tested_torch": tested or "unknown"}
    if tested and _newer(torch.__version__, tested):
        warnings.warn(
            f"Core ML: coremltools {ct.__version__} was tested with torch up to {tested}, this is torch "
            f"{torch.__version__.split('+')[0]}; parity on Apple devices is not measured here",
            stacklevel=2,
        )
    return out


def _newer(version: str, than: str) -> bool:
    """Whether ``version`` (``2.13.0+cpu``) is newer than ``than`` (``2.7.0``), by major.minor."""

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("+")[0].split(".")[:2] if p.isdigit())

    return key(version) > key(than)


#: Files coremltools writes into a package that Core ML never reads (not in its Manifest.json).
DEBUG_FILES = ("executorch_debug_handle_mapping.json",)


def tidy_package(package: Path) -> None:
    """Drop coremltools' debug files from a saved package and give it the usual permissions.

    coremltools leaves a torch.export debug-handle map (~47 KB, not in the Manifest) beside the
    model, and writes the model spec and weights folder owner-only (0600 / 0700), unlike the
    rest: a package shared with a team must be readable as a whole.
    """
    for name in DEBUG_FILES:
        (package / name).unlink(missing_ok=True)
    mask = os.umask(0)
    os.umask(mask)
    for item in [package, *package.rglob("*")]:
        if not item.is_symlink():
            item.chmod((0o777 if item.is_dir() else 0o666) & ~mask)


def _array_shape(feature: Any) -> tuple[list[int], str]:
    arr = feature.type.multiArrayType
    from coremltools.proto import FeatureTypes_pb2

    dtype = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(arr.dataType)
    return [int(d) for d in arr.shape], dtype


def validate_mlpackage(path: str | os.PathLike, n: int, tile: int) -> dict[str, Any]:
    """Check a saved ``.mlpackage`` without running it (works on Linux).

    Checks that the spec is an ML Program, that its only input is ``stack`` and only output
    ``restored``, both FLOAT32 of shape [1, n, 3, tile, tile], and that every op is one of
    :data:`EXPECTED_OPS`. Raises ``ValueError`` (one line) on the first failure; returns
    ``{"type", "spec_version", "opset", "ops", "input", "output"}``.
    """
    ct = coremltools()
    path = Path(path)
    with _quiet():
        spec = ct.utils.load_spec(str(path))
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise ValueError(f"{path}: not an ML Program (spec type {kind})")
    expected = [1, n, 3, tile, tile]
    desc = spec.description
    io_info = {}
    for role, features, name in (("input", desc.input, INPUT_NAME), ("output", desc.output, OUTPUT_NAME)):
        names = [f.name for f in features]
        if names != [name]:
            raise ValueError(f"{path}: {role}s are {names}, expected [{name!r}]")
        shape, dtype = _array_shape(features[0])
        if shape != expected or dtype != "FLOAT32":
            raise ValueError(f"{path}: {role} {name} is {dtype}{shape}, expected FLOAT32{expected}")
        io_info[role] = {"name": name, "shape": shape, "dtype": "float32"}
    ops: Counter[str] = Counter()
    opsets = set()
    for function in spec.mlProgram.functions.values():
        opsets.add(function.opset)
        for block in function.block_specializations.values():
            ops.update(op.type for op in block.operations)
    unexpected = sorted(set(ops) - EXPECTED_OPS)
    if unexpected:
        raise ValueError(f"{path}: unexpected Core ML ops {unexpected}")
    if not ops.get("conv"):
        raise ValueError(f"{path}: the program has no convolution")
    return {
        "type": kind,
        "spec_version": int(spec.specificationVersion),
        "opset": sorted(opsets),
        "ops": dict(ops.most_common()),
        **io_info,
    }


def coreml_prediction_available() -> bool:
    """Core ML prediction runs only on macOS (the Core ML framework)."""
    return sys.platform == "darwin"


def predict_coreml(path: str | os.PathLike, stack: np.ndarray) -> np.ndarray:
    """Run a saved package on macOS: (1, N, 3, T, T) float32 -> same shape. Raises on other OSes."""
    if not coreml_prediction_available():
        raise RuntimeError("Core ML prediction needs macOS")
    ct = coremltools()

    mlmodel = ct.models.MLModel(str(path))
    return np.asarray(mlmodel.predict({INPUT_NAME: stack.astype(np.float32)})[OUTPUT_NAME], dtype=np.float32)
