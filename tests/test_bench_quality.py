"""The quality table's figures: each method is scored on its own output, and the table averages the rows."""

import numpy as np
import pytest

from isp_collab.bench.data import BenchImage
from isp_collab.bench.metrics import psnr, ssim
from isp_collab.bench.protocol import cases
from isp_collab.bench.quality import BLURRY, QualityRow, run_quality, summarise


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [BenchImage(f"img{i}", rng.random((48, 56, 3), dtype=np.float32)) for i in range(2)]


def test_every_method_is_scored_on_what_it_returned(images):
    grey = np.float32(0.5)
    methods = {"grey": lambda x: np.full_like(x, grey), "darker": lambda x: x * np.float32(0.8)}
    degradations = ["sigma=1", "aniso"]
    rows, kept = run_quality(images, methods, degradations, border=8, keep=lambda image, d: image == "img1")
    assert [(r.method, r.image, r.degradation) for r in rows] == [
        (m, i.name, d) for i in images for d in degradations for m in (BLURRY, "grey", "darker")
    ]
    expected = {}
    for c in cases(images, degradations):
        for name, out in ((BLURRY, c.blurry), ("grey", np.full_like(c.blurry, grey)), ("darker", c.blurry * 0.8)):
            expected[name, c.image, c.degradation] = (psnr(out, c.sharp, 8), ssim(out, c.sharp, 8))
    for r in rows:
        assert (r.psnr, r.ssim) == pytest.approx(expected[r.method, r.image, r.degradation], abs=1e-6), r
    assert len({round(r.psnr, 3) for r in rows if r.image == "img0" and r.degradation == "aniso"}) == 3
    assert sorted(kept) == ["img1 aniso", "img1 sigma=1"]
    case = next(c for c in cases(images, ["aniso"]) if c.image == "img1")
    np.testing.assert_array_equal(kept["img1 aniso"]["sharp"], case.sharp)
    np.testing.assert_array_equal(kept["img1 aniso"][BLURRY], case.blurry)
    np.testing.assert_array_equal(kept["img1 aniso"]["darker"], case.blurry * np.float32(0.8))


def test_summarise_averages_over_images_per_degradation_and_overall():
    def row(method, image, degradation, value):
        return QualityRow(method, image, degradation, psnr=value, ssim=value / 100, seconds=0.0)

    rows = [
        row("a", "x", "sigma=1", 30.0),
        row("a", "y", "sigma=1", 32.0),
        row("a", "x", "aniso", 20.0),
        row("a", "y", "aniso", 26.0),
        row("b", "x", "sigma=1", 10.0),
    ]
    assert summarise(rows) == {
        "a": {"sigma=1": 31.0, "aniso": 23.0, "mean": 27.0},
        "b": {"sigma=1": 10.0, "mean": 10.0},
    }
    assert summarise(rows, "ssim")["a"] == pytest.approx({"sigma=1": 0.31, "aniso": 0.23, "mean": 0.27})


def test_each_table_cell_prints_its_own_figure():
    from isp_collab.bench.sections import lens_section, quality_section

    psnr_table = {BLURRY: {"sigma=1": 25.0, "aniso": 24.5, "mean": 24.75}, "a": {"sigma=1": 31.0, "mean": 31.0}}
    ssim_table = {BLURRY: {"sigma=1": 0.7, "aniso": 0.65, "mean": 0.675}, "a": {"sigma=1": 0.91, "mean": 0.91}}
    text = quality_section(psnr_table, ssim_table, ["sigma=1", "aniso"], "how", ["plots/q.png"])
    assert "| method | sigma=1 | aniso | mean |" in text
    assert f"| {BLURRY} | 25.00 / 0.7000 | 24.50 / 0.6500 | 24.75 / 0.6750 |" in text
    assert "| a | 31.00 / 0.9100 | nan / nan | 31.00 / 0.9100 |" in text  # a degradation it was not run on
    assert "![q](plots/q.png)" in text
    lens = lens_section({"m": {"edge": 20.5, "intermediate": 22.25, "centre": 30.0}}, "how")
    assert "| method | edge | intermediate | centre |" in lens and "| m | 20.50 | 22.25 | 30.00 |" in lens


def test_the_lens_table_scores_each_field_region_on_its_own_pixels(tmp_path):
    """Region PSNRs of run_lens: each the error inside its region of the field (after the border), per method."""
    from isp_collab.bench.lens import lens_cases, region_masks, run_lens, summarise_lens
    from isp_collab.bench.metrics import mse, psnr_from_mse
    from isp_collab.models import create_model, save_model

    model = save_model(
        create_model("unet-tx", n=1), tmp_path / "lens-x", {"task": "lens", "lens": "lens-a", "n_trained": 1}
    )
    photos = [BenchImage("a", np.random.default_rng(5).random((100, 112, 3), dtype=np.float32))]
    rows = run_lens(photos, [str(model)])
    assert [r.method for r in rows] == [BLURRY, "lens-x"]
    ((name, sharp, blurry, field),) = list(lens_cases(photos, lens="lens-a"))
    inner = np.zeros(sharp.shape[:2], bool)
    inner[16:-16, 16:-16] = True
    masks = region_masks(sharp.shape[:2], field.center)
    expected = {r: psnr_from_mse(mse(blurry, sharp, masks[r] & inner)) for r in ("edge", "intermediate", "centre")}
    assert rows[0].psnr == pytest.approx(expected, abs=1e-9)
    assert expected["edge"] < expected["centre"] - 0.5  # the lens blurs its edge more than its centre
    assert rows[1].psnr == pytest.approx(expected, abs=1e-3)  # an untrained network: the identity
    assert summarise_lens(rows)[BLURRY] == pytest.approx(expected, abs=1e-9)
