import json
import os
import signal
import socket
import subprocess
import sys
import time
import types

import pytest

from gankit.errors import GankitError
from gankit.training.lock import RunLock


def write_lock(run_dir, pid, host=None, started=None, old=True):
    """A lock file as a trainer would leave it; `old` backdates it past the young-file grace."""
    path = run_dir / ".lock"
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                "started": started if started is not None else time.time()}))
    if old:
        backdate(path)
    return path


def backdate(path, seconds=60):
    t = time.time() - seconds
    os.utime(path, (t, t))


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_acquire_writes_record_and_release_removes_it(tmp_path):
    run_dir = tmp_path / "run"  # created by acquire when missing
    lock = RunLock(run_dir)
    lock.acquire()
    rec = json.loads((run_dir / ".lock").read_text())
    assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname()
    assert abs(rec["started"] - time.time()) < 60
    assert lock.took_over is None
    lock.release()
    assert not (run_dir / ".lock").exists()
    lock.release()  # twice is harmless


def test_context_manager_releases_on_error(tmp_path):
    with pytest.raises(ValueError):
        with RunLock(tmp_path):
            assert (tmp_path / ".lock").exists()
            raise ValueError
    assert not (tmp_path / ".lock").exists()


def test_second_lock_on_held_dir_refuses_with_who_and_what_to_do(tmp_path):
    with RunLock(tmp_path):
        second = RunLock(tmp_path)
        with pytest.raises(GankitError) as e:
            second.acquire()
        msg = str(e.value)
        assert msg.startswith(f"{tmp_path} is in use by another trainer (pid {os.getpid()} on "
                              f"{socket.gethostname()}, since ")
        assert msg.endswith(f"); wait for it to finish, or delete {tmp_path / '.lock'} if that process is gone")
        assert "\n" not in msg
        second.release()  # not held: must not remove the first one's file
        assert (tmp_path / ".lock").exists()
    assert not (tmp_path / ".lock").exists()


def test_live_pid_refuses_and_shows_local_start_time(tmp_path):
    started = time.mktime((2024, 3, 5, 14, 7, 9, 0, 0, -1))
    write_lock(tmp_path, os.getpid(), started=started)
    with pytest.raises(GankitError, match=r"since 2024-03-05 14:07:09\)"):
        RunLock(tmp_path).acquire()


def test_lock_from_another_host_is_never_taken_over(tmp_path):
    write_lock(tmp_path, dead_pid(), host="some-other-host.invalid")
    with pytest.raises(GankitError, match=r"on some-other-host\.invalid"):
        RunLock(tmp_path).acquire()


def test_dead_pid_is_taken_over_and_release_leaves_no_file(tmp_path):
    pid = dead_pid()
    write_lock(tmp_path, pid)
    lock = RunLock(tmp_path)
    with lock:
        assert lock.took_over == pid
        rec = json.loads((tmp_path / ".lock").read_text())
        assert rec["pid"] == os.getpid()
    assert not (tmp_path / ".lock").exists()
    assert not list(tmp_path.iterdir())  # no temp files left behind either


@pytest.mark.parametrize("content", ["", "{not json", '{"pid": "12"}', "[1, 2]",
                                     '{"pid": -5, "host": "h", "started": 0}'])
def test_corrupt_lock_file_is_taken_over(tmp_path, content):
    path = tmp_path / ".lock"
    path.write_text(content)
    backdate(path)
    lock = RunLock(tmp_path)
    lock.acquire()
    assert lock.took_over is None and lock.took_over_corrupt
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not path.exists()


def test_young_empty_lock_is_given_time_to_be_written(tmp_path, monkeypatch):
    """An empty file may be a trainer between its create and its write: not stale yet. acquire
    waits until it is _YOUNG_S old, reads it again and finds the other trainer's record. The lock
    module's clock and sleep are the test's: on the wall clock a busy machine could age the file
    past _YOUNG_S before acquire looks, or hold back the writer past the wait, and the test
    failed with nothing wrong."""
    from gankit.training import lock as lock_module

    path = tmp_path / ".lock"
    path.write_text("")
    now = path.stat().st_mtime + 0.1  # the file is 0.1 s old when acquire looks
    waits = []

    def sleep(seconds):  # the other trainer writes its record during the wait
        waits.append(seconds)
        path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": now}))

    monkeypatch.setattr(lock_module, "time", types.SimpleNamespace(
        time=lambda: now, sleep=sleep, strftime=time.strftime, localtime=time.localtime))
    with pytest.raises(GankitError, match="in use by another trainer"):
        RunLock(tmp_path).acquire()
    assert waits == [pytest.approx(lock_module._YOUNG_S - 0.1)]


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path):
    lock = RunLock(tmp_path)
    lock.acquire()
    write_lock(tmp_path, os.getpid())  # e.g. replaced by someone else's takeover: another token
    lock.release()
    assert (tmp_path / ".lock").exists()


HOLDER = """
import sys, time
from pathlib import Path
from gankit.training.lock import RunLock
RunLock(Path(sys.argv[1])).acquire()
print("ready", flush=True)
time.sleep(120)
"""


def test_lock_held_by_live_process_refuses_until_it_is_killed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(GankitError, match=f"pid {proc.pid} on"):
            RunLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    lock = RunLock(tmp_path)  # the killed holder never released: its lock is stale now
    with lock:
        assert lock.took_over == proc.pid
    assert not (tmp_path / ".lock").exists()
