"""Core ML export: an ML Program package whose saved spec has the right type, I/O and ops.

Prediction needs macOS (the Core ML framework); on Linux the package's spec is validated.
"""

from __future__ import annotations

import json
import sys
import warnings

import pytest
from test_export_onnx import NAME, TILE, N, _conv_layers, make_model_dir

from isp_collab.export import export_model
from isp_collab.export.coreml_export import validate_mlpackage


@pytest.fixture(scope="module")
def coreml_fp16(tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make_model_dir(tmp_path_factory.mktemp("model"))  # not exported(): its ONNX export is not needed
        (art,) = export_model(model, n=N, tile=TILE, formats=("coreml",), out_dir=out)
    art.warnings = [str(w.message) for w in caught]
    return art


def test_sidecar_records_coremltools_and_warns_when_torch_is_newer_than_it_was_tested_with(coreml_fp16):
    import json

    import torch

    from isp_collab.export.coreml_export import _newer

    block = json.loads(coreml_fp16.sidecar.read_text())["coreml"]
    assert block["coremltools_version"] and block["coremltools_tested_torch"]
    untested = _newer(torch.__version__, block["coremltools_tested_torch"])
    said = [w for w in coreml_fp16.warnings if "was tested with torch up to" in w]
    assert len(said) == int(untested)
    assert _newer("2.13.0+cpu", "2.7.0") and not _newer("2.7.1", "2.7.0")


def test_mlpackage_spec(coreml_fp16):
    art = coreml_fp16
    assert art.path.name == f"{NAME}-n4-t64-coreml-fp16.mlpackage" and art.path.is_dir()
    assert (art.path / "Manifest.json").is_file()
    spec = validate_mlpackage(art.path, N, TILE)
    assert spec["type"] == "mlProgram" and spec["spec_version"] >= 7  # iOS16 target
    assert spec["input"] == {"name": "stack", "shape": [1, N, 3, TILE, TILE], "dtype": "float32"}
    assert spec["output"]["name"] == "restored" and spec["output"]["shape"] == [1, N, 3, TILE, TILE]
    assert spec["ops"]["conv"] == _conv_layers() and "reduce_max" in spec["ops"] and "upsample_bilinear" in spec["ops"]
    with pytest.raises(ValueError, match=r"expected FLOAT32\[1, 5, 3"):
        validate_mlpackage(art.path, N + 1, TILE)


def test_package_holds_what_core_ml_reads_and_is_readable_by_the_team(coreml_fp16):
    import os

    manifest = json.loads((coreml_fp16.path / "Manifest.json").read_text())
    listed = {entry["path"].split("/")[0] for entry in manifest["itemInfoEntries"].values()}
    top = {p.name for p in coreml_fp16.path.iterdir()}
    assert top == {"Manifest.json", "Data"} and listed == {"com.apple.CoreML"}, top  # no debug files
    mask = os.umask(0)
    os.umask(mask)
    for item in coreml_fp16.path.rglob("*"):
        assert item.stat().st_mode & 0o777 == (0o777 if item.is_dir() else 0o666) & ~mask, item


def test_coreml_sidecar(coreml_fp16):
    side = json.loads(coreml_fp16.sidecar.read_text())
    assert side["format"] == "coreml" and side["precision"] == "fp16"
    assert side["coreml"]["compute_precision"] == "FLOAT16" and side["coreml"]["model_type"] == "mlProgram"
    assert side["coreml"]["minimum_deployment_target"] == "iOS16"
    assert side["input"]["shape"] == [1, N, 3, TILE, TILE] and side["tiling"]["tile"] == TILE
    if sys.platform != "darwin":
        assert "needs macOS" in side["parity"]["status"]


def test_old_deployment_target_refused(tmp_path):
    with pytest.raises(ValueError, match="iOS15"):
        model = make_model_dir(tmp_path / "model")
        export_model(model, n=N, tile=TILE, formats=("coreml",), coreml_target="iOS13", out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_fp16_package_adds_the_residual_to_the_float32_image(coreml_fp16):
    """The image is not rounded to fp16 on its way through: restored = stack (fp32 input) + residual."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(coreml_fp16.path))
    main = spec.mlProgram.functions["main"]
    ops = main.block_specializations[main.opset].operations
    (add,) = [op for op in ops if op.type == "add"]
    assert [o.name for o in add.outputs] == ["restored"]
    assert "stack" in {a.name for v in add.inputs.values() for a in v.arguments}
