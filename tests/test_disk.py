"""gankit.disk: writes whole or not at all; the machine's refusals as one line naming the path."""

import errno
import os
import re
import types

import pytest
from safetensors import SafetensorError

from gankit import disk
from gankit.errors import DiskError, GankitError


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left on device ("),
    (errno.EDQUOT, "disk quota exceeded ("),
    (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"),
])
def test_a_refused_write_is_one_line_naming_the_file_and_leaves_nothing(tmp_path, code, words):
    out = tmp_path / "grid.png"
    with pytest.raises(DiskError) as e:
        with disk.atomic(out) as tmp:
            tmp.write_bytes(b"half an image")
            raise OSError(code, os.strerror(code), str(tmp))  # as the OS names it: the temporary file
    assert str(e.value).startswith(f"cannot write {out}: {words}") and "\n" not in str(e.value)
    assert (" free)" in str(e.value)) == (code in (errno.ENOSPC, errno.EDQUOT))  # free space where it is the question
    assert list(tmp_path.iterdir()) == []  # no output, no temporary


def test_a_folder_on_the_way_that_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("a file")
    for out in (tmp_path / "taken" / "grid.png", tmp_path / "taken" / "deeper" / "grid.png"):
        with pytest.raises(DiskError, match=re.escape(f"cannot write {out}: {tmp_path / 'taken'} is a file, not a folder")):
            with disk.atomic(out) as tmp:
                tmp.write_bytes(b"x")
    assert (tmp_path / "taken").read_text() == "a file"


def test_a_clean_block_renames_into_place_and_keeps_the_suffix(tmp_path):
    out = tmp_path / "sub" / "x.png"
    with disk.atomic(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".") and tmp.suffix == ".png"
        tmp.write_bytes(b"whole")
    assert out.read_bytes() == b"whole" and [p.name for p in out.parent.iterdir()] == ["x.png"]


def test_our_bugs_and_the_users_mistakes_pass_unchanged(tmp_path):
    for exc in (ValueError("a bug"), GankitError("a user's mistake"), RuntimeError("a tensor bug"),
                OSError(errno.ENOENT, "No such file or directory")):
        with pytest.raises(type(exc)) as e:
            with disk.atomic(tmp_path / "x.png") as tmp:
                tmp.write_bytes(b"half")
                raise exc
        assert e.value is exc and not isinstance(e.value, DiskError)
    assert list(tmp_path.iterdir()) == []  # the partial file is removed all the same
    try:  # a one-line error raised over an OSError (read_image's) is not a refusal to write
        try:
            raise OSError(errno.EACCES, "Permission denied")
        except OSError:
            raise GankitError("in.png: unreadable") from None
    except GankitError as e:
        assert disk.reason(e, tmp_path) is None


def _torch_writer_error(inner: BaseException | None) -> RuntimeError:
    """What torch 2.x's zip writer raises when a write fails: a RuntimeError, over the OSError when
    it went through a Python file object, over nothing when it wrote the path itself."""
    try:
        try:
            if inner is not None:
                raise inner
            raise RuntimeError("basic_ios::clear: iostream error")
        except BaseException:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    except RuntimeError as e:
        return e


def test_torchs_writer_and_safetensors_are_read_for_the_reason(tmp_path):
    e = _torch_writer_error(OSError(errno.ENOSPC, "No space left on device"))
    assert disk.reason(e, tmp_path, needed=2_000_000).startswith("no space left on device (")
    assert disk.reason(e, tmp_path, needed=2_000_000).endswith(", 2.0 MB needed)")
    lost = _torch_writer_error(None)  # no errno: the free space against the size it needed decides
    free = disk.free_space(tmp_path)
    assert disk.reason(lost, tmp_path, needed=free + 10**9).startswith("no space left on device (")
    assert disk.reason(lost, tmp_path, needed=1).startswith("the write failed (")
    assert disk.reason(RuntimeError("CUDA error: out of memory"), tmp_path) is None  # not a write
    ro = SafetensorError("Error while serializing: I/O error: Read-only file system (os error 30)")
    assert str(disk.error(ro, tmp_path / "g.safetensors")) == f"cannot write {tmp_path / 'g.safetensors'}: read-only file system"


def test_sizes_for_people():
    assert [disk.size(n) for n in (0, 999, 17_263_424, 3 * 10**9)] == ["0 B", "999 B", "17.3 MB", "3.0 GB"]


def test_append_line_is_whole_or_not_at_all(tmp_path, monkeypatch):
    log = tmp_path / "train.log"
    disk.append_line(log, "first\n")

    def short(fd, data):  # a disk that fills up mid-line: 5 bytes land, then ENOSPC
        os.write(fd, bytes(data[:5]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(disk, "os", types.SimpleNamespace(**{**vars(os), "write": short}))
    with pytest.raises(DiskError, match=re.escape(f"cannot write {log}: no space left on device (")):
        disk.append_line(log, "second line\n")
    monkeypatch.undo()
    assert log.read_text() == "first\n"  # the torn line was cut back off
    disk.append_line(log, "third\n")
    assert log.read_text() == "first\nthird\n"
