"""What ``isp-collab bench`` writes: suffixed names for user images, model labels, the machine section,
the device of the quality section, 16-bit inputs, atomic files."""

import json
import os
import re

import cv2
import numpy as np
import pytest
from test_bench_guards import _images
from test_bench_runs import _fake_model

import isp_collab.bench.speed as speed
import isp_collab.bench.speed_specs as speed_specs
import isp_collab.training.report as training_report
from isp_collab.bench import plots, report, tune
from isp_collab.bench.data import VAL_DIR, load_images, read_srgb
from isp_collab.bench.options import BenchOptions
from isp_collab.bench.report import read_section
from isp_collab.bench.run import bench_speed
from isp_collab.cli import main


def _sections(out):
    text = (out / "RESULTS.md").read_text()
    return [line[len("<!-- section:") : -len(" -->")] for line in text.splitlines() if line.startswith("<!-- section:")]


def test_image_folders_of_the_same_name_get_their_own_sections(tmp_path):
    a = BenchOptions(out=tmp_path, images=tmp_path / "lensA" / "val")
    b = BenchOptions(out=tmp_path, images=tmp_path / "lensB" / "val")
    assert a.section("quality").startswith("quality-val-") and b.section("quality").startswith("quality-val-")
    assert a.section("quality") != b.section("quality")
    assert a.file("crops", ".png") != b.file("crops", ".png")
    assert BenchOptions(out=tmp_path, images=VAL_DIR).section("quality") == "quality"
    assert (
        BenchOptions(out=tmp_path, images=tmp_path / "my photos!").section("quality").startswith("quality-my_photos-")
    )


def test_training_with_images_is_suffixed_and_evaluates_the_trained_n(tmp_path):
    model = _fake_model(tmp_path / "models" / "mine-n2", 2, "sharpen")
    images = _images(tmp_path / "imgs", [(64, 64), (64, 72)])
    out = tmp_path / "out"
    assert main(["bench", "training", "--quick", "--images", str(images), "--models", model, "--out", str(out)]) == 0
    tag = BenchOptions(out=out, images=images).images_tag
    sections = _sections(out)
    assert f"training-{tag}" in sections and f"collab-gain-{tag}" in sections
    assert "training" not in sections and "collab-gain" not in sections
    gain = read_section((out / "RESULTS.md").read_text(), f"collab-gain-{tag}")
    assert "| `mine-n2` | 2 (trained) |" in gain and "| `mine-n2` | 8 |" in gain  # labelled like quality
    assert str(tmp_path) not in gain.split("\n\n", 2)[2]  # the table, past the heading and the how


@pytest.mark.filterwarnings("ignore:No artists with labels")
def test_speed_plot_and_labels_follow_the_others(tmp_path, monkeypatch):
    model = _fake_model(tmp_path / "models" / "mine-n4", 4, "sharpen")
    assert [s.label for s in speed_specs.model_specs([model])] == ["mine-n4"]
    fake = speed.SpeedResult(threads=1, size=64, reps=1, models=[], latency=[], classical=[], matmul={}, skipped=[])
    monkeypatch.setattr(speed, "run_speed", lambda *a, **k: fake)
    images = _images(tmp_path / "imgs", [(64, 64)])
    opts = BenchOptions(out=tmp_path / "out", quick=True, images=images, models=[model], say=lambda s: None)
    opts.out.mkdir()
    bench_speed(opts)
    assert opts.file("latency_vs_params", ".png").is_file()
    assert not (opts.out / "latency_vs_params.png").exists()
    assert _sections(opts.out) == [f"speed-{opts.images_tag}"]


