"""Building the planned artefacts of one export in a temporary folder: ONNX (fp32, fp16, int8) and Core ML
files, each checked against PyTorch (parity, restoration quality) and given its sidecar.

:func:`isp_collab.export.export_model` checks the request first and publishes what this builds.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models import CollaborativeUNet
from ..models.weights import file_sha256
from .errors import ExportError
from .onnx_export import INPUT_NAME, OUTPUT_NAME, export_onnx, op_counts
from .plan import artefact_name
from .sidecar import build_sidecar, sidecar_path, write_sidecar

if TYPE_CHECKING:
    from .calibration import LensBlur

#: validation stacks for the parity and quality checks (int8 calibration uses other photos)
PARITY_STACKS = 6


#: Restoration PSNR a cheaper variant may lose against PyTorch fp32 before the export warns (dB).
QUALITY_TOLERANCE_DB = {"fp16": 0.05, "int8": 0.15}


@dataclass
class ExportedArtefact:
    """One written artefact: its path, sidecar, format/precision, measured parity and checks."""

    path: Path
    sidecar: Path
    format: str
    precision: str
    parity: dict[str, Any]
    seconds: float
    checks: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: path, variant, parity figures (max |diff| vs PyTorch on random / real stacks)."""
        p = self.parity
        if "random" in p:
            real = p.get("real_kind", "real")
            fig = f"max|diff| vs torch: random {p['random']['max_abs']:.2e}, {real} {p['real']['max_abs']:.2e}"
            if p["real"].get("psnr_db") is not None:
                fig += f" (PSNR {p['real']['psnr_db']:.1f} dB)"
            if "quality" in p:
                fig += f"; restores {p['quality']['delta_db']:+.3f} dB vs torch"
        else:
            fig = p.get("status", "parity not measured")
        return f"{self.path}  [{self.format} {self.precision}, {self.seconds:.1f} s]  {fig}"


