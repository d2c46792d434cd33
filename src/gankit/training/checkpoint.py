"""The checkpoint format: one schema, every key it holds, and reading and writing one file.

A checkpoint is plain data: state dicts, optimiser states, the step, random states and the
resolved config, saved with `torch.save` and loaded with ``weights_only=True``, so a file cannot
run code. `pack(st, step)` writes a `gankit.training.state.TrainState` as that data and
`unpack(st, ck)` reads it back; resume, rollback, `gankit.run.Run.load` and `gankit export` all go
through it. `KEYS` lists every key a checkpoint holds (tests/training/test_state.py checks that a
trained run writes exactly these):

    format     "gankit-checkpoint"
    schema     SCHEMA: the layout of this dict; older layouts are migrated on load (`migrate`)
    task       the task that trained it ("generate", "translate", ...)
    step       training steps done
    config     the resolved config (gankit.config.to_dict)
    data       what a loaded model needs to know about its data (shape, classes, vocabulary)
    nets       {name: state dict}                  every trained network
    opts       {name: optimiser state dict}
    scheds     {name: scheduler state dict}         empty when train.lr_schedule is constant
    ema        {name: {"weights": state dict, "updates": n}}
    samplers   {name: sampler state}
    extra      {name: state}                        task-owned (image pools, ...)
    rng        {"z": the shared latent generator, "torch", "aug", "cuda": this process's streams}
    rng_ranks  [each rank's streams, as in rng without "z"]
    precision  "fp32" | "bf16"                       what the forwards ran in (train.precision resolved)
    rollbacks  non-finite rollbacks so far (learning rates x recover.lr_factor ** rollbacks)
    best       the best evaluation so far, with its step; absent until an evaluation improves
    versions   {"gankit": version, "torch": version} that wrote it

Older files, migrated on load: schema 1 (written before the task layer: top-level "G", "D",
"opt_g", ...; every such run trained a generator) and files with the separate file-format
"version" number that schema 2 used to carry beside "schema".
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from gankit import disk
from gankit.config import RunConfig, to_dict
from gankit.errors import GankitError, warn
from gankit.training.distributed import reseed_for_rank
from gankit.version import __version__

FORMAT = "gankit-checkpoint"
SCHEMA = 2

KEYS = ("format", "schema", "task", "step", "config", "data", "nets", "opts", "scheds", "ema", "samplers",
        "extra", "rng", "rng_ranks", "precision", "rollbacks", "best", "versions")
OPTIONAL = ("best",)  # the keys a checkpoint may lack


class Damaged(GankitError):
    """A file that is not a sound checkpoint (truncated, corrupt, not one, or holding code): a
    checkpoint store moves it aside and falls back to an older one. Other errors, such as a schema
    newer than this gankit, are not damage: falling back past a good file would lose steps."""


# -- one file ------------------------------------------------------------------------------------

def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write `state` to `path` atomically (temporary file, fsync, rename): a crash mid-write
    leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            torch.save(_stamped(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        disk.remove(tmp)
    return path


def _stamped(state: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "schema": SCHEMA, **state}


class _Counter:
    """A file that keeps nothing and counts what is written to it: a checkpoint's size, no disk."""

    n = 0

    def write(self, b) -> int:
        self.n += len(b)
        return len(b)

    def flush(self) -> None:
        pass


