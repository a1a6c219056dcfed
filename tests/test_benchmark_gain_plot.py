"""benchmarks/gain_plot.py: best checkpoints of run pairs plotted against a setting (fake run logs)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def gain_plot(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports its sibling runs_table
    spec = importlib.util.spec_from_file_location("gain_plot", BENCH / "gain_plot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("runs_table", None)


def _run(folder: Path, curve: list[float]) -> str:
    folder.mkdir(parents=True)
    lines = [{"step": 0, "val": {"mean_psnr": 30.0, "mean_blurry": 30.0}}]
    lines += [{"step": 100 * (i + 1), "val": {"mean_psnr": v, "mean_blurry": 30.0}} for i, v in enumerate(curve)]
    (folder / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return str(folder)


def test_gains_are_best_against_best_in_setting_order(tmp_path, gain_plot):
    points = []
    for x, n1, n4 in (("32", [33.0, 34.0], [34.5, 34.1]), ("16", [32.0, 31.0], [32.1, 32.6])):
        points += ["--point", x, _run(tmp_path / f"n1-{x}", n1), _run(tmp_path / f"n4-{x}", n4)]
    out = tmp_path / "gain.png"
    gains = gain_plot.main([*points, "--xlabel", "patch", "--target", "0.2", "--out", str(out)])
    assert gains == pytest.approx([0.6, 0.5])  # x=16 first: 32.6 - 32.0; x=32: 34.5 - 34.0
    assert Image.open(out).format == "PNG"


def test_a_run_without_validation_is_an_error(tmp_path, gain_plot, refused):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "log.jsonl").write_text(json.dumps({"step": 0, "val": {"mean_psnr": 30.0}}) + "\n")
    with refused("no validation record after step 0"):
        gain_plot.main(["--point", "8", str(empty), str(empty), "--xlabel", "x", "--out", str(tmp_path / "p.png")])
    assert not (tmp_path / "p.png").exists()
