"""A resumed run's log is the log of the run it continues (one record per step and validation, the same
gradient norms), an interrupt sent to the whole process group still checkpoints, and --init's model can stay
the best."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from isp_collab.training import load_recipe, train
from isp_collab.training.checkpoint import load_checkpoint
from isp_collab.training.resume import trim_log

TINY = Path(__file__).resolve().parents[1] / "train" / "tiny.toml"


def tiny(steps: int, **train_settings):
    r = load_recipe(TINY)
    r.train.steps = steps
    for key, value in train_settings.items():
        setattr(r.train, key, value)
    return r


def records(run: Path) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "elapsed"}
        for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())
        if "event" not in r
    ]


def test_ctrl_c_during_a_logged_steps_update_keeps_its_record_and_the_resumed_log_is_the_whole_runs(
    tmp_path, monkeypatch
):
    """The held Ctrl-C acted after the step counted but before its log line: step 10's record was lost for good;
    and the first record after a resume averaged the gradient norms since the resume only."""
    recipe = dict(steps=20, val_every=10, ckpt_every=5)
    train(tiny(**recipe), tmp_path / "a", run_dir=tmp_path / "ra", progress=False)
    real, calls = torch.optim.Adam.step, {"n": 0}

    def step_then_ctrl_c(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 10:  # inside the update: held until the step is whole
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(**recipe), tmp_path / "b", run_dir=tmp_path / "rb", progress=False)
    monkeypatch.setattr(torch.optim.Adam, "step", real)
    assert load_checkpoint(tmp_path / "rb" / "last.pt")["step"] == 10
    train(tiny(**recipe), tmp_path / "b", run_dir=tmp_path / "rb", progress=False, resume=True)
    assert records(tmp_path / "rb") == records(tmp_path / "ra")


def test_what_the_log_holds_past_the_checkpoint_is_dropped_on_resume(tmp_path):
    """A kill -9 after step 130's record, the checkpoint at 120; a Ctrl-C while step 120's validation was kept as
    best, before the checkpoint said it was done: both were logged twice after --resume."""
    log = tmp_path / "log.jsonl"
    lines = [{"event": "start"}, {"step": 110, "loss": 0.1}, {"step": 120, "loss": 0.1}, {"step": 120, "val": {}}]
    lines += [{"step": 130, "loss": 0.1}]
    log.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 14')  # a line torn by the kill
    trim_log(log, 120, validated=120)
    assert [json.loads(x) for x in log.read_text().splitlines()] == lines[:4]
    trim_log(log, 120, validated=110)  # its validation is done again on resume
    assert [json.loads(x) for x in log.read_text().splitlines()] == lines[:3]
    before = log.stat().st_mtime_ns
    trim_log(log, 120, validated=110)
    assert log.stat().st_mtime_ns == before  # nothing to drop: left as it is


def test_the_model_a_run_starts_from_with_init_can_stay_the_best(tmp_path):
    """Fine-tuning at a learning rate that wrecks the model shipped its wreck (6 dB), 'best' among the steps
    trained, where the model it started from scored 28 dB."""
    train(tiny(4), tmp_path / "start", run_dir=tmp_path / "r0", progress=False)
    start = records(tmp_path / "r0")[-1]["val"]["mean_psnr"]
    train(
        tiny(4, lr=0.5, warmup=1), tmp_path / "tuned", run_dir=tmp_path / "r1", progress=False, init=tmp_path / "start"
    )
    card = json.loads((tmp_path / "tuned" / "card.json").read_text())
    assert records(tmp_path / "r1")[0] == {"step": 0, "val": records(tmp_path / "r1")[0]["val"]}
    assert max(r["val"]["mean_psnr"] for r in records(tmp_path / "r1")[1:] if "val" in r) < start
    assert card["best_step"] == 0


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_sigterm_to_the_process_group_with_workers_still_checkpoints(tmp_path):
    """Slurm's scancel and systemd signal the whole group: the batch workers died first and the trainer's
    checkpoint failed on their deaths (up to ckpt_every steps lost, a traceback or a wrong error)."""
    cmd = [sys.executable, "-m", "isp_collab", "train", str(TINY), "--steps", "100000", "--workers", "2"]
    cmd += ["--out", str(tmp_path / "m"), "--run-dir", str(tmp_path / "r"), "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "r" / "log.jsonl"
    deadline = time.monotonic() + 60
    while not (log.is_file() and '"loss"' in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, err
    said = [line for line in err.splitlines() if line.startswith("interrupted at step")]
    assert len(said) == 1 and "Traceback" not in err, err
    assert said[0].startswith(f"interrupted at step {load_checkpoint(tmp_path / 'r' / 'last.pt')['step']}:")


def test_a_second_ctrl_c_during_the_checkpoint_says_which_step_is_kept(tmp_path, monkeypatch, capsys):
    """It said only 'interrupted', with last.pt older than the step it stopped at."""
    from test_training import acting_at_batch

    from isp_collab.training import trainer as trainer_mod

    state = {"stopping": False}
    real_save = trainer_mod.save_checkpoint

    def stop():
        state["stopping"] = True
        raise KeyboardInterrupt

    def save(path, payload):
        if state["stopping"] and path.name == "last.pt":
            raise KeyboardInterrupt  # the second Ctrl-C, while the interrupt's checkpoint is written
        return real_save(path, payload)

    monkeypatch.setattr(trainer_mod, "build_task", acting_at_batch(5, stop))
    monkeypatch.setattr(trainer_mod, "save_checkpoint", save)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(8), tmp_path / "m", run_dir=tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    assert "interrupted at step 4 while its checkpoint was written: not written;" in err, err
    assert f"{tmp_path / 'r' / 'last.pt'} holds step 4" in err  # (ckpt_every = 1: the step's own periodic one)
    assert load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 4
