"""The speed table's arithmetic: medians, ms per megapixel, achieved GFLOP/s (times stood in for, not measured)."""

import numpy as np
import pytest

from isp_collab.bench import speed, timing
from isp_collab.bench.speed_specs import ModelSpec


def test_summary_is_the_median_per_megapixel():
    s = timing.summary([0.3, 0.1, 0.2, 5.0, 0.25], mpix=0.5)  # one slow outlier: the median ignores it
    assert s["median_s"] == 0.25 and s["ms_per_mp"] == pytest.approx(500.0) and s["mp_per_s"] == pytest.approx(2.0)


def test_time_fn_runs_warmup_then_reps_and_times_each():
    calls = []
    times = timing.time_fn(lambda: calls.append(1), reps=3, warmup=2)
    assert len(calls) == 5 and len(times) == 3 and all(t >= 0 for t in times)


def test_restore_timing_is_per_megapixel_and_the_network_rate_is_flops_over_the_median(monkeypatch):
    runs = iter([[0.5, 0.3, 0.4], [0.02, 0.01, 0.03]])  # whole image restores, then one stack through the network
    monkeypatch.setattr(speed, "time_fn", lambda fn, reps, warmup, sync=None: next(runs))
    job = {"spec": ModelSpec("x", 1, arch="unet-tx"), "kind": "torch", "threads": 1, "net_flops": 3e9}
    res = speed._time_restore(job, np.zeros((8, 8, 3), np.float32), mpix=0.25, reps=3, warmup=1)
    assert res["median_s"] == 0.4 and res["ms_per_mp"] == pytest.approx(1600.0)
    assert res["net_median_s"] == 0.02 and res["achieved_gflops"] == pytest.approx(150.0)  # 3 GFLOP / 0.02 s


def test_matmul_reference_rate_is_two_n_cubed_over_the_median(monkeypatch):
    monkeypatch.setattr(timing, "time_fn", lambda fn, reps, warmup=1: [0.4, 0.2, 0.1])
    monkeypatch.setattr(timing, "set_threads", lambda threads: None)
    assert timing.matmul_peak(1, n=100, reps=3) == {"n": 100, "median_s": 0.2, "gflops": pytest.approx(2e6 / 0.2 / 1e9)}
