"""The kernel-estimation experiment (paper §3): KSIM, the closed-form estimate, and the CLI end to end."""

import numpy as np
import pytest

from isp_collab.bench import kernel_estimation as ke
from isp_collab.bench.data import load_levin_kernels
from isp_collab.cli import main


def _kernel(k=9, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((k, k)) ** 4
    return x / x.sum()


def test_ksim_of_a_kernel_with_itself_shifted_is_one():
    k = _kernel()
    big = np.zeros((15, 15))
    big[2:11, 5:14] = k  # the same kernel, translated inside a larger support
    assert ke.ksim(k, big) == pytest.approx(1.0, abs=1e-12)
    assert ke.ksim(k, 3.0 * k) == pytest.approx(1.0, abs=1e-12)  # scale-invariant


def test_ksim_of_different_kernels_is_below_one():
    assert ke.ksim(_kernel(seed=0), _kernel(seed=1)) < 0.99
    assert ke.ksim(_kernel(), np.zeros((9, 9))) == 0.0


def test_noiseless_pairs_recover_the_kernel():
    k = load_levin_kernels()["kernel3"]  # 15 x 15 motion blur
    rng = np.random.default_rng(0)
    sharp = rng.random((2, 48, 48))
    blurry = ke.blur_circular(sharp, k)
    est = ke.estimate_kernel(sharp, blurry, k.shape[0], eps=1e-10)
    np.testing.assert_allclose(est, k, atol=1e-6)
    assert ke.ksim(k, est) == pytest.approx(1.0, abs=1e-9)


def test_more_pairs_give_a_better_estimate_under_noise():
    k = load_levin_kernels()["kernel1"]
    rng = np.random.default_rng(0)
    images = [rng.random((120, 120)) for _ in range(2)]
    res = ke.run_experiment(images, {"k": k}, ns=(1, 16), seeds=2, patch=48)
    assert res.ksim.shape == (1, 2, 2)
    assert res.mean()[1] > res.mean()[0]


def test_linear_boundary_runs_and_is_bounded():
    k = load_levin_kernels()["kernel5"]
    rng = np.random.default_rng(1)
    images = [rng.random((100, 100))]
    res = ke.run_experiment(images, {"k": k}, ns=(1, 4), seeds=1, patch=40, boundary="linear")
    assert np.all((res.ksim > 0) & (res.ksim <= 1 + 1e-9))


def test_bench_kernels_quick_end_to_end(tmp_path, capsys):
    assert main(["bench", "kernels", "--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "<!-- section:kernel-estimation -->" in text and "<!-- /section:machine -->" in text
    assert "Quick run" in text
    assert (tmp_path / "ksim_vs_n.png").stat().st_size > 1000
    assert "saturates at N=" in capsys.readouterr().out


def test_bench_rejects_a_missing_image_folder(tmp_path, capsys):
    assert main(["bench", "kernels", "--quick", "--images", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "no such image folder" in capsys.readouterr().err


def test_a_curve_still_rising_at_the_largest_n_is_not_called_saturated(tmp_path):
    from isp_collab.bench.kernel_estimation import KernelExperiment
    from isp_collab.bench.plots import plot_ksim
    from isp_collab.bench.sections import kernels_section

    ns = [1, 2, 4, 8, 16, 32, 64]
    means = [0.80, 0.85, 0.89, 0.92, 0.94, 0.9598, 0.97]  # 32 -> 64 still gains 0.0102
    ksim = np.array(means)[None, :, None].repeat(2, axis=2)
    rising = KernelExperiment(["kernel1"], ns, 2, 64, 0.01, "circular", 1.0, ksim, 1)
    assert rising.saturation_n() is None
    assert rising.saturation_text() == "not saturated by N=64 (32->64 still gains 0.0102)"
    text = kernels_section([rising], "ksim.png", 1.0)
    assert "not saturated by N=64" in text and "gains < 0.01 from N = 64" not in text
    plot_ksim([rising], tmp_path / "ksim.png")  # no saturation line to draw
    flat = KernelExperiment(["kernel1"], ns, 2, 64, 0.01, "circular", 1.0, np.full((1, 7, 2), 0.9), 1)
    assert flat.saturation_n() == 1 and flat.saturation_text() == "saturates at N=1"
