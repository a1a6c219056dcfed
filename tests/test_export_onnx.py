"""ONNX export: fp32 parity with PyTorch, a static graph, BatchNorm folding, fp16/int8 variants, sidecars.

One small export (UNet-TX, N=4, tile 64, fp32 + fp16 + int8) is built once per test session by
:func:`exported` and shared with the consumer and CLI tests.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from isp_collab.export import ExportedArtefact, export_model, fold_batchnorm, read_sidecar, static_graph_problems
from isp_collab.export.onnx_export import check_fold
from isp_collab.export.parity import measure_parity, random_stacks
from isp_collab.models import create_model, load_model, save_model
from isp_collab.models.weights import file_sha256
from isp_collab.pipeline.frame import Frame

N, TILE = 4, 64
NAME = "test-unet-tx-n4"


def make_model_dir(
    root: Path, n: int = N, seed: int = 0, pooling: str = "max", merge: str = "concat", norm: str = "batch"
) -> Path:
    """A saved UNet-TX whose zero-initialised layers (outc, collaboration merges) and BN stats are randomised,
    so the network is far from the identity and parity is not trivial."""
    g = torch.Generator().manual_seed(seed)
    model = create_model("unet-tx", n=n, pooling=pooling, merge=merge, norm=norm)
    with torch.no_grad():
        model.outc.weight.copy_(0.1 * torch.randn(model.outc.weight.shape, generator=g))
        model.outc.bias.copy_(0.01 * torch.randn(3, generator=g))
        for name, p in model.named_parameters():
            if "merge" in name or "scale" in name or (norm == "none" and name.endswith("bias")):
                p.add_(0.05 * torch.randn(p.shape, generator=g))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return save_model(model, root / NAME, {"name": NAME, "task": "sharpen", "n_trained": n})


@functools.lru_cache(maxsize=1)
def exported() -> tuple[Path, list[ExportedArtefact]]:
    """(model folder, artefacts) of one ONNX export (fp32, fp16, int8; N=4, tile 64), built once."""
    root = Path(tempfile.mkdtemp(prefix="isp-collab-export-test-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    model_dir = make_model_dir(root)
    arts = export_model(
        model_dir,
        n=N,
        tile=TILE,
        formats=("onnx",),
        precisions=("fp32", "fp16", "int8"),
        out_dir=root / "out",
        calibration_stacks=4,
    )
    return model_dir, arts


def artefact(precision: str) -> ExportedArtefact:
    return next(a for a in exported()[1] if a.precision == precision)


def test_written_files():
    arts = exported()[1]
    names = sorted(p.name for a in arts for p in (a.path, a.sidecar))
    assert names == sorted(f"{NAME}-n4-t64{v}{ext}" for v in ("", "-fp16", "-int8") for ext in (".onnx", ".json"))
    assert not [p for p in arts[0].path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_fp32_parity_random_and_real():
    art = artefact("fp32")
    assert art.parity["random"]["max_abs"] <= 1e-4 and art.parity["real"]["max_abs"] <= 1e-4
    # measured again here, on other stacks, against a freshly loaded (unfolded) model
    model = load_model(exported()[0])
    again = measure_parity(art.path, model, N, TILE, count=1, seed=7)
    assert again["random"]["max_abs"] <= 1e-4 and again["real"]["max_abs"] <= 1e-4
    assert again["real"]["psnr_db"] > 100
    # the figure is the difference it names: ONNX Runtime's output against the model's, measured here on its own
    (stack,) = random_stacks(N, TILE, count=1, seed=7)
    session = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        reference = model.eval()(torch.from_numpy(stack)).numpy()
    own = float(np.abs(session.run(None, {"stack": stack})[0] - reference).max())
    assert 0 < own <= 1e-4 and again["random"]["max_abs"] == pytest.approx(own, rel=1e-6)
    # ... and a file that is not the model's float graph fails the check (int8 weights: off by far more than 1e-4)
    assert measure_parity(artefact("int8").path, model, N, TILE, count=1, seed=7)["random"]["max_abs"] > 1e-3
    # not trivially the identity: the network changes its input
    x = np.random.default_rng(0).random((1, N, 3, TILE, TILE), dtype=np.float32)
    with torch.no_grad():
        assert float((model(torch.from_numpy(x)) - torch.from_numpy(x)).abs().max()) > 1e-2


@pytest.mark.parametrize(
    ("pooling", "merge", "norm"),
    [
        ("mean", "concat", "batch"),
        ("global-max", "concat", "batch"),
        ("max", "film", "batch"),
        ("max", "concat", "none"),
    ],
)
def test_other_poolings_export_with_parity(tmp_path, pooling, merge, norm):
    (art,) = export_model(
        make_model_dir(tmp_path, pooling=pooling, merge=merge, norm=norm),
        n=N,
        tile=TILE,
        formats=("onnx",),
        precisions=("fp32",),
        out_dir=tmp_path / "out",
    )
    assert art.parity["random"]["max_abs"] <= 1e-4 and art.parity["real"]["max_abs"] <= 1e-4
    # whole images with fewer tiles than N: the static file repeats tiles, and so must PyTorch (a repeat
    # changes a mean; under max pooling restore may drop the repeats, which changes nothing)
    from isp_collab.models import load_model
    from isp_collab.restore import OnnxBackend, TorchBackend, restore

    image = np.random.default_rng(3).random((40, 100, 3)).astype(np.float32)  # 3 tiles of 64 for N=4
    exported = restore(image, OnnxBackend(art.path), tile=TILE)
    torch_out = restore(image, TorchBackend(load_model(tmp_path / NAME)), n=N, tile=TILE)
    assert np.abs(exported - torch_out).max() <= 1e-4


def test_graph_is_static():
    proto = onnx.load(str(artefact("fp32").path))
    onnx.checker.check_model(proto, full_check=True)
    assert static_graph_problems(proto) == []
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Shape", "ConstantOfShape", "Size", "BatchNormalization", "If", "Loop"}
    consts = {t.name for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type in ("Reshape", "Expand"):
            assert node.input[1] in consts, f"{node.name}: shape computed at run time"
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,), (out,) = proto.graph.input, proto.graph.output
    for vi, name in ((inp, "stack"), (out, "restored")):
        assert vi.name == name
        assert [d.dim_value for d in vi.type.tensor_type.shape.dim] == [1, N, 3, TILE, TILE]
        assert vi.type.tensor_type.elem_type == TensorProto.FLOAT
    for precision in ("fp16", "int8"):
        assert static_graph_problems(onnx.load(str(artefact(precision).path))) == []


def test_static_check_flags_dynamic_shapes():
    """A hand-made graph with Shape -> Reshape must be rejected."""
    x = helper.make_tensor_value_info("stack", TensorProto.FLOAT, [1, 4, 3, 8, 8])
    y = helper.make_tensor_value_info("restored", TensorProto.FLOAT, [1, 4, 3, 8, 8])
    nodes = [helper.make_node("Shape", ["stack"], ["s"]), helper.make_node("Reshape", ["stack", "s"], ["restored"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)])
    problems = static_graph_problems(model)
    assert any("Shape" in p for p in problems) and any("computed at run time" in p for p in problems)


def test_fold_batchnorm_is_exact_and_leaves_model_alone():
    model = load_model(exported()[0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert not [m for m in folded.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert check_fold(model, folded, N) <= 1e-5
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fp16_and_int8_variants():
    fp16, int8 = onnx.load(str(artefact("fp16").path)), onnx.load(str(artefact("int8").path))
    for proto in (fp16, int8):  # fp32 I/O kept
        assert proto.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
        assert proto.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert any(t.data_type == TensorProto.FLOAT16 for t in fp16.graph.initializer)
    ops = {n.op_type for n in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # the residual Add (restored = stack + residual) reads the float input and writes the output directly: the
    # image is not rounded to fp16 (or int8) on its way through (fp16 rounded it: stack -> fp16 -> fp32 -> Add ...)
    for proto in (fp16, int8):
        (add,) = [n for n in proto.graph.node if n.output[0] == "restored"]
        assert add.op_type == "Add" and "stack" in add.input
    x = np.random.default_rng(0).random((1, N, 3, TILE, TILE), dtype=np.float32)
    y = ort.InferenceSession(str(artefact("fp16").path), providers=["CPUExecutionProvider"]).run(None, {"stack": x})[0]
    assert not np.array_equal(y, y.astype(np.float16).astype(np.float32))
    # ... and the 1x1 output conv keeps float weights (all other convs read DequantizeLinear outputs)
    producer = {o: n.op_type for n in int8.graph.node for o in n.output}
    convs = [n for n in int8.graph.node if n.op_type == "Conv"]
    assert [producer.get(c.input[1]) for c in convs].count(None) == 1 and len(convs) == _conv_layers()
    assert len(read_sidecar(artefact("int8").sidecar)["onnx"]["quantization"]["float_nodes"]) == 2
    # weights quantised per output channel: one scale per channel of each int8 weight
    inits = {t.name: t for t in int8.graph.initializer}
    weight_scales = [
        inits[n.input[1]] for n in int8.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
    ]
    assert weight_scales and all(len(t.dims) == 1 and t.dims[0] > 1 for t in weight_scales)
    assert artefact("fp16").parity["real"]["max_abs"] < 5e-3
    assert artefact("int8").parity["real"]["psnr_db"] > 45


def test_sidecar_content():
    model_dir = exported()[0]
    for art in exported()[1]:
        side = read_sidecar(art.sidecar)
        assert side["file"] == art.path.name and side["format"] == "onnx" and side["precision"] == art.precision
        for key, name in (("input", "stack"), ("output", "restored")):
            spec = side[key]
            assert spec["name"] == name and spec["shape"] == [1, N, 3, TILE, TILE] and spec["dtype"] == "float32"
            assert spec["value_range"] == [0.0, 1.0] and spec["colour_space"].startswith("linear RGB")
            assert "not clipped" in spec["value_range_note"]
        assert side["tiling"] == side["tiling"] | {
            "n": N,
            "n_trained": N,
            "tile": TILE,
            "overlap": 16,  # default_overlap(64): 32 px at most a quarter of the tile
            "strategy": "spread",
            "n_validated": True,
        }
        assert side["tiling"]["gathering"].startswith("tiles ordered along a generalised Hilbert curve")
        assert "mirror-symmetric about the image centre" in side["tiling"]["grid"]
        assert side["file_sha256"] == file_sha256(art.path)
        assert side["model"]["weights_sha256"] == file_sha256(model_dir / "model.safetensors")
        assert side["model"]["name"] == NAME and side["onnx"]["opset"] >= 17 and side["onnx"]["batchnorm_folded"]
        assert side["package_version"] and side["parity"]["random"]["max_abs"] >= 0
        cost = side["model"]["cost"]  # what a runtime budgets for: the test model's size and FLOPs at N=4, tile 64
        assert cost["parameters"] == sum(p.numel() for p in load_model(model_dir).parameters())
        assert cost["gflops_per_call"] == pytest.approx(cost["gflops_per_megapixel"] * N * TILE**2 / 1e6, rel=1e-2)
        assert 50 < cost["gflops_per_megapixel"] < 80  # UNet-TX N=4: 62 GFLOPs/MP (README)
    assert read_sidecar(artefact("int8").sidecar)["onnx"]["quantization"]["calibration_stacks"] == 4


def test_every_onnx_file_carries_its_model_and_tiling_in_its_metadata():
    """The file alone (without its sidecar) says which weights, N, tile, overlap and strategy it was made with."""
    weights = file_sha256(exported()[0] / "model.safetensors")
    for art in exported()[1]:
        props = {e.key: e.value for e in onnx.load(str(art.path)).metadata_props}
        assert {k: v for k, v in props.items() if k.startswith("isp_collab.")} == {
            "isp_collab.model": NAME,
            "isp_collab.weights_sha256": weights,
            "isp_collab.n": str(N),
            "isp_collab.tile": str(TILE),
            "isp_collab.overlap": "16",
            "isp_collab.strategy": "spread",
            "isp_collab.colour_space": "linear RGB",
            "isp_collab.version": read_sidecar(art.sidecar)["package_version"],
        }, art.precision


def test_sidecar_text_states_the_rules_a_port_needs():
    """The sidecar's words settle what a port from them alone would otherwise guess (a reviewer's list)."""
    from isp_collab.export.sidecar import build_sidecar

    def side(strategy: str, task: str = "sharpen") -> dict:
        return build_sidecar(
            fmt="onnx", precision="fp32", file="m.onnx", n=4, tile=64, overlap=16, strategy=strategy,
            model={"task": task, "n_trained": 4}, target={}, parity={}, input_name="stack", output_name="restored",
            package_version="0", torch_version="0",
        )  # fmt: skip

    spread, mirror = side("spread"), side("mirror", "lens-a")
    tiling = spread["tiling"]
    assert "up to and including the first s with s + tile - 1 >= length - 1 + overlap // 2" in tiling["grid"]
    assert "w(k) = w(tile - 1 - k)" in tiling["window"]
    for text in (tiling["gathering"], mirror["tiling"]["gathering"]):  # each strategy's text defines the curve
        assert "generate2d(0, 0, columns, 0, 0, rows) when columns >= rows" in text
        assert "floor division, also of negative values" in text
    for rule in ("2 x0 + tile - 1 >= c2x", "the sorted distinct ry, rx", "a chunk with no kept member skipped"):
        assert rule in mirror["tiling"]["gathering"]
    assert "numpy's default 'linear' method" in spread["preprocess"]["level"]
    assert spread["preprocess"]["rule"].startswith("e = clip(") and "float32(e)" in spread["preprocess"]["rule"]
    for post in (spread["postprocess"], mirror["postprocess"]):  # g is the white-balance gains only
        assert "without the exposure gain e" in post["before_after"]


def test_bad_opset_refused(tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_model(exported()[0], tile=TILE, formats=("onnx",), out_dir=tmp_path / "o", opset=13)
    assert not (tmp_path / "o").exists()


def test_small_static_tile_runs_through_the_pipeline_with_the_default_overlap(tmp_path):
    # restore's default overlap (32) does not fit a 32 px tile: the stage must scale it to the ONNX file's tile
    from isp_collab.pipeline.collaborative import Sharpen

    model_dir = make_model_dir(tmp_path)
    with pytest.warns(UserWarning, match="trained with N=4; quality at N=2 was not validated"):
        (art,) = export_model(model_dir, n=2, tile=32, formats=("onnx",), precisions=("fp32",), out_dir=tmp_path / "o")
    tiling = read_sidecar(art.sidecar)["tiling"]
    assert (tiling["n"], tiling["n_trained"], tiling["n_validated"]) == (2, 4, False)  # the sidecar says so too
    stage = Sharpen(enabled=True, backend="onnx", onnx_path=str(art.path))
    image = np.random.default_rng(0).random((50, 70, 3), dtype=np.float32)
    frame = Frame(source=tmp_path / "x.png", kind="rgb", height=50, width=70, bit_depth=8)
    out = stage.apply(image, frame)
    assert out.shape == image.shape and np.isfinite(out).all()
    assert float(np.abs(out - image).max()) > 1e-3  # the network ran
    # the overlap used is the one the file's sidecar records for its 32-px tile (default_overlap(32) = 8)
    assert stage.restore_kwargs(frame)["overlap"] == 8
    same = Sharpen(enabled=True, backend="onnx", onnx_path=str(art.path), overlap=8).apply(image, frame)
    np.testing.assert_array_equal(out, same)


def test_the_pipeline_refuses_a_sidecar_written_for_another_file(tmp_path):
    """An int8 sidecar copied beside the fp32 file (same weights, same shapes): told apart by the file's hash."""
    from isp_collab.pipeline.collaborative import Sharpen

    onnx_path = tmp_path / "m.onnx"
    shutil.copy(artefact("fp32").path, onnx_path)
    shutil.copy(artefact("int8").sidecar, tmp_path / "m.json")
    with pytest.raises(ValueError, match=r"m\.json: written for another file than .*m\.onnx \(its file_sha256 differs"):
        Sharpen(enabled=True, onnx_path=str(onnx_path)).network()
    shutil.copy(artefact("fp32").sidecar, tmp_path / "m.json")
    assert Sharpen(enabled=True, onnx_path=str(onnx_path)).network() is not None


