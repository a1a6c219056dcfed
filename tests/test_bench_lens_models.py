"""Lens models are benchmarked on their own lens (card ``lens``: a bundled lens or a calibration .npz), or refused."""

import pytest
from test_bench_guards import _images

from isp_collab.bench.report import read_section
from isp_collab.cli import main
from isp_collab.models import create_model, save_model
from isp_collab.physics.psf_field import make_lens, save_calibration


def _lens_model(folder, lens, n=1):
    """An untrained N=``n`` lens model whose card names ``lens``."""
    save_model(create_model("unet-tx", n=n), folder, {"n_trained": n, "task": "lens", "lens": lens})
    return str(folder)


def _lens_section(out):
    text = (out / "RESULTS.md").read_text()
    name = next(line.split(":", 1)[1].rstrip(" ->") for line in text.splitlines() if "<!-- section:lens" in line)
    return read_section(text, name)


def test_a_model_of_another_bundled_lens_is_measured_on_it(tmp_path):
    model = _lens_model(tmp_path / "models" / "mine-b", "lens-b")
    out = tmp_path / "out"
    images = _images(tmp_path / "imgs", [(100, 112)])  # every lens region kept after the 16-px border
    assert main(["bench", "lens", "--quick", "--images", str(images), "--models", model, "--out", str(out)]) == 0
    section = _lens_section(out)
    assert "| mine-b |" in section and "| blurry input |" in section
    assert "`lens-b` (`mine-b`) = `make_lens('lens-b'" in section


def test_a_calibration_lens_is_found_in_the_model_folder(tmp_path):
    folder = tmp_path / "models" / "measured"
    model = _lens_model(folder, "calibrations/my_lens.npz")  # the path typed at training time, elsewhere
    save_calibration(make_lens("lens-b", (64, 96)), folder / "my_lens.npz")
    other = _lens_model(tmp_path / "models" / "bundled-a", "lens-a")
    out = tmp_path / "out"
    images = _images(tmp_path / "imgs", [(100, 112)])
    args = ["--quick", "--images", str(images), "--models", model, other, "--out", str(out)]
    assert main(["bench", "lens", *args]) == 0
    section = _lens_section(out)
    assert "| measured |" in section and "| bundled-a |" in section
    assert "| blurry input (my_lens.npz) |" in section and "| blurry input (lens-a) |" in section


@pytest.mark.parametrize("action", ["lens", "quality"])
@pytest.mark.parametrize("lens", ["nowhere/gone.npz", "lens-z"])
def test_a_model_whose_lens_cannot_be_rebuilt_is_refused(tmp_path, capsys, action, lens):
    model = _lens_model(tmp_path / "models" / "lost", lens)
    out = tmp_path / "out"
    assert main(["bench", action, "--quick", "--models", model, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "lost:" in err and lens in err
    assert not out.exists()
