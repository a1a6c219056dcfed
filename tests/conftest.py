"""Shared test setup."""

import contextlib
import importlib.util
import re
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: a second torch thread only adds synchronisation (10x slower on a loaded 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cpu_only_onnxruntime(monkeypatch):
    """ONNX Runtime as installed here (CPU provider only), also where onnxruntime-gpu is installed."""
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])


@pytest.fixture
def load_benchmark():
    """``load("tile_default")``: a script of benchmarks/ as a module (the scripts are not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def refused(capsys):
    """``with refused(pattern): ...``: the block ends as a benchmark script refuses bad input (``refuse``):
    exit status 2 and one line on stderr that ``pattern`` (a regex) is found in."""

    @contextlib.contextmanager
    def expect(pattern: str):
        with pytest.raises(SystemExit) as stop:
            yield
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2, f"exit status {stop.value.code!r}, not 2"
        assert "\n" not in err and re.search(pattern, err), err

    return expect
