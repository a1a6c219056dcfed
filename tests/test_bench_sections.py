"""What ``isp-collab bench`` sections and plots say: a ``##`` heading each, the images they measured, every
section taken back by a failed run, honest names (torch.mm throughput, families of one recipe), readable crops."""

import cv2
import numpy as np
import pytest
from test_bench_guards import _images
from test_bench_training_section import _trained

import isp_collab.bench.run as bench_run
from isp_collab.bench import plots, sections
from isp_collab.bench.data import BENCH_DIR
from isp_collab.bench.options import BenchOptions
from isp_collab.bench.report import read_section
from isp_collab.cli import main


def _section_names(text):
    return [line[len("<!-- section:") : -len(" -->")] for line in text.splitlines() if line.startswith("<!-- section:")]


@pytest.mark.parametrize("with_images", [False, True])
def test_a_failed_quality_run_takes_back_the_classical_params_section(tmp_path, capsys, monkeypatch, with_images):
    out = tmp_path / "out"
    out.mkdir()
    (out / "RESULTS.md").write_text("<!-- section:notes -->\nmine\n<!-- /section:notes -->\n")
    images = ["--images", str(_images(tmp_path / "imgs", [(120, 120)]))] if with_images else []

    def broken(*args, **kwargs):  # after the quality, classical-params sections are written
        raise ValueError("model.safetensors: corrupted or truncated")

    monkeypatch.setattr(bench_run, "bench_lens", broken)
    assert main(["bench", "quality", "--quick", "--models", *images, "--out", str(out)]) == 2
    assert "corrupted" in capsys.readouterr().err
    assert _section_names((out / "RESULTS.md").read_text()) == ["notes"]
    assert sorted(p.name for p in out.iterdir()) == ["RESULTS.md"]


@pytest.mark.parametrize("action", ["quality", "tune", "kernels"])
def test_the_bookkeeping_lists_every_section_an_action_writes(tmp_path, action):
    from isp_collab.cli.bench import ACTION_ALSO_WRITES, ACTION_SECTIONS

    out = tmp_path / "out"
    assert main(["bench", action, "--quick", *(["--models"] if action == "quality" else []), "--out", str(out)]) == 0
    written = set(_section_names((out / "RESULTS.md").read_text()))
    assert written == {*ACTION_SECTIONS[action], *ACTION_ALSO_WRITES.get(action, ()), "machine"}


def test_every_generated_section_opens_with_its_own_level_two_heading(tmp_path):
    model = _trained(tmp_path / "models" / "m-n2")
    out = tmp_path / "out"
    assert main(["bench", "training", "--quick", "--models", model, "--out", str(out)]) == 0
    assert main(["bench", "quality", "--quick", "--models", model, "--out", str(out)]) == 0
    text = (out / "RESULTS.md").read_text()
    names = _section_names(text)
    assert {"training", "collab-gain", "quality", "lens", "classical-params", "machine"} <= set(names)
    for name in names:
        assert read_section(text, name).startswith("## "), name


def test_the_published_bench_sections_carry_the_generated_headings():
    text = (BENCH_DIR / "RESULTS.md").read_text()
    assert read_section(text, "training").startswith(bench_run.TRAINING_HEADING + "\n\n### sharpen")
    assert read_section(text, "collab-gain").startswith(bench_run.COLLAB_GAIN_HEADING + "\n\n")
    speed = read_section(text, "speed")
    assert f"| achieved GFLOP/s | {sections.MM_COLUMN} |" in speed and "fp32 peak" not in speed


