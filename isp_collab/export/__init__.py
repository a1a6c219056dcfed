"""On-device export: static-shape ONNX and Core ML artefacts, fp16/int8 variants, sidecars, parity.

``export_model(name_or_path, n=None, tile=256, formats=("onnx", "coreml"), precisions=None,
out_dir="export")`` is the entry point (``isp-collab export`` on the command line). Every artefact
takes ``stack`` float32 ``[1, N, 3, T, T]`` linear RGB and returns ``restored`` of the same shape;
its sidecar ``NAME-nN-tT[-VARIANT].json`` says how to tile an image for it. The torch-free
reference consumer is ``export/consume_onnx.py`` at the repository root.
"""

from ..models.fold import fold_batchnorm
from .api import ExportedArtefact, ExportError, default_strategy, export_model
from .onnx_export import INPUT_NAME, OUTPUT_NAME, assert_static_graph, static_graph_problems
from .plan import FORMATS, PRECISIONS
from .sidecar import read_sidecar, sidecar_path

__all__ = [
    "FORMATS",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "PRECISIONS",
    "ExportError",
    "ExportedArtefact",
    "assert_static_graph",
    "default_strategy",
    "export_model",
    "fold_batchnorm",
    "read_sidecar",
    "sidecar_path",
    "static_graph_problems",
]