def checkpoint_size(state: dict[str, Any]) -> int | None:
    """The bytes `save_checkpoint` writes for `state` (None if it cannot be serialised)."""
    sink = _Counter()
    try:
        torch.save(_stamped(state), sink)
    except Exception:  # noqa: BLE001 - only a number for a message; the real failure is reported
        return None
    return sink.n


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint in `path`, in this version's schema (an older one is migrated); one line
    for a file that is missing, damaged, not a checkpoint, or written by a newer gankit."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a page long; its one useful line names the refused global.
        lines = [ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln]
        why = lines[0].split(" was not")[0].removeprefix("WeightsUnpickler error: ") if lines else "unsafe content"
        raise Damaged(f"{path}: refused to load: the file holds code or objects, not plain "
                          f"checkpoint data ({why})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise Damaged(f"{path}: corrupt or truncated checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise Damaged(f"{path}: not a gankit checkpoint")
    return migrate(ckpt, str(path))


def migrate(ck: dict, where: str = "checkpoint") -> dict:
    """`ck` in this version's schema: older layouts are converted (a current one is returned as
    it is); a newer schema is refused with what to do."""
    schema = ck.get("schema", 1)
    if schema > SCHEMA:
        raise GankitError(f"{where}: checkpoint schema {schema} was written by a newer gankit "
                          f"(this one reads schema <= {SCHEMA}); upgrade gankit")
    if schema == 1:
        ck = _from_schema_1(ck, where)
    if "version" in ck:  # schema 2 carried a file-format version (always 1) beside its schema
        ck = {k: v for k, v in ck.items() if k != "version"}
    return ck


def _from_schema_1(ck: dict, where: str) -> dict:
    """Schema 1 (before the task layer) kept one generator and one discriminator at the top level,
    and a config without a `task` key. Such a config resolves to the default task, so that is the
    task the migrated checkpoint records: the two always agree."""
    if "G" not in ck or "D" not in ck:
        raise GankitError(f"{where}: schema-1 checkpoint without networks; it cannot be loaded")
    new = {k: v for k, v in ck.items() if k not in (
        "G", "D", "opt_g", "opt_d", "sched_g", "sched_d", "ema", "sampler")}
    new.update(schema=SCHEMA, task=RunConfig.task, nets={"G": ck["G"], "D": ck["D"]},
               opts={"G": ck.get("opt_g"), "D": ck.get("opt_d")},
               scheds={"G": ck["sched_g"], "D": ck["sched_d"]} if "sched_g" in ck else {},
               ema={"G": {"weights": ck["ema"]["G"], "updates": ck["ema"]["updates"]}} if "ema" in ck else {},
               samplers={"x": ck["sampler"]} if "sampler" in ck else {}, extra={})
    return new


# -- a training state as data, and back ----------------------------------------------------------

def pack(st, step: int, rng_ranks: list[dict] | None = None) -> dict[str, Any]:
    """`st` (a TrainState) at `step` as checkpoint data. `rng_ranks`: every rank's random streams
    (gathered by the trainer); this process's alone by default."""
    rng = st.rng_state()
    return {
        "format": FORMAT, "schema": SCHEMA, "task": st.task.name, "step": step, "config": to_dict(st.cfg),
        "data": st.data.meta(),
        "nets": {n: m.state_dict() for n, m in st.nets.items()},
        "opts": {n: o.state_dict() for n, o in st.opts.items()},
        "scheds": {n: s.state_dict() for n, s in st.scheds.items()},
        "ema": {n: e.state_dict() for n, e in st.emas.items()},
        "samplers": {n: s.state_dict() for n, s in st.samplers.items()},
        "extra": {n: x.state_dict() for n, x in st.extra.items()},
        "rng": {**rng, "z": st.gens["z"].get_state()}, "rng_ranks": rng_ranks or [rng],
        "precision": st.precision, "rollbacks": st.rollbacks, **({"best": st.best} if st.best else {}),
        "versions": {"gankit": __version__, "torch": str(torch.__version__)},
    }


def unpack(st, ck: dict, where: str = "checkpoint") -> int:
    """Load checkpoint data (any schema this version reads) into `st`, a live TrainState; returns
    its step."""
    ck = migrate(ck, where)
    if ck["task"] != st.task.name:
        raise GankitError(f"{where}: a {ck['task']!r} checkpoint cannot continue a {st.task.name!r} run")
    st.task.check_resume(st.data, ck.get("data") or {}, where)
    for n, m in st.nets.items():
        m.load_state_dict(ck["nets"][n])
    fresh = {n: _hparams(o, st.scheds.get(n)) for n, o in st.opts.items()}  # what this config asks for
    for n, o in st.opts.items():
        saved, here = (sum(len(g["params"]) for g in s["param_groups"]) for s in (ck["opts"][n], o.state_dict()))
        if saved != here:  # the frozen set changed (a forced resume): the moments would not line up
            raise GankitError(f"{where}: optimiser {n} updated {saved} tensors there and would update {here} here; "
                              "train.freeze_d / freeze_g must stay as the run had them")
        _load_optimizer(o, ck["opts"][n], st.device)
    for n, s in st.scheds.items():
        s.load_state_dict(ck["scheds"][n])
    for n, o in st.opts.items():
        _adopt_hparams(n, o, st.scheds.get(n), fresh[n])
    for n, e in st.emas.items():
        e.load_state_dict(ck["ema"][n])
    for n, s in st.samplers.items():
        s.load_state_dict(ck["samplers"][n])
    for n, x in st.extra.items():
        x.load_state_dict(ck["extra"][n])
    st.rollbacks = int(ck.get("rollbacks", 0))
    st.best = ck.get("best")
    rng = ck["rng"]
    st.gens["z"].set_state(rng["z"])
    ranks = ck.get("rng_ranks") or [rng]
    st.step = step = int(ck["step"])
    if st.dist.active and len(ranks) != st.dist.world:  # another world size: fresh per-rank streams
        reseed_for_rank(st.cfg.seed, st.dist.rank, step, st.device)
        return step
    own = ranks[st.dist.rank] if st.dist.rank < len(ranks) else rng
    torch.set_rng_state(own["torch"])
    if st.device.type == "cuda" and "cuda" in own:
        torch.cuda.set_rng_state_all(own["cuda"])
    if st.gens.get("aug") is not None and "aug" in own:  # absent when written by a CUDA-graph run
        st.gens["aug"].set_state(own["aug"])
    return step


def _hparams(opt: torch.optim.Optimizer, sched) -> list[dict]:
    """Per parameter group: the base learning rate (before the schedule's multiplier) and the other
    settings a config sets (betas, eps, weight decay, momentum), as floats."""
    out = []
    for i, g in enumerate(opt.param_groups):
        base = sched.base_lrs[i] if sched is not None else g["lr"]
        out.append({"lr": float(base), **{k: g[k] for k in ("betas", "eps", "weight_decay", "momentum", "alpha")
                                          if k in g}})
    return out


def _adopt_hparams(name: str, opt: torch.optim.Optimizer, sched, want: list[dict]) -> None:
    """A forced resume with a changed train.lr_g / lr_d / betas: the loaded optimiser (and schedule)
    would carry on at the checkpoint's settings, silently ignoring the user's new ones. Put this
    config's settings in, with the learning rate at the schedule's current multiplier, and say so.
    An unchanged config (every plain resume, every rollback) changes nothing here."""
    have = _hparams(opt, sched)
    if have == want:
        return
    changed = []
    for i, (g, h, w) in enumerate(zip(opt.param_groups, have, want)):
        for k, v in w.items():
            if k != "lr" and h.get(k) != v:
                g[k] = v
                changed.append(f"{k} {h.get(k)} -> {v}")
        if h["lr"] != w["lr"]:
            changed.append(f"lr {h['lr']:g} -> {w['lr']:g}")
            lr = w["lr"]
            if sched is not None:
                sched.base_lrs[i] = w["lr"]
                g["initial_lr"] = w["lr"]
                lr = w["lr"] * sched.lr_lambdas[i](sched.last_epoch)
            if isinstance(g["lr"], torch.Tensor):  # a captured step reads its rate from this tensor
                g["lr"].fill_(lr)
            else:
                g["lr"] = lr
    if sched is not None:
        sched._last_lr = [float(g["lr"]) for g in opt.param_groups]
    warn(f"resumed with a changed config: optimiser {name} now uses {'; '.join(dict.fromkeys(changed))} "
         "(the checkpoint's moments are kept)")


def _load_optimizer(opt: torch.optim.Optimizer, state: dict, device: torch.device) -> None:
    """Load an optimiser state written by any step mode: a captured step needs its learning rate
    as a device tensor (filled in place by the schedule), an eager one a float."""
    opt.load_state_dict(state)
    capturable = bool(opt.defaults.get("capturable"))
    for group in opt.param_groups:
        lr = float(group["lr"])
        group["lr"] = torch.tensor(lr, device=device) if capturable else lr