def test_an_onnx_stage_runs_on_its_device(tmp_path, cpu_only_onnxruntime):
    """The stage's device reaches ONNX Runtime (it was ignored: a device='cpu' stage ran on the GPU when there was
    one); this ONNX Runtime has no CUDA provider, so 'cuda' is refused and 'cpu' runs on the CPU alone."""
    from isp_collab.pipeline.collaborative import Sharpen

    art = artefact("fp32")
    runner = Sharpen(enabled=True, onnx_path=str(art.path), device="cpu").network()
    assert runner.session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="device 'cuda': this ONNX Runtime has no CUDA provider"):
        Sharpen(enabled=True, onnx_path=str(art.path), device="cuda").network()


def test_read_sidecar_refuses_a_sidecar_without_a_required_key_or_not_json(tmp_path):
    from isp_collab.export.sidecar import REQUIRED_KEYS

    art = exported()[1][0]
    full = json.loads(art.sidecar.read_text())
    for key in REQUIRED_KEYS:
        bad = tmp_path / f"no-{key}.json"
        bad.write_text(json.dumps({k: v for k, v in full.items() if k != key}))
        with pytest.raises(ValueError, match=f"{bad}: sidecar lacks '{key}'"):
            read_sidecar(bad)
    (tmp_path / "cut.json").write_text(art.sidecar.read_text()[:50])
    with pytest.raises(ValueError, match="cut.json: not valid JSON"):
        read_sidecar(tmp_path / "cut.json")


def _conv_layers() -> int:
    """Conv layers of the exported network (batch norms folded into them): one graph Conv each."""
    return sum(isinstance(m, torch.nn.Conv2d) for m in load_model(exported()[0]).modules())


def test_process_with_onnx_never_imports_torch(tmp_path):
    """`process --onnx` runs where torch cannot be imported (it used to cost ~1 s of every run), same image."""
    import subprocess
    import sys

    import cv2

    from isp_collab.cli import main

    art = artefact("fp32")
    src, alone, beside = tmp_path / "in.png", tmp_path / "alone.png", tmp_path / "beside.png"
    cv2.imwrite(str(src), np.random.default_rng(3).integers(0, 255, (80, 96, 3), dtype=np.uint8))
    argv = ["process", str(src), "-o", str(alone), "--onnx", str(art.path)]
    code = f"import sys\nsys.modules['torch'] = None\nfrom isp_collab.cli import main\nsys.exit(main({argv!r}))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert main(["process", str(src), "-o", str(beside), "--onnx", str(art.path)]) == 0  # torch imported here
    assert np.array_equal(cv2.imread(str(alone)), cv2.imread(str(beside)))
