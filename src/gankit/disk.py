"""Writing files on a machine that may refuse: whole or not at all, and the refusal as one line.

`atomic(path)` gives a hidden temporary name beside `path` to write to; the file is renamed into
place only once complete and removed on any failure, so a full disk, a read-only folder or a
crash never leaves half a file where the user asked for one. `append_line` adds a line to a log
whole or not at all. When the machine refuses a write (no space left, a quota, a read-only file
system, no permission, a folder on the way that is a file), the error is a `DiskError` of one
line naming the path:

    cannot write runs/a/loss.png: no space left on device (1.2 MB free)
    cannot write out/grid.png: out is a file, not a folder

`reason` says whether an exception is such a refusal; anything else is our bug and keeps its
traceback.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gankit.errors import DiskError

_WORDS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for this file system",
    errno.EIO: "input/output error (a failing disk or a lost network mount)",
}
_SPACE = ("no space left on device", "disk quota exceeded", "the write failed")  # where free space helps
# What torch's zip writer raises when a write fails; it hides the OSError, if any, in __context__.
_TORCH_WRITER = ("unexpected pos", "PytorchStreamWriter failed", "file write failed")


def _errno(e: BaseException) -> int | None:
    """The OS error number behind `e`: an OSError's own; the OSError a RuntimeError (torch's zip
    writer) was raised over; the one a safetensors message names ('... (os error 28)')."""
    if isinstance(e, OSError):
        return e.errno
    if type(e).__name__ == "SafetensorError":
        m = re.search(r"os error (\d+)", str(e))
        return int(m.group(1)) if m else None
    if isinstance(e, RuntimeError):
        inner = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
        return _errno(inner) if inner is not None else None
    return None


def _file_on_the_way(path: Path) -> Path | None:
    """The first of `path`'s folders (or `path` itself, when it was to be a folder) that is a file."""
    for p in [*reversed(path.parents), path]:
        if p.exists() and not p.is_dir():
            return p
        if not p.exists():
            return None
    return None


def free_space(path: str | Path) -> int | None:
    """Bytes free to this user where `path` is (or would be), or None when that cannot be read."""
    p = Path(path).absolute()
    while not p.is_dir() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def size(n: int) -> str:
    """Bytes for a person: 512 B, 17.3 kB, 4.2 MB, 1.5 GB (powers of 1000, as `df -H`)."""
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n} B"


def reason(e: BaseException, path: str | Path, needed: int | None = None) -> str | None:
    """Why the machine refused to write `path`, in words, with the free space (and the `needed`
    bytes, when known) where space is the question; None when `e` is not such a refusal."""
    path = Path(getattr(e, "filename", None) or path) if isinstance(e, OSError) else Path(path)
    code = _errno(e)
    blocker = _file_on_the_way(path) if code in (errno.ENOTDIR, errno.EEXIST) else None
    if blocker is not None:
        return f"{blocker} is a file, not a folder"
    why = _WORDS.get(code)
    if why is None and code is None and isinstance(e, RuntimeError) and any(s in str(e) for s in _TORCH_WRITER):
        why = "the write failed"  # torch's writer lost the OSError: the free space tells
    if why is None:
        return None
    if why in _SPACE:
        free = free_space(path)
        if why == "the write failed" and free is not None and needed is not None and free < needed:
            why = "no space left on device"
        amounts = ([f"{size(free)} free"] if free is not None else []) + ([f"{size(needed)} needed"] if needed else [])
        why += f" ({', '.join(amounts)})" if amounts else ""
    return why


def error(e: BaseException, path: str | Path) -> DiskError | None:
    """`e` as the one-line DiskError 'cannot write PATH: WHY', or None when it is not a refusal."""
    if isinstance(e, DiskError):
        return e
    why = reason(e, path)
    return DiskError(f"cannot write {path}: {why}") if why is not None else None


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Within it, a refusal by the machine becomes a one-line DiskError naming `path` (the file the
    user asked for, not a temporary one); anything else passes unchanged."""
    try:
        yield
    except Exception as e:
        err = error(e, path)
        if err is None or err is e:
            raise
        raise err from None


@contextmanager
def atomic(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to (its suffix kept, for writers that go by it);
    renamed to `path` when the block ends cleanly, removed when it does not. A refusal by the
    machine comes out as a one-line DiskError naming `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")
    with naming(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            os.replace(tmp, path)
        except BaseException:  # the failure, or Ctrl-C mid-write: no partial file stays
            remove(tmp)
            raise


def remove(path: Path) -> None:
    """Remove `path` if it is there, quietly: a read-only file system refuses even the removal of
    a file that is not there, and the error being handled is the one to report."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def append_line(path: str | Path, line: str) -> None:
    """Append `line` to `path` whole or not at all: a write cut short (a full disk) is cut back
    off, so the next line does not join a torn one. A refusal is a DiskError naming `path`."""
    data = memoryview(line.encode())
    with naming(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.fstat(fd).st_size
            try:
                while data:
                    data = data[os.write(fd, data):]
            except OSError:
                os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
