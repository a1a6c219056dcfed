"""Cheaper ONNX variants of an exported fp32 graph: fp16 (fp32 I/O) and int8 static QDQ.

- fp16: ``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)`` — the
  weights and activations are float16, ``stack`` / ``restored`` stay float32 (Cast at the edges).
  Meant for GPUs / NPUs; ONNX Runtime's x86 CPU provider has few fp16 kernels and runs many nodes
  through inserted casts, so fp16 is not faster there.
- int8: ``quant_pre_process`` (shape inference + graph optimisation), then ``quantize_static`` in
  QDQ format, per-channel int8 weights, uint8 activations (U8S8, the VNNI-friendly pair), MinMax
  calibration on validation stacks from a :class:`~.calibration.StackCalibrationReader`. The
  output head stays in float: the global residual ``Add`` (``restored = stack + residual``), so the
  input image is not re-quantised to 8 bits on its way to the output, and the 1x1 output conv, so
  the residual is not clipped to its calibrated range.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx
from onnxruntime.quantization import CalibrationDataReader

from .onnx_export import OUTPUT_NAME, assert_static_graph


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> dict[str, Any]:
    """fp32 ONNX ``src`` -> fp16 ONNX ``dst`` with float32 input/output. Returns ``{"seconds"}``."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    t0 = time.perf_counter()
    model = onnx.load(str(src))
    del model.graph.value_info[:]  # stale fp32 annotations would contradict the converted types
    # The residual Add stays fp32: restored = stack (fp32, not rounded to fp16) + residual.
    adds = residual_add_nodes(model)
    half = convert_float_to_float16(model, keep_io_types=True, node_block_list=adds)
    topological_sort(half.graph)  # the converter appends its input Casts at the end of the node list
    fold_initializer_casts(half.graph)  # e.g. Resize scales: fp16 initializer -> Cast -> fp32 again
    bypass_io_casts(half.graph, adds)  # ... and it rounds the blocked Add's input and output through fp16
    onnx.checker.check_model(half, full_check=True)
    assert_static_graph(half)
    onnx.save(half, str(dst))
    return {"seconds": time.perf_counter() - t0}


