"""Backends: torch and ONNX Runtime give the same image; static shapes; the caller's model is left alone."""

import copy
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


def test_a_half_or_double_network_restores_float32_images():
    model = random_model()
    img = np.random.default_rng(4).random((40, 50, 3), dtype=np.float32)
    ref = restore(img, model, tile=TILE, overlap=8, device="cpu")
    for convert, tol in ((torch.nn.Module.double, 1e-6), (torch.nn.Module.half, 1e-2)):  # half: on the CPU too
        out = restore(img, convert(copy.deepcopy(model)), tile=TILE, overlap=8, device="cpu")  # was: a float32 stack
        assert out.dtype == np.float32 and np.abs(out - ref).max() <= tol


class RecordingBackend:
    """Returns its input; records how many stacks each call got (and says it runs on ``device``)."""

    n = tile = None
    multiple, pooling = 1, "max"

    def __init__(self, device: str | None = None):
        self.calls: list[int] = []
        if device:
            self.device = torch.device(device)

    def run(self, stacks):
        self.calls.append(len(stacks))
        return stacks


def test_one_stack_per_call_on_the_cpu_two_on_a_gpu_unless_asked():
    img = np.random.default_rng(0).random((100, 140, 3), dtype=np.float32)
    for device, per_call in ((None, 1), ("cpu", 1), ("cuda", 2)):
        be = RecordingBackend(device)
        assert np.allclose(restore(img, be, n=2, tile=32, overlap=8), img, atol=1e-5)
        assert len(be.calls) > 2 and set(be.calls[:-1]) == {per_call}, (device, be.calls)
    be = RecordingBackend()
    restore(img, be, n=2, tile=32, overlap=8, batch_size=3)
    assert set(be.calls[:-1]) == {3}


def test_keep_freed_memory_sets_glibc_once_and_leaves_a_users_setting(tmp_path):
    import platform
    import subprocess
    import sys

    code = "from isp_collab.allocator import keep_freed_memory as k; print(k(), k())"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert out.split() == (["True", "True"] if glibc else ["False", "False"])
    for key, value in (("MALLOC_MMAP_THRESHOLD_", "65536"), ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")):
        mine = {**env, key: value}  # the user's choice wins
        out = subprocess.run([sys.executable, "-c", code], env=mine, capture_output=True, text=True, check=True)
        assert out.stdout.split() == ["False", "False"]
    other = {**env, "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}  # a tunable of something else
    out = subprocess.run([sys.executable, "-c", code], env=other, capture_output=True, text=True, check=True)
    assert out.stdout.split() == (["True", "True"] if glibc else ["False", "False"])


def test_process_sets_the_allocator(monkeypatch, tmp_path):
    import cv2

    import isp_collab.allocator as allocator
    from isp_collab.cli import main

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.full((64, 64, 3), 128, np.uint8))
    assert main(["process", str(src), "-o", str(tmp_path / "a.png"), "--stages", "none"]) == 0
    assert calls == []  # no network, the caller's allocator is left alone
    assert main(["process", str(src), "-o", str(tmp_path / "b.png")]) == 0  # the default network, torch
    assert calls == ([] if torch.cuda.is_available() else [1])  # set for the CPU only


def test_onnx_providers_follow_the_device(monkeypatch):
    """device None: CUDA when ONNX Runtime has it; "cpu" forces the CPU (it ran on the GPU); cuda:K picks GPU K."""
    import onnxruntime as ort

    from isp_collab.restore.backends import onnx_providers

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert onnx_providers(None) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert onnx_providers("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    with pytest.raises(ValueError, match="device 'mps': the onnx backend runs on cpu, cuda or cuda:K"):
        onnx_providers("mps")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_providers(None) == onnx_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="device 'cuda': this ONNX Runtime has no CUDA provider"):
        onnx_providers("cuda")
