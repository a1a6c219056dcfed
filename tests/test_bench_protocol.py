"""The §5.2 degradation protocol is seeded and shaped right; the tuning search picks the best combo."""

import numpy as np
import pytest

from isp_collab.bench import protocol, tune
from isp_collab.bench.data import load_images


@pytest.fixture(scope="module")
def images():
    return load_images(max_images=2)


def test_cases_are_deterministic_and_seeded(images):
    degs = protocol.degradation_names((2.0,))
    a = list(protocol.cases(images, degs, seed=0, crop=64))
    b = list(protocol.cases(images, degs, seed=0, crop=64))
    c = list(protocol.cases(images, degs, seed=1, crop=64))
    assert [x.degradation for x in a] == ["sigma=2", "aniso"] * 2
    for x, y, z in zip(a, b, c, strict=True):
        assert x.blurry.shape == x.sharp.shape == (64, 64, 3) and x.blurry.dtype == np.float32
        np.testing.assert_array_equal(x.blurry, y.blurry)
        assert not np.array_equal(x.blurry, z.blurry)
        assert x.blurry.min() >= 0.0 and x.blurry.max() <= 1.0


def test_noise_does_not_depend_on_which_other_degradations_run(images):
    one = next(protocol.cases(images[:1], ["aniso"], crop=48))
    both = list(protocol.cases(images[:1], ["sigma=1", "aniso"], crop=48))[1]
    np.testing.assert_array_equal(one.blurry, both.blurry)


def test_anisotropic_kernels_differ_per_image_and_sum_to_one():
    k0, k1 = protocol.kernel_for("aniso", 0), protocol.kernel_for("aniso", 1)
    assert k0.shape == (33, 33) and k0.sum() == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(k0, k1)
    with pytest.raises(ValueError, match="unknown degradation"):
        protocol.kernel_for("motion", 0)


def test_staged_search_finds_the_best_combination():
    x = np.random.default_rng(0).random((40, 40, 3), dtype=np.float32)
    data = [protocol.Case("img", "sigma=1", x, x)]  # blurry == sharp: the best "method" is the identity

    def fn(img, a, b):  # identity only at a = 1, b = 2
        return img + np.float32(0.01 * abs(a - 1) + 0.02 * abs(b - 2))

    rows, stages = tune.staged_search(fn, {"a": 3, "b": 0}, [{"a": [0, 1, 3]}, {"b": [0, 2, 4]}], data)
    assert [s["stage"] for s in stages] == [1, 2]
    assert stages[0]["best"] == {"a": 1, "b": 0}
    assert rows[0]["params"] == {"a": 1, "b": 2} and rows[0]["mean_psnr"] == float("inf")
