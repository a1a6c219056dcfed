"""Batches drawn by worker processes (train.workers / --workers): seeded by step, exact on resume."""

import re

import pytest
import torch
from test_training import TINY, tiny

from isp_collab.cli import main
from isp_collab.models import load_model
from isp_collab.training import train
from isp_collab.training.checkpoint import load_checkpoint
from isp_collab.training.loader import step_seed, training_batches
from isp_collab.training.tasks import build_task


def _batches(workers: int, start: int, end: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    r = tiny()
    gen = torch.Generator().manual_seed(0)
    return list(
        training_batches(build_task(r), 2, gen, workers=workers, seed=r.train.seed, rank=0, start=start, end=end)
    )


def test_step_seeds_differ_by_step_rank_and_seed():
    seeds = {step_seed(s, r, t) for s in range(3) for r in range(3) for t in range(50)}
    assert len(seeds) == 3 * 3 * 50 and all(0 <= s < 2**63 for s in seeds)


def test_any_number_of_workers_draws_the_same_batches_by_step():
    one, two = _batches(1, 0, 5), _batches(2, 0, 5)
    later = _batches(2, 3, 5)  # a resumed run at step 3 draws the batches of steps 3 and 4
    assert len(one) == len(two) == 5
    for (b1, s1), (b2, s2) in zip(one, two, strict=True):
        assert torch.equal(b1, b2) and torch.equal(s1, s2)
    for (b1, _), (b2, _) in zip(one[3:], later, strict=True):
        assert torch.equal(b1, b2)
    assert not torch.equal(one[0][0], one[1][0])  # steps draw different batches


def test_workers_resume_exactly_with_another_worker_count(tmp_path):
    def run(workers: int, out: str, **kw) -> None:
        r = tiny(6)
        r.train.workers = workers
        train(r, tmp_path / out, run_dir=tmp_path / f"run-{out}", progress=False, **kw)

    run(2, "a")
    run(2, "b", stop_after=3)
    run(1, "b", resume=True)
    a = load_checkpoint(tmp_path / "run-a" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "run-b" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    assert load_model(tmp_path / "b").card["batches"] == "by step, in worker processes"


def test_resume_refuses_switching_between_the_two_ways_of_drawing(tmp_path):
    r = tiny(4)
    train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, stop_after=2)
    r.train.workers = 2
    reason = "train.workers: 0 -> 2 (batches drawn in the training process, now by worker processes, by step)"
    with pytest.raises(ValueError, match=re.escape(reason)):
        train(r, tmp_path / "m", run_dir=tmp_path / "r", progress=False, resume=True)


@pytest.mark.parametrize(
    "line,reason",
    [("workers = -1", "train.workers must be >= 0"), ("seed = -1", "train.seed must be in 0..4294967295")],
)
def test_negative_workers_or_seed_are_one_line_errors(tmp_path, capsys, monkeypatch, line, reason):
    monkeypatch.chdir(tmp_path)  # the default --out and --run-dir land here, if anywhere
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("[train]\n", f"[train]\n{line}\n"))
    assert main(["train", str(bad), "--run-dir", str(tmp_path / "r"), "--out", str(tmp_path / "m")]) == 2
    assert reason in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", str(TINY), "--workers", "-1"])
    assert e.value.code == 2 and "must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()
