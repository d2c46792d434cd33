"""CPU thread budget: the affinity mask capped by a container's cgroup CPU quota."""

import os
import subprocess
import sys

from gankit.threads import cgroup_quota, cpu_budget


def _cpus():
    return len(os.sched_getaffinity(0))


def test_cgroup_v2_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(tmp_path) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(tmp_path) == 0.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_quota(tmp_path) is None


def test_no_cgroup_or_garbage_means_no_quota(tmp_path):
    assert cgroup_quota(tmp_path / "absent") is None
    (tmp_path / "cpu.max").write_text("lots\n")
    assert cgroup_quota(tmp_path) is None


def test_budget_is_the_quota_rounded_up_when_below_the_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: still one thread
    assert cpu_budget(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{100000 * (_cpus() + 8)} 100000\n")  # above the CPUs: no cap
    assert cpu_budget(tmp_path) == _cpus()
    assert cpu_budget(tmp_path / "absent") == _cpus()


def test_a_quota_below_the_cpus_sets_torch_threads_and_the_environment(tmp_path, monkeypatch):
    import torch

    import gankit.threads as threads

    (tmp_path / "cpu.max").write_text("100000 100000\n")  # one CPU's worth
    monkeypatch.setattr(threads, "CGROUP", tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        threads.apply_cpu_budget()
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        assert not threads.user_threads()  # set by gankit, so --nproc may still split it
    finally:
        torch.set_num_threads(before)


def test_omp_num_threads_wins(monkeypatch):
    import torch

    import gankit.threads as threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    before = torch.get_num_threads()
    threads.apply_cpu_budget()
    assert os.environ["OMP_NUM_THREADS"] == "3" and threads.user_threads()
    assert torch.get_num_threads() == before  # left alone


def test_the_cli_applies_the_budget(tmp_path):
    """A fresh `gankit` process under a one-CPU quota runs torch with one thread, not one per
    core, and passes the budget on to the processes it starts (OMP_NUM_THREADS)."""
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    code = ("import sys; from pathlib import Path; import gankit.threads as t; t.CGROUP = Path(sys.argv[1]); "
            "from gankit.cli import main; main(['presets']); import os, torch; "
            "print('T', torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert "T 1 1" in out
