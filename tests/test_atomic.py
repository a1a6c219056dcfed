"""isp_collab.atomic: the one writer every layer uses (images, checkpoints, sidecars, reports)."""

from __future__ import annotations

import os
import stat

import pytest

from isp_collab.atomic import OutputError, atomic_path, atomic_write_bytes, atomic_write_text


def test_atomic_path_replaces_only_on_success(tmp_path):
    dst = tmp_path / "sub" / "state.bin"
    with atomic_path(dst) as tmp:
        assert tmp.parent == dst.parent and tmp != dst
        tmp.write_bytes(b"first")
    assert dst.read_bytes() == b"first"
    with pytest.raises(RuntimeError), atomic_path(dst) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert dst.read_bytes() == b"first"
    assert sorted(p.name for p in dst.parent.iterdir()) == ["state.bin"]  # no temporary file left


def test_atomic_path_interrupt_leaves_nothing(tmp_path):
    dst = tmp_path / "state.bin"
    with pytest.raises(KeyboardInterrupt), atomic_path(dst) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_mode(tmp_path):
    dst = tmp_path / "ck.pt"
    with atomic_path(dst, mode=0o640) as tmp:
        tmp.write_bytes(b"x")
    assert stat.S_IMODE(dst.stat().st_mode) == 0o640
    with atomic_path(tmp_path / "plain.txt") as tmp:  # mkstemp's 0600 is not what a user expects
        tmp.write_bytes(b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o666 & ~umask


def test_atomic_write_text_replaces_only_when_asked_and_refuses_folders(tmp_path):
    dst = tmp_path / "card.json"
    atomic_write_text(dst, "one")
    atomic_write_text(dst, "two", overwrite=True)
    assert dst.read_text() == "two"
    with pytest.raises(OutputError, match="output exists"):
        atomic_write_text(dst, "three")
    with pytest.raises(OutputError, match="is a folder"):
        atomic_write_bytes(tmp_path, b"x", overwrite=True)
    assert dst.read_text() == "two"


def test_atomic_path_errors_are_one_line_naming_the_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    bad = r"afile/ck\.pt: cannot create output, .*afile is not a folder"
    with pytest.raises(OutputError, match=bad), atomic_path(tmp_path / "afile" / "ck.pt"):
        pass
    (tmp_path / "adir.pt").mkdir()
    with pytest.raises(OutputError, match=r"adir\.pt: is a folder"), atomic_path(tmp_path / "adir.pt"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.pt", "afile"]