def test_skipped_images_are_named_and_sections_name_the_images_used(tmp_path, capsys):
    images = _images(tmp_path / "imgs", [(120, 120)])
    grey = np.full((120, 120), 128, np.uint8)
    cv2.imwrite(str(images / "grey.png"), grey)
    out = tmp_path / "out"
    assert main(["bench", "quality", "--quick", "--models", "--images", str(images), "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning: skipped 1 greyscale image of" in err[0] and err[0].endswith(": grey.png")
    tag = BenchOptions(out=out, images=images).images_tag
    quality = read_section((out / "RESULTS.md").read_text(), f"quality-{tag}")
    assert f"1 image of `{images}` (`im0`)" in quality and "1 images" not in quality


def test_a_quick_kernels_section_counts_in_the_singular(tmp_path):
    out = tmp_path / "out"
    assert main(["bench", "kernels", "--quick", "--out", str(out)]) == 0
    section = read_section((out / "RESULTS.md").read_text(), "kernel-estimation")
    assert "(circular, 1 seed, mean KSIM)" in section and "1 seeds" not in section
    assert "3 images of Set14 colour + Set5 (`benchmarks/data/val`)" in section


def test_psnr_vs_n_joins_only_models_of_one_recipe(tmp_path, monkeypatch):
    from isp_collab.bench.quality import recipe_families

    a = _trained(tmp_path / "a-n1", n=1)
    b = _trained(tmp_path / "b-n2", n=2)  # a's recipe apart from N
    c = _trained(tmp_path / "c-n2", n=2, lr=2e-3)  # another recipe
    assert recipe_families([a, c, b]) == [[a, b], [c]]
    axes = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (axes.append(fig.axes[0]), real_save(fig, path))[1])
    families = [[(1, 30.0, "a-n1"), (2, 30.5, "b-n2")], [(2, 29.0, "c-n2")]]
    plots.plot_psnr_vs_n(families, {"unsharp mask": 28.0}, tmp_path / "psnr_vs_n.png")
    (ax,) = axes
    curves = [line for line in ax.lines if line.get_label() != "unsharp mask" and len(line.get_xdata()) > 1]
    assert [list(line.get_xdata()) for line in curves] == [[1, 2]]  # only a and b are joined
    assert {t.get_text() for t in ax.texts} == {"a-n1", "b-n2", "c-n2"}  # every point named
    assert "fixed network" not in ax.get_title()


def test_speed_table_compares_with_torch_mm_not_a_peak():
    from isp_collab.bench.speed import SpeedResult

    latency = [{"label": "m", "kind": "onnx-fp32", "ms_per_mp": 10.0, "mp_per_s": 100.0, "peak_rss_mb": 300.0,
                "achieved_gflops": 110.0}]  # fmt: skip
    result = SpeedResult(1, 64, 1, [], latency, [], {"gflops": 95.0, "n": 256}, [])
    text = sections.speed_section(result, None, "x")
    assert "| of torch.mm throughput |" in text and "| 116 % |" in text
    assert "fp32 peak" not in text and "matmul peak" not in text
    assert "torch.mm throughput (fp32, 256², median): 95.0 GFLOP/s" in text


def test_crop_titles_clear_the_images_above(tmp_path, monkeypatch):
    names = ["sharp", "blurry input", "unsharp mask", "Polyblur", "model-a", "model-b", "model-c", "model-d"]
    kept = {n: np.full((160, 160, 3), 0.2 + 0.05 * i, np.float32) for i, n in enumerate(names)}
    figures = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), real_save(fig, path))[1])
    plots.plot_crops(
        kept, "set5/butterfly sigma=2 (centre crop)", tmp_path / "crops.png", 128, dict.fromkeys(names, 30)
    )
    (fig,) = figures
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()  # the figure as saved (closing it detached its canvas)
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == len(names)
    for ax in axes:
        title = ax.title.get_window_extent(renderer)
        for other in axes:
            assert other is ax or not title.overlaps(other.get_window_extent(renderer)), ax.get_title()
    top = fig._suptitle.get_window_extent(renderer)
    assert not any(top.overlaps(ax.title.get_window_extent(renderer)) for ax in axes)


MALFORMED = {
    "unclosed": (
        "<!-- section:a -->\nA\n<!-- section:b -->\nB\n<!-- /section:b -->\n",
        "`<!-- section:b -->` opens inside section a",
    ),
    "never closed": (
        "<!-- section:a -->\nA\n<!-- /section:a -->\n<!-- section:b -->\nB\n",
        "line 4: `<!-- section:b -->` is never closed",
    ),
    "duplicated": (
        "<!-- section:a -->\nA\n<!-- /section:a -->\n<!-- section:a -->\nA2\n<!-- /section:a -->\n",
        "line 4: `<!-- section:a -->` opens section a again (first at line 1)",
    ),
    "stray close": ("<!-- /section:a -->\n", "line 1: `<!-- /section:a -->` closes no open section"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_section_markers_that_do_not_pair_up_are_refused_naming_the_marker(tmp_path, case):
    from isp_collab.bench.report import write_section

    text, message = MALFORMED[case]
    results = tmp_path / "RESULTS.md"
    results.write_text(text)
    with pytest.raises(ValueError, match=f"^{results}: .*{message.replace('(', '.').replace(')', '.')}"):
        write_section(results, "c", "new")
    assert results.read_text() == text


def test_an_unclosed_marker_refuses_a_run_even_with_overwrite(tmp_path, capsys, monkeypatch):
    """An unclosed section would have swallowed every section after it into the one the run replaced."""
    from isp_collab.bench import report

    out = tmp_path / "out"
    out.mkdir()
    text = (
        "<!-- section:kernel-estimation -->\nold\n"  # its closing marker lost in an edit
        "<!-- section:mine -->\nkept\n<!-- /section:mine -->\n"
        "<!-- section:kernel-estimation-x -->\nkept too\n<!-- /section:kernel-estimation-x -->\n"
    )
    (out / "RESULTS.md").write_text(text)
    monkeypatch.setattr(
        bench_run, "bench_kernels", lambda opts: report.write_section(opts.results, "kernel-estimation", "new")
    )
    assert main(["bench", "kernels", "--quick", "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "\n" not in err
        and f"{out / 'RESULTS.md'}: line 3: `<!-- section:mine -->` opens inside section kernel-estimation" in err
    )
    assert (out / "RESULTS.md").read_text() == text and sorted(p.name for p in out.iterdir()) == ["RESULTS.md"]


def test_a_missing_polyblur_is_said_in_the_section_and_the_machine_row(tmp_path, monkeypatch):
    from isp_collab.bench import classical
    from isp_collab.bench.report import read_section

    why = "polyblur is not usable (ModuleNotFoundError: No module named 'polyblur'); install the bench extra"
    monkeypatch.setattr(classical, "polyblur_status", lambda: (False, why))
    assert main(["bench", "quality", "--quick", "--models", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    quality = read_section(text, "quality")
    assert "| Polyblur |" not in quality and f"Polyblur was not run: {why}." in quality
    assert "polyblur: " not in quality  # no tuned parameters claimed for a method that did not run
    row = next(line for line in read_section(text, "machine").splitlines() if line.startswith("| `quality` |"))
    assert "Polyblur not run" in row
