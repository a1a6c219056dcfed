"""Slow: every shipped model exports with fp32 ONNX parity <= 1e-4 at tile 256, and `isp-collab export --n 4` works."""

from __future__ import annotations

import json

import onnx
import pytest

from isp_collab.cli import main
from isp_collab.export import export_model, static_graph_problems
from isp_collab.export.coreml_export import validate_mlpackage
from isp_collab.models import DEFAULT_MODEL, read_card, shipped_models

SHIPPED = shipped_models()
NAMES = SHIPPED or [pytest.param(None, marks=pytest.mark.skip(reason="no shipped models under models/ yet"))]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_parity(name, tmp_path):
    n = int(read_card(name)["n_trained"])
    arts = export_model(name, n=n, tile=256, out_dir=tmp_path)  # ONNX fp32 + Core ML fp16
    by_format = {a.format: a for a in arts}
    onnx_art = by_format["onnx"]
    assert onnx_art.parity["random"]["max_abs"] <= 1e-4 and onnx_art.parity["real"]["max_abs"] <= 1e-4
    assert static_graph_problems(onnx.load(str(onnx_art.path))) == []
    spec = validate_mlpackage(by_format["coreml"].path, n, 256)
    assert spec["type"] == "mlProgram"
    side = json.loads(onnx_art.sidecar.read_text())
    assert side["model"]["name"] == name and side["tiling"]["n_validated"]


@pytest.mark.slow
@pytest.mark.skipif(DEFAULT_MODEL not in SHIPPED, reason=f"{DEFAULT_MODEL} is not shipped yet")
def test_default_command(tmp_path, monkeypatch, capsys):
    """`isp-collab export --n 4` with no other flag: ONNX + Core ML of the default model in ./export/."""
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--n", "4"]) == 0
    out = capsys.readouterr().out
    stem = f"{DEFAULT_MODEL}-n4-t256"
    for name in (f"{stem}.onnx", f"{stem}.json", f"{stem}-coreml-fp16.mlpackage", f"{stem}-coreml-fp16.json"):
        assert (tmp_path / "export" / name).exists(), name
    assert "max|diff| vs torch" in out and "needs macOS" in out
