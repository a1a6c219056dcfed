"""benchmarks/exposure.py: the torch threads are an option, checked, and the caption says how many ran."""

import sys

import numpy as np
import pytest
import torch

from isp_collab.bench.data import BenchImage


@pytest.fixture
def script(load_benchmark):
    return load_benchmark("exposure")


def test_threads_below_one_are_refused(capsys, monkeypatch, script):
    monkeypatch.setattr(sys, "argv", ["exposure.py", "--threads", "0"])
    with pytest.raises(SystemExit) as stop:
        script.main()
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and "--threads must be >= 1, got 0" in err


def test_the_caption_records_the_threads(capsys, monkeypatch, script):
    photo = BenchImage("a", np.random.default_rng(0).random((64, 64, 3), dtype=np.float32) * 0.8 + 0.1)
    monkeypatch.setattr(script, "load_images", lambda: [photo])
    monkeypatch.setattr(script, "SCALES", (1.0, 0.5))
    monkeypatch.setattr(script, "BLURS", ("sigma=1",))
    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n))[1])
    argv = ["exposure.py", "--model", "sharpen-unet-tx-n1", "--crop", "64", "--threads", "3"]
    monkeypatch.setattr(sys, "argv", argv)
    script.main()
    assert calls[0] == 3 and "3 torch thread(s)." in capsys.readouterr().out
