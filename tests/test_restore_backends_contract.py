"""OnnxBackend's batching (a static batch B > 1 runs B stacks at a time, the last group padded; a dynamic one all at
once) and TorchBackend's defaults: memory format, float32 out, the size multiple."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from isp_collab.models import create_model
from isp_collab.restore import OnnxBackend, TorchBackend

N, TILE = 2, 4


def identity_model(path, batch, dims=None, output="restored"):
    """restored = stack, with input and output of batch dimension ``batch`` (an int: static, a name: dynamic)."""
    dims = dims or [batch, N, 3, TILE, TILE]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["stack"], [output])],
        "tiny",
        [helper.make_tensor_value_info("stack", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("batch,stacks", [(2, 3), (2, 4), (3, 1), (3, 5), ("B", 3)])
def test_every_stack_comes_back_in_its_place(tmp_path, batch, stacks):
    backend = OnnxBackend(identity_model(tmp_path / "m.onnx", batch), threads=1)
    assert backend.batch == (batch if isinstance(batch, int) else None)
    assert (backend.n, backend.tile, backend.multiple) == (N, TILE, 1)
    x = np.random.default_rng(0).random((stacks, N, 3, TILE, TILE), dtype=np.float32)
    y = backend.run(x)
    assert y.dtype == np.float32 and np.array_equal(y, x)


@pytest.mark.parametrize("n,tile", [(N + 1, TILE), (N, TILE + 2)])
def test_stacks_of_another_n_or_tile_are_refused_before_onnx_runtime_sees_them(tmp_path, n, tile):
    backend = OnnxBackend(identity_model(tmp_path / "m.onnx", 1), threads=1)
    with pytest.raises(ValueError, match=f"model takes stacks of N={N}, tile {TILE}; got N={n}, tile {tile}x{tile}"):
        backend.run(np.zeros((1, n, 3, tile, tile), np.float32))


def test_a_static_batch_is_run_in_groups_of_its_size(tmp_path, monkeypatch):
    backend = OnnxBackend(identity_model(tmp_path / "m.onnx", 2), threads=1)
    seen = []
    run = backend.session.run

    class Spy:
        def run(self, names, feeds):
            seen.append(feeds["stack"].shape[0])
            return run(names, feeds)

    monkeypatch.setattr(backend, "session", Spy())
    backend.run(np.zeros((5, N, 3, TILE, TILE), np.float32))
    assert seen == [2, 2, 2]  # the last group: one stack and one repeat


def test_the_session_gets_the_thread_count_and_the_devices_providers(tmp_path, monkeypatch):
    import onnxruntime as ort

    path = identity_model(tmp_path / "m.onnx", 1)
    assert OnnxBackend(path, threads=1).session.get_session_options().intra_op_num_threads == 1
    assert OnnxBackend(path, device="cpu").session.get_providers() == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="no CUDA provider"):  # the device is asked for, not ignored
        OnnxBackend(path, device="cuda")
    given = OnnxBackend(path, providers=["CPUExecutionProvider"], device="cuda")  # explicit providers win
    assert given.session.get_providers() == ["CPUExecutionProvider"]


def test_cuda_without_an_index_is_gpu_0(monkeypatch):
    import onnxruntime as ort

    from isp_collab.restore.backends import onnx_providers

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert onnx_providers("cuda") == [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]


@pytest.mark.parametrize(
    "dims,output,reason",
    [
        ([1, N, 3, TILE, TILE], "out", "expected input 'stack' and output 'restored'"),
        ([1, N, 3, TILE, 2 * TILE], "restored", "tiles must be square"),
        ([1, N, 3, 2 * TILE, TILE], "restored", "tiles must be square"),
    ],
)
def test_a_model_with_another_output_or_non_square_tiles_is_refused(tmp_path, dims, output, reason):
    with pytest.raises(ValueError, match=reason):
        OnnxBackend(identity_model(tmp_path / "m.onnx", 1, dims, output))


@pytest.mark.parametrize("asked,expected", [(None, True), (False, False), (True, True)])
def test_the_cpu_runs_channels_last_unless_told_not_to(asked, expected):
    b = TorchBackend(create_model("unet-tx", n=2), "cpu", channels_last=asked)
    assert b.channels_last is expected
    weight = b.model.inc[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) is expected
    assert weight.is_contiguous() is not expected  # a 3x3 conv with several channels is one or the other


def test_a_double_network_gives_float32_back():
    b = TorchBackend(create_model("unet-tx", n=1).double(), "cpu")
    assert b.dtype == torch.float64
    out = b.run(np.zeros((1, 1, 3, 16, 16), np.float32))
    assert out.dtype == np.float32 and out.shape == (1, 1, 3, 16, 16)


def test_the_size_multiple_comes_from_the_network_and_is_1_for_a_plain_module():
    assert TorchBackend(create_model("unet-tx", n=1), "cpu").multiple == create_model("unet-tx", n=1).multiple > 1

    class Plain(torch.nn.Module):
        def forward(self, x):
            return x

    assert TorchBackend(Plain(), "cpu").multiple == 1