def bypass_io_casts(graph: onnx.GraphProto, nodes: list[str]) -> None:
    """Let ``nodes`` (kept fp32 by the fp16 converter) read and write the float32 graph input and output directly.

    With ``keep_io_types`` the converter casts the graph input to fp16 and its output from fp16, also around a
    blocked node: ``stack -> Cast(fp16) -> Cast(fp32) -> Add -> Cast(fp16) -> Cast(fp32) -> restored`` rounded the
    image through fp16 on its way to the output. Here the Add reads ``stack`` and writes ``restored``; casts left
    without a reader are removed.
    """
    float32, float16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16

    def cast_to(node: onnx.NodeProto | None) -> int | None:
        return next((a.i for a in node.attribute if a.name == "to"), None) if node and node.op_type == "Cast" else None

    inputs, outputs = {i.name for i in graph.input}, {o.name for o in graph.output}
    producer = {o: n for n in graph.node for o in n.output}
    for node in graph.node:
        if node.name not in nodes:
            continue
        for k, name in enumerate(node.input):
            up = producer.get(name)
            half = producer.get(up.input[0]) if cast_to(up) == float32 else None
            if cast_to(half) == float16 and half.input[0] in inputs:
                node.input[k] = half.input[0]
        readers = [n for n in graph.node if node.output[0] in n.input]
        if len(readers) == 1 and cast_to(readers[0]) == float16:
            back = [n for n in graph.node if readers[0].output[0] in n.input]
            if len(back) == 1 and cast_to(back[0]) == float32 and back[0].output[0] in outputs:
                node.output[0] = back[0].output[0]
                back[0].output[0] = readers[0].input[0] = ""  # both casts now dead
    while True:  # drop nodes none of whose outputs is read
        read = {i for n in graph.node for i in n.input} | outputs
        live = [n for n in graph.node if any(o and o in read for o in n.output)]
        if len(live) == len(graph.node):
            return
        del graph.node[:]
        graph.node.extend(live)


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` in place so every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [nd for nd in pending if all(i in available for i in nd.input)]
        if not ready:
            raise ValueError(f"graph has a cycle or a missing input at node {pending[0].name}")
        for nd in ready:
            ordered.append(nd)
            available.update(nd.output)
        ready_ids = {id(nd) for nd in ready}
        pending = [nd for nd in pending if id(nd) not in ready_ids]
    copies = [onnx.NodeProto.FromString(nd.SerializeToString()) for nd in ordered]
    del graph.node[:]
    graph.node.extend(copies)


def fold_initializer_casts(graph: onnx.GraphProto) -> int:
    """Replace ``Cast`` nodes of initializers by initializers of the cast value; returns how many.

    Keeps shape-like inputs (Resize scales) constant, as the static-graph check requires.
    """
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    kept, folded = [], 0
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in inits:
            to = next(a.i for a in node.attribute if a.name == "to")
            value = numpy_helper.to_array(inits[node.input[0]]).astype(helper.tensor_dtype_to_np_dtype(to))
            graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
            folded += 1
        else:
            kept.append(node)
    if folded:
        used = {i for nd in kept for i in nd.input} | {o.name for o in graph.output}
        live = [t for t in graph.initializer if t.name in used]
        del graph.node[:]
        graph.node.extend(kept)
        del graph.initializer[:]
        graph.initializer.extend(live)
    return folded


def residual_add_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the ``Add`` nodes that produce the graph output (the global residual)."""
    outputs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node if n.op_type == "Add" and set(n.output) & outputs]


def output_head_nodes(model: onnx.ModelProto) -> list[str]:
    """The residual ``Add`` plus the ``Conv`` that computes the residual (found through Reshape-like ops).

    Kept in float for int8: the output conv is a cheap 1x1 conv, and quantising its output clips
    the largest corrections to the calibrated range (max error 0.06 -> 0.02 on validation tiles).
    """
    producer = {o: n for n in model.graph.node for o in n.output}
    inputs = {i.name for i in model.graph.input}
    names = []
    for add in (n for n in model.graph.node if n.name in residual_add_nodes(model)):
        names.append(add.name)
        for x in add.input:
            node = producer.get(x)
            while node is not None and node.op_type in ("Reshape", "Identity", "Transpose", "Squeeze", "Unsqueeze"):
                node = producer.get(node.input[0]) if node.input[0] not in inputs else None
            if node is not None and node.op_type == "Conv":
                names.append(node.name)
    return names


def quantize_int8(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    reader: CalibrationDataReader,
    *,
    per_channel: bool = True,
    keep_residual_float: bool = True,
) -> dict[str, Any]:
    """fp32 ONNX ``src`` -> int8 QDQ ONNX ``dst`` calibrated with ``reader`` (MinMax).

    ``keep_residual_float``: leave :func:`output_head_nodes` unquantised.

    Returns ``{"seconds", "excluded", "calibration_stacks"}``. Temporary files live in a temp dir
    next to ``dst`` and are removed.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    t0 = time.perf_counter()
    dst = Path(dst)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        excluded = output_head_nodes(onnx.load(str(pre))) if keep_residual_float else []
        quantize_static(
            str(pre),
            str(dst),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
        )
    quantized = onnx.load(str(dst))
    if [o.name for o in quantized.graph.output] != [OUTPUT_NAME]:
        raise RuntimeError(f"{dst}: quantisation renamed the output")
    # quant_pre_process's optimiser declares every ORT domain; keep the ones the nodes use
    used = {node.domain for node in quantized.graph.node} | {""}
    kept = [o for o in quantized.opset_import if o.domain in used or (o.domain == "ai.onnx" and "" in used)]
    del quantized.opset_import[:]
    quantized.opset_import.extend(kept)
    quantized.producer_name = "isp-collab"
    onnx.checker.check_model(quantized, full_check=True)
    assert_static_graph(quantized)
    onnx.save(quantized, str(dst))
    n_stacks = len(getattr(reader, "stacks", []))
    return {"seconds": time.perf_counter() - t0, "excluded": excluded, "calibration_stacks": n_stacks}
