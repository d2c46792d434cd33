"""The run directory's policy: what a new run may write into, and what a resumed run continues from.

A new run needs a directory that holds no run. A resumed run continues from its newest good
checkpoint, or, when it stopped before writing one, from step 0 of its saved config.yaml; with
neither it is refused. Its config may differ from the saved one only in how long the run trains and
what it writes (`RESUMABLE_CHANGES`), unless forced. `resume_config` (behind `gankit.api.resume`)
and the trainer both ask `resume_point`, so the two cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gankit.config import RunConfig, apply_overrides, from_dict, to_dict
from gankit.errors import GankitError, warn
from gankit.training.store import CheckpointStore

# Config keys that may change when a run is resumed: how long it runs, what it writes, and how the
# same maths is laid out on the machine: the micro-batch (a smaller GPU), where the images are read
# from and by how many workers (the batches are the same either way).
RESUMABLE_CHANGES = ("train.steps", "train.max_seconds", "log.", "eval.", "recover.", "device", "train.batch_gpu",
                     "data.load", "data.memory_budget", "data.workers", "data.prefetch")

Found = tuple[dict, Path, list[str]]  # (checkpoint, its path, one line per damaged file skipped)


def resume_point(out: Path, store: CheckpointStore) -> Found | None:
    """What `out` continues from: its newest good checkpoint, or None when it has none but has its
    config.yaml (a run stopped before its first checkpoint). Anything else is not a run directory."""
    if store.dir.is_dir() and store.candidates():
        ckpt, path = store.load_latest()
        return ckpt, path, list(store.fallbacks)
    if (out / "config.yaml").is_file():
        return None
    raise GankitError(f"--resume {out}: no checkpoint in {store.dir} and no config.yaml; is this a run directory?")


def resume_config(run_dir: str | Path, overrides: list[str] | None = None) -> tuple[RunConfig, Found | None]:
    """(config, `resume_point`) to continue `run_dir`: the config of the newest good checkpoint, or
    the saved config.yaml when the run stopped before its first checkpoint; with `overrides`
    ("train.steps=2000", ...) applied."""
    out = Path(run_dir)
    if not out.is_dir():
        raise GankitError(f"--resume {out}: no such run directory")
    found = resume_point(out, CheckpointStore(out / "checkpoints"))
    cfg = from_dict(found[0]["config"], origin=str(found[1])) if found else read_config(out / "config.yaml")
    return (apply_overrides(cfg, overrides) if overrides else cfg), found


def check_run_dir(out: Path, store: CheckpointStore, cfg: RunConfig, resume: bool, force: bool,
                  found: Found | None = None) -> Found | None:
    """What the run in `out` starts from (None: step 0), once `out` may be written: a new run needs
    a directory that holds no run; a resumed one a config that matches the saved one. `found`:
    the caller's `resume_point`, so that checkpoints are not read and verified twice."""
    if not resume:
        if (out / "config.yaml").exists() or (store.dir.is_dir() and store.candidates()):
            raise GankitError(f"{out} already holds a run; continue it with --resume {out}, or choose another --out")
        return None
    found = found or resume_point(out, store)
    if found is None:
        _same_config(read_config(out / "config.yaml"), cfg, out, force)
        warn(f"--resume {out}: no checkpoint was written before the run stopped; starting from step 0 of its "
             "config.yaml")
        return None
    _same_config(from_dict(found[0]["config"], origin=str(found[1])), cfg, out, force)
    return found


def read_config(path: Path) -> RunConfig:
    """The resolved config a run directory saved."""
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GankitError(f"{path}: unreadable config ({str(e).splitlines()[0]})") from None
    return from_dict(d if isinstance(d, dict) else {}, origin=str(path))


def write_config(out: Path, cfg: RunConfig) -> None:
    """Save the resolved config with the run (config.yaml)."""
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _same_config(old: RunConfig, new: RunConfig, out: Path, force: bool) -> None:
    diffs = _config_diffs(old, new)
    if diffs and not force:
        raise GankitError(f"--resume {out}: config differs from the run's: {'; '.join(diffs)} "
                          f"(only train.steps, log.*, eval.*, recover.*, device, train.batch_gpu, "
                          f"data.load/memory_budget/workers/prefetch may change; "
                          f"--force to resume anyway)")


def _config_diffs(old: RunConfig, new: RunConfig) -> list[str]:
    def flat(d: dict, prefix: str = "") -> dict:
        items = {}
        for k, v in d.items():
            items.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return items

    a, b = flat(to_dict(old)), flat(to_dict(new))
    free = RESUMABLE_CHANGES
    if old.train.lr_schedule != "constant":  # the schedule is laid out over train.steps
        free = tuple(k for k in free if k != "train.steps")
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a
            if a[k] != b[k] and not k.startswith(free) and k != "preset"]
