"""SIGTERM raised where Python ignores exceptions (a weakref callback) still stops the work (a bench review:
a kill during `bench quality` printed "Exception ignored" and the run went on to write its sections)."""

from __future__ import annotations

import gc
import signal
import weakref

import numpy as np
import pytest

from isp_collab import signals
from isp_collab.models import create_model
from isp_collab.restore import restore


class _Thing:
    pass


def _swallowed_sigterm() -> None:
    """What happens when SIGTERM arrives while a weakref callback runs: its exception is printed and dropped."""
    thing = _Thing()
    keep = weakref.ref(thing, lambda _: signals.raise_terminated(signal.SIGTERM, None))
    del thing
    gc.collect()
    assert keep() is None


def test_a_swallowed_sigterm_stops_the_next_restore_and_only_that(monkeypatch):
    image = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
    net = create_model("unet-tx", n=1).eval()
    monkeypatch.setattr(signals, "_pending", False)
    _swallowed_sigterm()
    with pytest.raises(signals.Terminated):
        restore(image, net, tile=16, overlap=4)
    restore(image, net, tile=16, overlap=4)  # raised once: the next call runs


def test_a_sigterm_swallowed_after_the_last_check_still_exits_143_and_is_then_forgotten(monkeypatch, capsys):
    from isp_collab.cli import main

    monkeypatch.setattr(signals, "_pending", True)  # as after a SIGTERM swallowed late in the command
    assert main(["info"]) == signals.EXIT_SIGTERM
    assert capsys.readouterr().err.strip() == "isp-collab info: terminated"
    signals.check_terminated()  # nothing pending any more
    assert main(["info"]) == 0


def test_a_worker_thread_leaves_the_signal_to_the_main_thread(monkeypatch):
    import threading

    monkeypatch.setattr(signals, "_pending", True)
    raised = []

    def work() -> None:
        try:
            signals.check_terminated()
        except signals.Terminated:
            raised.append(True)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert raised == [] and signals._pending
    with pytest.raises(signals.Terminated):
        signals.check_terminated()
