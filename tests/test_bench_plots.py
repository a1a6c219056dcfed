"""What the plots of ``isp-collab bench`` say: a quick run says so in every title, PSNR-vs-N labels the N a
model ran at where it differs from the trained one, and crop scores name the image they were taken on."""

import numpy as np
import pytest
from test_bench_runs import _fake_model

import isp_collab.bench.run as bench_run
from isp_collab.bench import plots
from isp_collab.bench.kernel_estimation import KernelExperiment
from isp_collab.bench.speed import SpeedResult
from isp_collab.cli import main


def _titles(fig) -> str:
    texts = [fig._suptitle.get_text()] if fig._suptitle else []
    return " | ".join(texts + [ax.get_title() for ax in fig.axes])


@pytest.fixture
def saved(monkeypatch):
    figures = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(_titles(fig)), real_save(fig, path))[1])
    return figures


@pytest.mark.filterwarnings("ignore:No artists with labels")
@pytest.mark.parametrize("quick", [False, True])
def test_every_plot_of_a_quick_run_says_quick_in_its_title(tmp_path, saved, quick):
    ksim = KernelExperiment(["kernel1"], [1, 2], 2, 64, 0.01, "circular", 1.0, np.full((1, 2, 2), 0.9), 1)
    plots.plot_ksim([ksim], tmp_path / "k.png", quick)
    plots.plot_psnr_vs_sigma({"unsharp mask": {"sigma=1": 30.0}}, tmp_path / "s.png", quick)
    plots.plot_psnr_vs_n([[(4, 31.0, "m-n4")]], {"unsharp mask": 30.0}, tmp_path / "n.png", quick)
    speed = SpeedResult(threads=1, size=64, reps=1, models=[], latency=[], classical=[], matmul={}, skipped=[])
    plots.plot_latency_vs_params(speed, tmp_path / "l.png", quick)
    assert len(saved) == 4 and all(("quick run" in t) is quick for t in saved), saved


def test_quick_quality_plots_label_what_ran(tmp_path, saved, monkeypatch):
    model = _fake_model(tmp_path / "models" / "sharpen-fake-n4", 4, "sharpen")
    families = []
    real = bench_run.plot_psnr_vs_n
    monkeypatch.setattr(bench_run, "plot_psnr_vs_n", lambda f, *a: (families.extend(f), real(f, *a))[1])
    assert main(["bench", "quality", "--quick", "--models", model, "--out", str(tmp_path / "out")]) == 0
    # the 96-px quick crops are one 256-px tile: the N=4 model ran its stacks at N=1, and its point says so
    assert families == [[(4, pytest.approx(families[0][0][1]), "sharpen-fake-n4 (ran at N=1)")]]
    assert len(saved) == 3 and all("quick run" in t for t in saved), saved
    crops = next(t for t in saved if "centre crop" in t)
    assert "(crop ≤ 96 px)" in crops and "whole image" not in crops
