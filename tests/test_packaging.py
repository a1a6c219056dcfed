"""A regular (non-editable) install carries the shipped weights and the benchmark set."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from isp_collab import shipped

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_path_prefers_the_checkout_then_the_installed_copy(tmp_path, monkeypatch):
    checkout, installed = tmp_path / "repo", tmp_path / "site" / "isp_collab" / "_shipped"
    (installed / "models").mkdir(parents=True)
    (checkout / "models").mkdir(parents=True)
    monkeypatch.setattr(shipped, "REPO_ROOT", checkout)
    monkeypatch.setattr(shipped, "INSTALLED_ROOT", installed)
    assert shipped.shipped_path("models") == installed / "models"  # no pyproject.toml: not a checkout
    (checkout / "pyproject.toml").write_text("")
    assert shipped.shipped_path("models") == checkout / "models"
    assert shipped.shipped_path("benchmarks/data") == checkout / "benchmarks/data"  # neither: the checkout's name


def _tracked_copy(dest: Path) -> Path:
    """The checkout's tracked files copied to ``dest``: a wheel built there leaves no build/ or egg-info in the
    checkout, and no stale build/lib of the checkout (a deleted module) reaches the wheel."""
    import shutil

    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode:
        pytest.skip("not a git checkout: cannot list the files a wheel is built from")
    for name in listed.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_wheel_ships_models_and_benchmark_set_and_loads_the_default_model(tmp_path):
    source = _tracked_copy(tmp_path / "source")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(source),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    if build.returncode and "No module named pip" in build.stderr:
        pytest.skip("pip is not available to build a wheel")
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("isp_collab-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    for weights in (ROOT / "models").glob("*/model.safetensors"):
        assert f"isp_collab/_shipped/models/{weights.parent.name}/model.safetensors" in names
    assert "isp_collab/_shipped/benchmarks/data/levin09.npz" in names
    assert "isp_collab/_shipped/benchmarks/classical_params.json" in names
    code = (
        "import isp_collab, isp_collab.models.weights as w, isp_collab.bench.data as d;"
        "w.load_model(w.DEFAULT_MODEL); print(isp_collab.__file__); print(len(d.list_images()))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ISP_COLLAB_MODELS", "PYTHONPATH")}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env={**env, "PYTHONPATH": str(site)}
    )
    assert run.returncode == 0, run.stderr
    where, images = run.stdout.split()
    assert Path(where).is_relative_to(site) and int(images) > 0
    # bench publishes into a checkout's benchmarks/ by default; installed, it asks for a folder
    bench = subprocess.run(
        [sys.executable, "-m", "isp_collab", "bench", "quality"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(site)},
    )
    assert bench.returncode == 2 and "pass --out DIR (or --quick)" in bench.stderr, bench.stderr
    assert not (site / "benchmarks").exists()
