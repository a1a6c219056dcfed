"""Backends: torch and ONNX Runtime give the same image; static shapes; the caller's model is left alone."""

import warnings

import numpy as np
import pytest
import torch

from isp_collab.models import create_model
from isp_collab.restore import OnnxBackend, TorchBackend, restore

TILE, N = 32, 4


def random_model(n=N):
    model = create_model("unet-tx", n=n)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny static-shape [1, N, 3, T, T] ONNX export (input 'stack', output 'restored') and its model."""
    model = random_model()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        # dynamo=False: the TorchScript exporter takes ~0.3 s here against ~4 s for dynamo=True
        torch.onnx.export(
            model,
            (torch.rand(1, N, 3, TILE, TILE),),
            str(path),
            input_names=["stack"],
            output_names=["restored"],
            opset_version=18,
            dynamo=False,
        )
    return model, path


def test_onnx_backend_reads_the_static_shape(exported):
    _, path = exported
    b = OnnxBackend(path)
    assert (b.batch, b.n, b.tile) == (1, N, TILE)


def test_onnx_and_torch_backends_agree_on_stacks(exported):
    model, path = exported
    stacks = np.random.default_rng(0).random((3, N, 3, TILE, TILE), dtype=np.float32)  # 3 > static batch 1
    a = TorchBackend(model, "cpu").run(stacks)
    b = OnnxBackend(path, threads=1).run(stacks)
    assert a.shape == b.shape == stacks.shape
    assert np.abs(a - stacks).max() > 1e-3  # not the identity
    assert np.abs(a - b).max() <= 1e-4


@pytest.mark.parametrize("strategy", ["spread", "mirror"])
def test_onnx_and_torch_restore_the_same_image(exported, strategy):
    model, path = exported
    img = np.random.default_rng(1).random((50, 77, 3), dtype=np.float32)
    a = restore(img, model, n=N, strategy=strategy, tile=TILE, overlap=8, backend="torch", device="cpu")
    b = restore(img, OnnxBackend(path, threads=1), strategy=strategy, tile=None, overlap=8)  # n, tile from the file
    assert np.abs(a - b).max() <= 1e-4


def test_restore_builds_the_onnx_backend_from_a_path(exported):
    model, path = exported
    img = np.random.default_rng(2).random((30, 20, 3), dtype=np.float32)
    a = restore(img, model, n=N, tile=TILE, overlap=8, device="cpu")
    assert np.abs(restore(img, model, tile=TILE, overlap=8, backend="onnx", onnx_path=path) - a).max() <= 1e-4
    assert np.abs(restore(img, str(path), tile=TILE, overlap=8) - a).max() <= 1e-4  # a .onnx path as the model


def test_onnx_static_shape_mismatches_are_one_line_errors(exported, tmp_path):
    _, path = exported
    img = np.zeros((40, 40, 3), np.float32)
    with pytest.raises(ValueError, match="N=4 only"):
        restore(img, path, n=2, tile=TILE, overlap=8)
    with pytest.raises(ValueError, match="32x32 tiles only"):
        restore(img, path, tile=64, overlap=8)
    with pytest.raises(ValueError, match="tiny.onnx"):
        OnnxBackend(path).run(np.zeros((1, 2, 3, TILE, TILE), np.float32))
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(ValueError, match="bad.onnx: cannot load ONNX model"):
        OnnxBackend(bad)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxBackend(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="onnx_path"):
        restore(img, random_model(), backend="onnx", tile=TILE, overlap=8)


@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_backend_leaves_the_callers_model_alone(channels_last):
    model = random_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stacks = np.random.default_rng(2).random((2, N, 3, TILE, TILE), dtype=np.float32)
    b = TorchBackend(model, "cpu", channels_last=channels_last)
    out = b.run(stacks)
    assert model.training  # not switched to eval
    assert model.inc[0].weight.is_contiguous()  # memory format untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # BatchNorm statistics not updated either
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(stacks)).numpy()
    assert np.abs(out - ref).max() <= 1e-5  # both memory formats compute the same thing


def test_restore_accepts_a_backend_a_module_and_defaults_n_from_the_card():
    model = random_model()
    model.card = {"n_trained": 4}
    img = np.random.default_rng(3).random((40, 50, 3), dtype=np.float32)
    a = restore(img, model, tile=TILE, overlap=8, device="cpu")
    b = restore(img, TorchBackend(model, "cpu"), n=4, tile=TILE, overlap=8)
    assert np.abs(a - b).max() <= 1e-6