def build_artefacts(
    model: CollaborativeUNet,
    info: dict[str, Any],
    plan: list[tuple[str, str]],
    tmp: Path,
    stem: str,
    n: int,
    tile: int,
    overlap: int,
    strategy: str,
    opset: int,
    coreml_target: str,
    calibration_stacks: int,
    calibration_images: str | os.PathLike | None,
    lens: LensBlur | None,
    version: str,
    say: Callable[[str], None],
) -> list[ExportedArtefact]:
    """Build every planned artefact + sidecar inside ``tmp``."""
    import onnx
    import torch

    from .calibration import StackCalibrationReader, validation_stacks
    from .parity import FP32_TOLERANCE, measure_coreml_parity, measure_parity

    metadata = {
        "isp_collab.model": info["name"],
        "isp_collab.weights_sha256": info["weights_sha256"],
        "isp_collab.n": n,
        "isp_collab.tile": tile,
        "isp_collab.overlap": overlap,
        "isp_collab.strategy": strategy,
        "isp_collab.colour_space": "linear RGB",
        "isp_collab.version": version,
    }
    common = dict(
        n=n,
        tile=tile,
        overlap=overlap,
        strategy=strategy,
        model=info,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        package_version=version,
        torch_version=torch.__version__,
    )
    say(f"drawing {PARITY_STACKS} validation stacks for the parity and quality checks ...")
    real = validation_stacks(n, tile, PARITY_STACKS, seed=1, folder=calibration_images, lens=lens)
    if any(s.name.startswith("synthetic") for s in real):
        warnings.warn(
            f"no validation photos of at least {tile} px a side found: the parity and quality checks"
            + (" and int8 calibration" if any(p == "int8" for _, p in plan) else "")
            + " use synthetic images (pass --calibration-images DIR with photos)",
            stacklevel=3,
        )
    built: list[ExportedArtefact] = []
    fp32_onnx: Path | None = None
    onnx_info: dict[str, Any] = {}
    if any(f == "onnx" for f, _ in plan):
        fp32_onnx = tmp / "build-fp32.onnx"
        say(f"exporting ONNX (opset {opset}) for [1, {n}, 3, {tile}, {tile}] ...")
        onnx_info = export_onnx(model, fp32_onnx, n, tile, opset=opset, metadata=metadata)
    for fmt, precision in plan:
        name = artefact_name(stem, fmt, precision)
        path = tmp / name
        if fmt == "onnx":
            assert fp32_onnx is not None
            target = {
                "opset": onnx_info["opset"],
                "ir_version": onnx_info["ir_version"],
                "batchnorm_folded": True,
                "fold_max_abs": onnx_info["fold_max_abs"],
            }
            if precision == "fp32":
                shutil.copyfile(fp32_onnx, path)
                seconds = onnx_info["seconds"]
            elif precision == "fp16":
                from .quantize import convert_fp16

                say("converting to fp16 ...")
                seconds = convert_fp16(fp32_onnx, path)["seconds"]
                target["conversion"] = "onnxruntime.transformers.float16, keep_io_types=True"
            else:
                from .quantize import quantize_int8

                say(f"calibrating and quantising to int8 on {calibration_stacks} validation stacks ...")
                calib = validation_stacks(  # photos other than the parity check's, where there are enough
                    n, tile, calibration_stacks, seed=100, folder=calibration_images, lens=lens, skip_photos=len(real)
                )
                q = quantize_int8(fp32_onnx, path, StackCalibrationReader(calib))
                seconds = q["seconds"]
                target["quantization"] = {
                    "format": "QDQ",
                    "weights": "int8 per-channel",
                    "activations": "uint8",
                    "calibration": "MinMax",
                    "calibration_stacks": len(calib),
                    "calibration_source": sorted({s.name for s in calib}),
                    "calibration_disjoint_from_parity": not ({s.name for s in calib} & {s.name for s in real}),
                    "calibration_domain": "linear camera RGB (unprocessed photos, one random camera per stack)",
                    "float_nodes": q["excluded"],
                }
            target["ops"] = op_counts(onnx.load(str(path)))
            parity = measure_parity(path, model, n, tile, real=real)
            parity["tolerance"] = FP32_TOLERANCE if precision == "fp32" else None
            worst = max(parity["random"]["max_abs"], parity["real"]["max_abs"])
            if precision == "fp32" and not worst <= FP32_TOLERANCE:
                raise ExportError(f"{name}: ONNX Runtime differs from PyTorch by {worst:.2e} (> {FP32_TOLERANCE:g})")
            quality = parity["quality"]
            if precision in QUALITY_TOLERANCE_DB:
                quality["tolerance_db"] = QUALITY_TOLERANCE_DB[precision]
                if quality["delta_db"] < -QUALITY_TOLERANCE_DB[precision]:
                    warnings.warn(
                        f"{name}: restores {-quality['delta_db']:.2f} dB below PyTorch fp32 on the check stacks "
                        f"(tolerance {QUALITY_TOLERANCE_DB[precision]} dB); prefer fp32 where quality matters",
                        stacklevel=3,
                    )
        else:
            from .coreml_export import PRECISIONS as CT_PRECISIONS
            from .coreml_export import coreml_versions, export_coreml, validate_mlpackage

            say(f"converting to Core ML ({CT_PRECISIONS[precision]}, {coreml_target}) ...")
            c = export_coreml(
                model, path, n, tile, precision=precision, minimum_deployment_target=coreml_target, metadata=metadata
            )
            seconds = c["seconds"]
            spec = validate_mlpackage(path, n, tile)
            target = {
                "minimum_deployment_target": coreml_target,
                "compute_precision": c["compute_precision"],
                "model_type": "mlProgram",
                "spec_version": spec["spec_version"],
                "ops": spec["ops"],
                "batchnorm_folded": True,
                "fold_max_abs": c["fold_max_abs"],
                "spec_check": "ML Program; input/output names, shapes and dtypes; op types: ok",
                "runs_on": "macOS / iOS only (Core ML framework)",
                **coreml_versions(),
            }
            parity = measure_coreml_parity(path, model, n, tile)
        side = sidecar_path(path)
        # the file's own hash (ONNX; a Core ML package is a folder): a consumer can tell a sidecar of another
        # precision or export of the same weights
        own = {"file_sha256": file_sha256(path)} if path.is_file() else {}
        write_sidecar(
            side,
            build_sidecar(fmt=fmt, precision=precision, file=name, target=target, parity=parity, **common)
            | own
            | {"export_seconds": round(seconds, 2)},
        )
        built.append(ExportedArtefact(path, side, fmt, precision, parity, seconds, target))
    return built
