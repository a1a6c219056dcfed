"""benchmarks/seed_gain.py: pairing of runs by seed and the t-interval of the gain (fake run logs)."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "seed_gain.py"
spec = importlib.util.spec_from_file_location("seed_gain", SCRIPT)
seed_gain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed_gain)


def _run(folder: Path, curve: list[float]) -> Path:
    folder.mkdir(parents=True)
    lines = [{"step": 0, "val": {"mean_psnr": 30.0}}, {"step": 10, "loss": 0.1}]
    lines += [{"step": 100 * (i + 1), "val": {"mean_psnr": v}} for i, v in enumerate(curve)]
    (folder / "log.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def test_gain_best_and_last_per_seed_and_interval(tmp_path):
    b = [_run(tmp_path / f"s{s}" / "n1", [33.0, 34.0, 33.5]) for s in range(3)]
    r = [_run(tmp_path / f"s{s}" / "n4", [33.0, 34.0 + g, 34.0]) for s, g in enumerate([0.1, 0.2, 0.3])]
    table = seed_gain.family_table("fam", b, r)
    assert "| +0.100 |" in table and "| +0.300 |" in table  # best vs best per seed
    assert table.count("| +0.500 |") == 3  # last validated step: 34.0 - 33.5
    # mean 0.2, sd 0.1, t(0.975, 2) = 4.303 -> half width 0.248
    assert "+0.200 ± 0.100 sd, 95% [-0.048, +0.448]" in table


def test_unequal_families_and_missing_logs_are_errors(tmp_path, refused):
    a = _run(tmp_path / "a", [33.0])
    with refused("2 baseline runs but 1"):
        seed_gain.family_table("fam", [a, a], [a])
    with refused("no log.jsonl"):
        seed_gain.validated(tmp_path / "nothing")
