"""`RunLock`: one trainer per run directory.

Two trainers writing the same run directory would interleave checkpoints, metrics and sample
grids. A trainer holds ``RUN/.lock`` while it runs: a small JSON file naming its pid, host and
start time, created atomically (``O_CREAT | O_EXCL``). A lock left behind by a process that has
died on this host is stale and is taken over; a corrupt or empty lock file counts as stale too.
A lock held by a live process, or by any process on another host (whose liveness we cannot
check), is refused with a one-line `GankitError` saying who holds it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from types import TracebackType

from gankit.errors import GankitError

LOCK_NAME = ".lock"
# After replacing a stale lock, wait this long before re-reading it: a second trainer taking
# over the same stale lock at the same moment then shows up as a different token, and one of
# the two backs off. Takeovers are rare, so the delay costs nothing in practice.
_TAKEOVER_SETTLE_S = 0.05
# An unparseable lock file younger than this may still be being written; older, it is corrupt.
_YOUNG_S = 1.0


class RunLock:
    """Guards a run directory while a trainer uses it.

        with RunLock(out) as lock:
            if lock.took_over:
                log(f"took over a stale lock left by pid {lock.took_over}")
            ...train...
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.took_over: int | None = None  # pid named by the stale lock we replaced (None: none, or unreadable)
        self.took_over_corrupt = False  # the replaced lock file could not be parsed
        self._token: str | None = None  # ours while we hold the lock

    @property
    def held(self) -> bool:
        return self._token is not None

    def acquire(self) -> RunLock:
        """Take the lock, or raise `GankitError` naming the live process that holds it."""
        if self.held:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "token": token}
        data = (json.dumps(record) + "\n").encode()
        waited = False
        for _ in range(10):  # each pass either succeeds, raises, or saw the file change under it
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                self._token = token
                return self
            raw = _read(self.path)
            if raw is None:  # released between our open and our read: try to create it again
                continue
            holder = _parse(raw)
            if holder is None and not waited:
                # An empty or partial file may be a trainer between its O_EXCL create and its
                # write: give a young one a moment to fill in before calling it corrupt.
                waited = True
                age = time.time() - _mtime(self.path)
                if age < _YOUNG_S:
                    time.sleep(min(_YOUNG_S - max(age, 0.0), _YOUNG_S))
                    continue
            if holder is not None and not self._is_stale(holder):
                raise GankitError(self._in_use_message(holder))
            if self._take_over(raw, data, token):
                self.took_over = holder["pid"] if holder else None
                self.took_over_corrupt = holder is None
                self._token = token
                return self
        # Only reachable when other processes keep replacing the file; not a user's mistake
        # that we can describe better, but still one line.
        raise GankitError(f"could not lock {self.run_dir}: {self.path} keeps changing; "
                          "is another trainer starting in the same directory?")

    def release(self) -> None:
        """Remove the lock file if it is still ours (a takeover by someone else leaves it alone)."""
        if not self.held:
            return
        raw = _read(self.path)
        holder = _parse(raw) if raw is not None else None
        if holder is not None and holder["pid"] == os.getpid() and holder.get("token") == self._token:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self._token = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _is_stale(holder: dict) -> bool:
        """A lock on this host whose process is gone. Another host's lock is never stale to us."""
        return holder["host"] == socket.gethostname() and not _pid_alive(holder["pid"])

    def _take_over(self, stale: bytes, data: bytes, token: str) -> bool:
        """Replace the stale lock (`stale`, its bytes as read) with ours; False when another
        process changed the file first (the caller then looks at the new holder)."""
        tmp = self.run_dir / f"{LOCK_NAME}.{os.getpid()}.{token}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if _read(self.path) != stale:  # someone released, took over or re-created it meanwhile
                return False
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        time.sleep(_TAKEOVER_SETTLE_S)
        now = _read(self.path)
        mine = _parse(now) if now is not None else None
        return mine is not None and mine.get("token") == token

    def _in_use_message(self, holder: dict) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["started"]))
        return (f"{self.run_dir} is in use by another trainer (pid {holder['pid']} on {holder['host']}, "
                f"since {since}); wait for it to finish, or delete {self.path} if that process is gone")


def _read(path: Path) -> bytes | None:
    """The lock file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _parse(raw: bytes) -> dict | None:
    """The lock record, or None when the file is not one (empty, truncated, garbage)."""
    try:
        d = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not (isinstance(d, dict) and type(d.get("pid")) is int and d["pid"] > 0
            and isinstance(d.get("host"), str) and isinstance(d.get("started"), (int, float))):
        return None
    return d


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OverflowError:  # not a pid this OS can have
        return False
    return True
