"""capture_stderr: fd 2 is process-wide, so captures from several threads must share it and give it back."""

from __future__ import annotations

import logging
import os
import threading
import time

from isp_collab.native_stderr import capture_stderr


def test_capture_collects_what_is_written_on_fd2_and_gives_fd2_back():
    before = os.fstat(2).st_ino
    lines: list[str] = []
    with capture_stderr(lines):
        os.write(2, b"libpng error: IDAT: CRC error\n")
    assert lines == ["libpng error: IDAT: CRC error"]
    assert os.fstat(2).st_ino == before


def test_captures_from_several_threads_each_get_their_line_and_fd2_comes_back():
    before = os.fstat(2).st_ino
    start = threading.Barrier(4)
    got: dict[int, list[list[str]]] = {}

    errors: list[BaseException] = []

    def work(k: int) -> None:
        start.wait()
        got[k] = []
        try:
            for i in range(50):
                lines: list[str] = []
                with capture_stderr(lines):
                    os.write(2, f"thread {k} call {i}\n".encode())
                    time.sleep(0.0005)  # as a decode does: other threads run meanwhile
                got[k].append(lines)
        except BaseException as e:  # noqa: BLE001 - a thread's exception is only a warning to pytest
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Without the shared redirection a thread restored another's temporary file: fd 2 pointed at a deleted file.
    assert os.fstat(2).st_ino == before
    assert errors == [] and sorted(got) == [0, 1, 2, 3] and all(len(calls) == 50 for calls in got.values())
    for k, calls in got.items():
        for i, lines in enumerate(calls):
            assert f"thread {k} call {i}" in lines  # its own line (others' may be there too: fd 2 is shared)


def test_nested_captures_and_a_failing_body_give_fd2_back():
    before = os.fstat(2).st_ino
    outer: list[str] = []
    inner: list[str] = []
    try:
        with capture_stderr(outer):
            os.write(2, b"a\n")
            with capture_stderr(inner):
                os.write(2, b"b\n")
            raise RuntimeError("decode failed")
    except RuntimeError:
        pass
    assert inner == ["b"] and outer == ["a", "b"]
    assert os.fstat(2).st_ino == before


def test_a_child_forked_during_a_capture_gets_the_real_fd2_back():
    read_end, write_end = os.pipe()
    lines: list[str] = []
    with capture_stderr(lines):
        pid = os.fork()
        if pid == 0:  # the child: where does its fd 2 point now?
            os.write(write_end, str(os.fstat(2).st_ino).encode())
            os._exit(0)
        os.waitpid(pid, 0)
    os.close(write_end)
    child_fd2 = int(os.read(read_end, 64).decode())
    os.close(read_end)
    assert child_fd2 == os.fstat(2).st_ino  # not the parent's temporary capture file


def test_pass_on_hands_other_lines_to_the_real_stderr_once_and_keeps_the_callers_own(capfd):
    """Another thread's log line written while a RAW decode held fd 2 was lost (a third of them in a user's
    test): passed on, it reaches the real fd 2 once, also when two captures overlap (each sees it) and when a block
    fails; the lines the caller keeps (a C library's words about its file) are not passed on."""
    mine = "x.dng: Unexpected end of file"

    def others(line: str) -> bool:
        return line != mine

    first: list[str] = []
    with capture_stderr(first, pass_on=others):
        second: list[str] = []
        with capture_stderr(second, pass_on=others):
            os.write(2, f"someone else's log line\n{mine}\n".encode())
        os.write(2, b"after the inner one\n")
    failed: list[str] = []
    try:
        with capture_stderr(failed, pass_on=others):
            os.write(2, f"{mine}\nwritten meanwhile by a thread\n".encode())
            raise ValueError
    except ValueError:
        pass
    err = capfd.readouterr().err
    assert err.count("someone else's log line") == 1 and err.count("after the inner one") == 1
    assert "written meanwhile by a thread" in err and mine not in err
    assert second == ["someone else's log line", mine]
    assert first == [*second, "after the inner one"] and failed == [mine, "written meanwhile by a thread"]


def test_raw_decodes_in_threads_leave_the_warning_filters_alone(tmp_path):
    """RAW decodes in several threads each swapped the process-wide warning filters (catch_warnings, not thread-safe
    before Python 3.14): 'always' stayed installed for good, and warnings were lost. The decode touches no filter."""
    import warnings

    from test_pipeline_dng import random_mosaic, write_dng

    from isp_collab.pipeline import RawDecode

    path = write_dng(tmp_path / "x.dng", random_mosaic(12), bits=12, matrix=[[3, 10]] * 9)  # singular: it warns
    before = list(warnings.filters)
    done: list[int] = []

    def work() -> None:
        for _ in range(10):
            done.append(RawDecode()(path)[0].size)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 30 and list(warnings.filters) == before
    log = logging.getLogger("tifffile")  # quieted while each thread read the file's structure, then put back
    assert log.propagate and not log.handlers
