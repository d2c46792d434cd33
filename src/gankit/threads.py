"""How many CPU threads torch should use: as many CPUs as this process may actually run on.

torch's default is the machine's core count. In a container with a CPU quota (`docker --cpus 2`
on a 64-core host, a Kubernetes CPU limit) that is far more threads than the process gets, and
oversubscribed OpenMP threads make every matrix multiply slower. gankit caps the thread count at
the CPUs in the affinity mask and at the cgroup quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us`),
unless the user set OMP_NUM_THREADS, which always wins.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cgroup_quota(root: Path | None = None) -> float | None:
    """CPUs allowed by the cgroup's CPU quota (None when there is no quota or no cgroup)."""
    root = root or CGROUP
    try:
        v2 = root / "cpu.max"
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def cpu_budget(root: Path | None = None) -> int:
    """Threads to use: the CPUs this process may run on, capped by the cgroup quota (rounded up)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_quota(root)
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota)))


_ours: str | None = None  # the OMP_NUM_THREADS value apply_cpu_budget set, if it did


def user_threads() -> bool:
    """True when OMP_NUM_THREADS was set by the user, not by `apply_cpu_budget`."""
    value = os.environ.get("OMP_NUM_THREADS")
    return bool(value) and value != _ours


def apply_cpu_budget() -> None:
    """Set the thread count for this process (and the processes it starts) from `cpu_budget`,
    unless the user set OMP_NUM_THREADS."""
    global _ours
    if user_threads():
        return
    n = cpu_budget()
    _ours = os.environ["OMP_NUM_THREADS"] = str(n)  # for torch if not yet imported, and for children
    if "torch" in sys.modules:  # already imported (`import gankit` imports it): set it directly
        sys.modules["torch"].set_num_threads(n)
