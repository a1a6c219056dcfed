"""isp_collab.atomic: the one writer every layer uses (images, checkpoints, sidecars, reports)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

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


def test_atomic_write_files_replaces_nothing_when_one_write_fails(tmp_path, monkeypatch):
    """An image and its comparison are one output: a full disk on the second left the first replaced alone."""
    import isp_collab.atomic as atomic

    out, cmp = tmp_path / "out.png", tmp_path / "out_compare.png"
    out.write_bytes(b"old image")
    real = atomic._staged

    def full_disk_on_the_compare(p, data):
        if p == cmp:
            raise OutputError(f"{p}: cannot write (No space left on device)")
        return real(p, data)

    monkeypatch.setattr(atomic, "_staged", full_disk_on_the_compare)
    with pytest.raises(OutputError, match="out_compare.png: cannot write"):
        atomic.atomic_write_files({out: b"new image", cmp: b"crop"}, overwrite=True)
    assert out.read_bytes() == b"old image" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    monkeypatch.setattr(atomic, "_staged", real)
    assert atomic.atomic_write_files({out: b"new image", cmp: b"crop"}, overwrite=True) == [out, cmp]
    assert (out.read_bytes(), cmp.read_bytes()) == (b"new image", b"crop")


def test_atomic_write_files_removes_what_it_created_when_a_rename_fails(tmp_path):
    """Without --overwrite the second file appearing meanwhile stops the pair: the first is not left behind."""
    from isp_collab.atomic import atomic_write_files

    out, cmp = tmp_path / "a.png", tmp_path / "b.png"
    real_link = os.link

    def racing_link(src, dst):
        if Path(dst) == cmp:
            cmp.write_bytes(b"someone else's")
        return real_link(src, dst)

    import unittest.mock

    with unittest.mock.patch("os.link", racing_link), pytest.raises(OutputError, match="b.png: output exists"):
        atomic_write_files({out: b"1", cmp: b"2"})
    assert not out.exists() and cmp.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png"]  # no temporary files left
