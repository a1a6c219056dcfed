"""ONNX export with a static stack shape: BatchNorm folded, opset >= 17, no dynamic-shape ops.

The exported graph has one input ``stack`` and one output ``restored``, both float32 of the
static shape ``[1, N, 3, T, T]`` (linear RGB). BatchNorm layers are folded into the preceding
convolutions in a *copy* of the network (the caller's model is untouched), and the fold is checked
numerically against the original before anything is exported.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import onnx
import torch

from ..models import CollaborativeUNet
from ..models.fold import fold_batchnorm

INPUT_NAME = "stack"
OUTPUT_NAME = "restored"
DEFAULT_OPSET = 18
MIN_OPSET = 17
FOLD_TOLERANCE = 1e-5

# Ops that compute or consume shapes at run time: none may remain in an exported graph.
DYNAMIC_OPS = frozenset({"Shape", "Size", "ConstantOfShape", "NonZero", "Range", "If", "Loop", "Scan"})
# op type -> indices of inputs that carry shapes / axes / sizes and must be constants.
SHAPE_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,),
    "Expand": (1,),
    "Tile": (1,),
    "Resize": (1, 2, 3),
    "Upsample": (1,),
    "Slice": (1, 2, 3, 4),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "Pad": (1, 2, 3),
    "Split": (1,),
    "ReduceMax": (1,),
    "ReduceMean": (1,),
    "ReduceSum": (1,),
}


@torch.no_grad()
def check_fold(model: CollaborativeUNet, folded: CollaborativeUNet, n: int, size: int | None = None) -> float:
    """Max abs difference between ``model`` and its folded copy on a random (1, n, 3, s, s) stack.

    ``s`` defaults to 4 * model.multiple. Raises ``RuntimeError`` above :data:`FOLD_TOLERANCE`.
    """
    s = size or 4 * model.multiple
    x = torch.rand(1, n, 3, s, s, generator=torch.Generator().manual_seed(0))
    diff = float((model.eval()(x) - folded(x)).abs().max())
    if not diff <= FOLD_TOLERANCE:
        raise RuntimeError(f"BatchNorm folding changed the output by {diff:.2e} (> {FOLD_TOLERANCE:g})")
    return diff


def _constant_names(graph: onnx.GraphProto) -> set[str]:
    names = {t.name for t in graph.initializer}
    names |= {o for node in graph.node if node.op_type == "Constant" for o in node.output}
    return names


def _static_dims(tp: onnx.TypeProto) -> bool:
    if not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return False
    return all(d.HasField("dim_value") and d.dim_value > 0 for d in tp.tensor_type.shape.dim)


def static_graph_problems(model: onnx.ModelProto) -> list[str]:
    """Reasons why ``model`` is not a fully static graph (empty list: it is).

    Checks: no op of :data:`DYNAMIC_OPS`; every shape/axes/size input of :data:`SHAPE_INPUTS` ops is
    an initializer or a ``Constant`` output; graph inputs/outputs have fixed positive dims; after
    strict shape inference every intermediate tensor has a fixed shape.
    """
    graph = model.graph
    problems: list[str] = []
    consts = _constant_names(graph)
    for node in graph.node:
        label = f"{node.op_type} node {node.name or '?'}"
        if node.op_type in DYNAMIC_OPS:
            problems.append(f"{label}: dynamic-shape op")
        for i in SHAPE_INPUTS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i] and node.input[i] not in consts:
                problems.append(f"{label}: input {i} ({node.input[i]}) is computed at run time")
    for vi in list(graph.input) + list(graph.output):
        if not _static_dims(vi.type):
            problems.append(f"graph input/output {vi.name} has a non-static shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:  # noqa: BLE001 - any inference failure is a problem to report
        problems.append(f"shape inference failed: {str(e).splitlines()[0]}")
    else:
        for vi in inferred.graph.value_info:
            if not _static_dims(vi.type):
                problems.append(f"tensor {vi.name} has a non-static inferred shape")
    return problems


def assert_static_graph(model: onnx.ModelProto | str | os.PathLike) -> None:
    """Raise ``ValueError`` (first problem, one line) unless the graph is fully static."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    problems = static_graph_problems(proto)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(f"exported graph is not static: {problems[0]}{more}")


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Node count per op type, most frequent first."""
    return dict(Counter(node.op_type for node in model.graph.node).most_common())


def export_onnx(
    model: CollaborativeUNet,
    path: str | os.PathLike,
    n: int,
    tile: int,
    *,
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Export ``model`` for a static (1, n, 3, tile, tile) float32 stack to the ONNX file ``path``.

    BatchNorm is folded in a copy (checked to within :data:`FOLD_TOLERANCE`), the file is checked
    with ``onnx.checker.check_model(full_check=True)`` and :func:`assert_static_graph`. ``metadata``
    goes to the model's ``metadata_props``. The caller handles atomicity (``path`` is normally a
    temp location). Returns ``{"opset", "ir_version", "ops", "fold_max_abs", "seconds"}``.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    t0 = time.perf_counter()
    folded = fold_batchnorm(model)
    fold_diff = check_fold(model, folded, n)
    example = torch.rand(1, n, 3, tile, tile, generator=torch.Generator().manual_seed(0))
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                folded,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
    finally:  # a failed export leaves the caller's logging as it was
        registry_log.setLevel(level)
    proto = program.model_proto
    proto.producer_name = "isp-collab"
    proto.doc_string = (
        f"Collaborative blind deblurring: stack [1,{n},3,{tile},{tile}] float32 linear RGB -> restored, same shape."
    )
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto, full_check=True)
    assert_static_graph(proto)
    onnx.save(proto, str(Path(path)))
    opsets = {o.domain: o.version for o in proto.opset_import}
    return {
        "opset": int(opsets.get("", opsets.get("ai.onnx", opset))),
        "ir_version": int(proto.ir_version),
        "ops": op_counts(proto),
        "fold_max_abs": fold_diff,
        "seconds": time.perf_counter() - t0,
    }