def test_machine_section_only_speaks_of_the_sections_measured(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    earlier = "| `speed` | 4 | per runtime (see the section) | 2020-01-01 00:00 UTC | abc |"
    report.write_section(out / "RESULTS.md", "machine", f"## Machine\n\n| section |\n|---|\n{earlier}\n")
    assert main(["bench", "tune", "--quick", "--out", str(out)]) == 0
    machine = read_section((out / "RESULTS.md").read_text(), "machine")
    assert earlier in machine  # measured by another run: kept as it was
    rows = [line for line in machine.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and any(r.startswith("| `classical-params` | 1 |") for r in rows)
    assert "Threads used by the benchmarks" not in machine


def test_quality_section_records_the_device(tmp_path):
    model = _fake_model(tmp_path / "models" / "mine-n2", 2, "sharpen")
    images = _images(tmp_path / "imgs", [(48, 48)])
    out = tmp_path / "out"
    args = ["--quick", "--images", str(images), "--models", model, "--device", "cpu", "--out", str(out)]
    assert main(["bench", "quality", *args]) == 0
    tag = BenchOptions(out=out, images=images).images_tag
    text = (out / "RESULTS.md").read_text()
    quality = read_section(text, f"quality-{tag}")
    assert "| mine-n2 |" in quality and "n=<card n_trained>)` on cpu" in quality
    # (a checkout without the bench extra adds "; Polyblur not run (see the section)" to the device)
    assert re.search(
        rf"\| `quality-{tag}` \| 1 \| cpu(; Polyblur not run \(see the section\))? \|", read_section(text, "machine")
    )


def test_sixteen_bit_images_keep_their_levels(tmp_path):
    rng = np.random.default_rng(0)
    rgb = (rng.random((40, 40, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), rgb[..., ::-1])  # OpenCV writes BGR
    out = read_srgb(tmp_path / "deep.png")
    assert len(np.unique(out)) > 256
    np.testing.assert_allclose(out, rgb / 65535.0, atol=1e-6)
    assert load_images(tmp_path)[0].srgb.dtype == np.float32


def _crashing_savefig(target, *args, **kwargs):
    """A savefig that writes half a file to its target, then fails."""
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as f:
            f.write(b"half a PNG")
    else:
        target.write(b"half a PNG")
    raise RuntimeError("disk full")


@pytest.mark.parametrize("writer", ["bench", "training"])
def test_a_crash_while_plotting_leaves_the_previous_plot(tmp_path, writer):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = tmp_path / "plot.png"
    path.write_bytes(b"the previous plot")
    fig, _ = plt.subplots()
    fig.savefig = _crashing_savefig
    save = plots._save if writer == "bench" else training_report._save_png
    with pytest.raises(RuntimeError, match="disk full"):
        save(fig, path)
    assert path.read_bytes() == b"the previous plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


def test_classical_params_are_replaced_atomically(tmp_path, monkeypatch):
    params = tmp_path / "classical_params.json"
    params.write_text('{"previous": true}\n')
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (replaced.append(str(dst)), real_replace(src, dst)))
    tune.tune_classical(
        load_images(max_images=1),
        out=params,
        crop=40,
        unsharp_grid={"amount": [1.0], "radius": [1.0]},
        polyblur_stages=[{"alpha": [2.0]}],
        progress=None,
    )
    assert replaced == [str(params)]  # written beside it, then renamed over it
    assert "unsharp" in json.loads(params.read_text())


def test_latency_plot_gives_models_of_one_size_a_column_each(tmp_path, monkeypatch):
    """UNet-TX at N=4 and N=8 share a parameter count; each still gets its own labelled column."""
    from isp_collab.bench.speed import SpeedResult

    models = [
        {"label": "tx-n8", "n": 8, "params": 290_531},
        {"label": "ts-n1", "n": 1, "params": 1_072_131},
        {"label": "tx-n4", "n": 4, "params": 290_531},
        {"label": "tx-n1", "n": 1, "params": 268_803},
    ]
    latency = [
        {"label": m["label"], "kind": rt, "ms_per_mp": 100.0 * (i + 1) * (j + 1), "params": m["params"]}
        for i, m in enumerate(models)
        for j, rt in enumerate(("torch", "onnx-fp32"))
    ]
    latency.append({"label": "tx-n1", "kind": "onnx-int8", "error": "no file", "params": 268_803})
    result = SpeedResult(1, 64, 1, models, latency, [{"label": "unsharp mask", "ms_per_mp": 20.0}], {}, [])
    axes = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (axes.append(fig.axes[0]), real_save(fig, path))[1])
    out = plots.plot_latency_vs_params(result, tmp_path / "latency.png")
    assert out.is_file()
    ticks = [t.get_text().split("\n")[0] for t in axes[0].get_xticklabels()]
    assert ticks == ["tx-n1", "tx-n4", "tx-n8", "ts-n1"]  # by size, then N
    assert sorted(line.get_label() for line in axes[0].lines if not line.get_label().startswith("_")) == [
        "onnx-fp32",
        "torch",
    ]


def test_a_rerun_removes_the_plots_of_its_section_it_no_longer_draws(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("psnr_vs_n.png", "psnr_vs_n-val-1a2b3c.png", "ksim_vs_n.png", "mine.png"):
        (out / name).write_bytes(b"an earlier run's plot")
    # no sharpening model: no PSNR-vs-N plot, so the earlier one would sit beside a section that does not link it
    assert main(["bench", "quality", "--quick", "--models", "--out", str(out), "--overwrite"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "psnr_vs_n.png" not in names and "psnr_vs_n.png" not in (out / "RESULTS.md").read_text()
    for kept in ("psnr_vs_n-val-1a2b3c.png", "ksim_vs_n.png", "mine.png", "psnr_vs_sigma.png", "crops.png"):
        assert kept in names  # other images' and other sections' plots, and the ones this run drew
