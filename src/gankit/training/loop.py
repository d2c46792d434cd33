"""`train`: the training function, read top to bottom.

Setup (device, data, networks, optimisers, the run's own random generators), then
``for step in ...``: n_critic D updates, one G update, the EMA update, then maintenance every so
many steps (log, sample grid, checkpoint). Scalars are read from the device every ``log.every``
steps, not every step.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
import yaml

from gankit.config import RunConfig, from_dict, to_dict
from gankit.errors import DiskError, GankitError, warn
from gankit.util import resolve_device
from gankit.training.artifacts import Artifacts
from gankit.training.checkpoint import CheckpointStore
from gankit.tasks import get_task
from gankit.training.distributed import Dist
from gankit.training.engine import Engine
from gankit.training.lock import RunLock
from gankit.training.precision import choose as choose_precision
from gankit.training.safety import StopSignals, all_finite
from gankit.training.profile import StepProfiler
from gankit.training.progress import Progress

# Config keys that may change when a run is resumed: how long it runs and what it writes.
_RESUMABLE_CHANGES = ("train.steps", "train.max_seconds", "log.", "eval.", "recover.", "device")


class Finished(NamedTuple):
    """How a training call ended (rank 0): the run directory, the step reached, and the signal
    that stopped it early (None when it ran to train.steps)."""

    dir: Path
    step: int
    interrupted: str | None


def train(cfg: RunConfig, out: str | Path, resume: bool = False, force: bool = False,
          loaded: tuple[dict, Path, list[str]] | None = None, command: str | None = None) -> Finished | None:
    """Train as `cfg` says, writing the run directory `out`; return how it ended (`Finished`).

    With `resume`, continue the run in `out` from its newest good checkpoint (only
    `train.steps`, `log.*`, `eval.*`, `recover.*` and `device` may differ from the saved config,
    unless `force`); a run killed before its first checkpoint starts again from step 0 of its
    saved config. `loaded`: the (checkpoint, path, damaged files skipped) the caller
    already read with `CheckpointStore.load_latest`, so it is not read and verified twice. SIGINT/SIGTERM end the
    run cleanly with a checkpoint (`Finished.interrupted`). `command`: the command line that
    started it, for train.log and the report (default: the Python call).

    Under torchrun (WORLD_SIZE > 1) every process calls this; they train data-parallel
    (`gankit.training.distributed`) and rank 0 alone writes `out` and returns the Run (None elsewhere).
    """
    out = Path(out)
    dist = Dist.from_env(resolve_device(cfg.device))
    clean = False
    try:
        run = _follow(cfg, out, dist) if not dist.is_main else _lead(cfg, out, resume, force, dist, loaded, command)
        clean = True
        return run
    except RuntimeError as err:
        if not dist.active or isinstance(err, GankitError):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GankitError(f"rank {dist.rank}: the job lost one of its {dist.world} processes ({first}); "
                          f"the checkpoints in {out / 'checkpoints'} are intact: continue with --resume {out}") from err
    finally:
        dist.close(clean)


def _lead(cfg: RunConfig, out: Path, resume: bool, force: bool, dist: Dist,
          loaded: tuple[dict, Path, list[str]] | None = None, command: str | None = None) -> Finished:
    """Rank 0 (or the only process): holds the run directory's lock, checks it, writes it."""
    store = CheckpointStore(out / "checkpoints", keep=cfg.log.keep_last, warn=warn)
    created = not out.exists()
    try:
        with RunLock(out) as lock, StopSignals() as stop:  # the lock first: another trainer may be mid-run
            if lock.took_over:
                warn(f"took over the lock of {out} left by a process that is gone (pid {lock.took_over})")
            try:
                ckpt = _check_run_dir(out, store, cfg, resume, force, loaded)
            except GankitError as err:
                dist.broadcast(("error", str(err)))  # the other ranks stop too, quietly
                raise
            dist.broadcast(("ok", ckpt))  # other nodes need not see the run directory
            return _train(cfg, out, store, ckpt, stop, dist, loaded, command)
    except GankitError:
        if created and out.is_dir() and not any(out.iterdir()):  # a mistake leaves nothing behind
            out.rmdir()
        raise


def _follow(cfg: RunConfig, out: Path, dist: Dist) -> None:
    """Ranks > 0: train with rank 0's verdict and checkpoint, write nothing."""
    with StopSignals() as stop:
        verdict, payload = dist.broadcast(None)
        if verdict == "error":
            raise SystemExit(2)  # rank 0 prints the message
        _train(cfg, out, None, payload, stop, dist)
    return None


class _Silent:
    """What ranks > 0 have instead of Artifacts and the progress bar: nothing is written."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return None


def _train(cfg: RunConfig, out: Path, store: CheckpointStore | None, ckpt: dict | None, stop: StopSignals,
           dist: Dist, loaded: tuple | None = None, command: str | None = None) -> Finished | None:
    # -- setup ------------------------------------------------------------------------------
    device = dist.device(resolve_device(cfg.device))
    task = get_task(cfg.task)
    data = task.load_data(cfg, device, strict=cfg.data.strict)
    main = dist.is_main
    # The forwards' precision, once per run: rank 0 decides (measuring the step if auto asks it to)
    # and every rank follows; a resumed run keeps its checkpoint's.
    choice = choose_precision(cfg, data, device, task, cfg.train.steps - int(ckpt["step"] if ckpt else 0), ckpt,
                              dist.world) if main else None
    choice = dist.broadcast(choice) if dist.active else choice
    e = Engine.build(cfg, data, device, dist=dist, precision=choice.name)
    st, guard = e.st, e.st.guard
    art = Artifacts(out, task.grid(cfg, data, st)) if main else _Silent()
    evaluator = task.evaluator(cfg, data, st, dist)

    def restore(ck: dict, where: str) -> int:
        step = e.load(ck, where)
        if evaluator and st.best:
            evaluator.best = st.best
        return step

    unwritten = None  # the machine's refusal of the latest checkpoint (a full disk); None once one is written

    def checkpoint(done: int, best: bool = False) -> bool:
        """Write a checkpoint (and with `best`, a copy as best.pt) unless the weights went non-finite
        (never overwrite a good one). One the machine refuses is a warning, and the next is tried."""
        nonlocal unwritten
        if not all_finite(*st.nets.values()):
            _warn(art, f"step {done}: weights are not finite; checkpoint not written")
            return False
        if guard.consecutive:  # mid-way through refused updates: keep the last clean state
            _warn(art, f"step {done}: checkpoint not written during a run of non-finite updates")
            return False
        rngs = dist.gather(st.rng_state())  # every rank's own random streams (a collective)
        written = True
        if main:
            st.best = evaluator.best if evaluator else None
            s = st.state_dict(done)
            s["rng_ranks"] = rngs
            try:
                store.save(s)
                unwritten = None
            except DiskError as err:  # the older checkpoints are intact: train on, try the next one
                unwritten, written = str(err), False
                _warn(art, f"step {done}: {err}; training goes on and tries again at the next checkpoint")
            if written and best:
                try:
                    store.save_best({**(st.best or {}), "step": done})
                except DiskError as err:
                    _warn(art, f"step {done}: {err}")
        dist.barrier()  # nobody reads checkpoints while rank 0 writes one
        return written

    step = restore(ckpt, "checkpoint") if ckpt is not None else 0
    init = e.init_from(cfg.train.init) if cfg.train.init and ckpt is None else None  # a fresh run only
    if main:
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        art.note(f"command: {command or _python_call()}")
        summary, *notes = task.describe_data(data)
        art.note(summary)
        if init:
            art.note(init)
        for line in notes:  # what loading converted or skipped: the user should see it once
            art.note(line, echo=True)
        for msg in (loaded[2] if loaded else store.fallbacks):  # damaged checkpoints skipped on the way in
            art.note(msg)
    if main and (out / "metrics.jsonl").exists():
        art.forget_after(step)  # a resumed run redoes what came after its checkpoint
    if step == 0:
        art.grid(0)  # the untrained generator: the animation's first frame
        art.preview(task.preview(cfg, data))
    total = cfg.train.steps
    bar = Progress(total, step, enabled=cfg.log.progress) if main else _Silent()
    art.note(e.describe(), echo=cfg.log.progress)
    art.note(choice.note())
    if "slower" in choice.why:  # an explicit bf16 where it is emulated
        warn(f"{choice.why}; train.precision auto picks fp32 here")
    if device.type == "cpu":
        art.note(f"CPU threads: {torch.get_num_threads()} per process")
    if dist.active:
        art.note(f"data-parallel over {dist.world} processes: global batch {cfg.train.batch} = "
                 f"{dist.shard(cfg.train.batch)[1]} per process x {dist.world}; gradients averaged by "
                 f"{'DistributedDataParallel' if e.ddp else 'one flat all-reduce' + (' (train.ddp=false)' if not cfg.train.ddp else ' (this task runs D more than once per backward)')}",
                 echo=cfg.log.progress)
    prof = None
    if cfg.log.profile and main:
        if total - step < StepProfiler.needed(cfg.log.profile):
            raise GankitError(f"--profile {cfg.log.profile}: needs {StepProfiler.needed(cfg.log.profile)} steps "
                              f"(a {StepProfiler.needed(0)}-step warm-up first); the run has {total - step} left")
        prof = StepProfiler(out, cfg.log.profile, device)
    window, t_window, t_maint = 0, time.perf_counter(), 0.0
    t_ckpt = time.monotonic()  # wall clock of the last checkpoint (log.ckpt_minutes)
    interrupted = None
    budget = cfg.train.max_seconds  # seconds of training for this call; 0: none
    trained = 0.0  # training seconds of this call's closed log windows (maintenance excluded)

    # -- the loop ---------------------------------------------------------------------------
    for net in st.nets.values():
        net.train()
    while step < total:
        e.step(step)  # the task's D and G updates, EMA, schedules (see training.engine)
        if prof is not None:
            prof.step()
        window += 1
        step += 1
        st.step = step
        bar.advance()
        # The time limit ends the run as train.steps would: a last log row, grid, evaluation and
        # checkpoint at this step. Data-parallel ranks must agree, so there rank 0 decides at log
        # steps; alone, every step (a clock read) stops within one step of the budget.
        over = False
        if budget and (not dist.active or step % cfg.log.every == 0):
            over = trained + time.perf_counter() - t_window - t_maint >= budget
            over = bool(dist.broadcast(over if main else None)) if dist.active else over
        last = step == total or over
        log_now = step % cfg.log.every == 0 or last

        # 3. Non-finite updates in a row: go back to the last good checkpoint. The count lives on
        # the device; it is read when the scalars are (every log.every steps), or every step
        # when the guard syncs anyway (optimisers without a fused found_inf).
        if (log_now or not guard.on_device) and guard.consecutive >= cfg.recover.patience:
            step = _roll_back(cfg, store, restore, e, step, dist, art)
            st.step = step
            bar.bar.n = step
            st.acc.zero_()
            window, t_window, t_maint = 0, time.perf_counter(), 0.0
            continue

        # 4. Maintenance: log, grid, evaluation, checkpoint.
        due = False  # a checkpoint by wall clock, decided at log steps so that every rank agrees
        if log_now:
            dist.mean_(st.acc)  # every rank's share of the window
            elapsed = time.perf_counter() - t_window - t_maint
            trained += elapsed
            sums = dict(zip(task.stat_names, st.acc.tolist()))  # the one host sync per log window
            row = task.log_row(cfg, st, sums, window)
            row["lr_g"] = e.lr(next(iter(st.opts)))
            row["steps_per_s"] = round(window / max(elapsed, 1e-9), 3)
            row["time"] = round(time.time(), 3)
            if guard.total:
                row["nonfinite"] = guard.total
            art.log(row)
            bar.show(row)
            st.acc.zero_()
            window, t_window, t_maint = 0, time.perf_counter(), 0.0
            late = time.monotonic() - t_ckpt >= 60 * cfg.log.ckpt_minutes
            due = bool(dist.broadcast(late if main else None)) if dist.active else late
        t0 = time.perf_counter()
        if step % cfg.log.grid_every == 0 or last:
            art.grid(step)
            art.plots()
        improved = False
        if evaluator and (step % cfg.eval.every == 0 or last):
            improved = evaluator.run(st, step, art, str(out))
        # Ranks stop together: a signal seen by any rank counts at the next log step.
        stopping = (dist.any(stop.signame is not None) if log_now else False) if dist.active \
            else stop.signame is not None
        if step % cfg.log.ckpt_every == 0 or last or improved or stopping or due:
            if checkpoint(step, best=improved):  # best: a copy of the best checkpoint by the task's evaluation so far
                t_ckpt = time.monotonic()
        t_maint += time.perf_counter() - t0
        if stopping:
            interrupted = stop.signame or "SIGTERM"  # another rank's signal
            break
        if over:
            art.note(f"time limit: stopped at step {step} of {total} after {trained:.1f} s of training "
                     f"(train.max_seconds {budget:g})", echo=cfg.log.progress)
            break
    bar.close()
    if main and step > 0:
        art.note(f"training time: {trained:.1f} s for the steps of this call, up to step {step} (evaluation, "
                 "grids and checkpoints excluded)")
    if prof is not None:
        table = prof.close()
        if table:
            art.note(f"profile of {cfg.log.profile} steps: {prof.trace} (Perfetto, TensorBoard); top operators "
                     f"in {prof.dir / 'top_ops.txt'}")
            print(table, file=sys.stderr)
    # steps: 0 (or every checkpoint refused for non-finite weights): still leave a loadable run
    if dist.broadcast(not store.last.exists() and unwritten is None if main else None):
        checkpoint(step)
        art.plots()
    art.finish()
    if not main:
        return None
    if unwritten is not None:  # the run's last state is not on disk: the exit status must say so
        raise _logged(art, DiskError(f"the run ended at step {step} without its final checkpoint: {unwritten}; when "
                                     f"{store.dir} can be written again, continue with: gankit train --resume {out}"))
    return Finished(out, step, interrupted)


def _warn(art, msg: str) -> None:
    """A warning for the terminal and for train.log (the report's warnings box)."""
    warn(msg)
    art.note(f"warning: {msg}")


def _logged(art, err: GankitError) -> GankitError:
    """`err`, written to train.log too: the CLI prints it, the report shows why the run ended."""
    art.note(f"error: {err}")
    return err


def _python_call() -> str:
    """What started a run that was not given its command line: the Python program and its arguments."""
    return "python " + shlex.join(sys.argv) + "  (gankit.train)"


def _roll_back(cfg: RunConfig, store: CheckpointStore | None, restore, e: Engine, step: int,
               dist: Dist, art) -> int:
    """Reload the newest good checkpoint, scale the learning rates, count the rollback (in
    train.log too, through `art`)."""
    st = e.st
    bad, rollbacks = st.guard.consecutive, st.rollbacks
    if rollbacks >= cfg.recover.max_rollbacks:
        raise _logged(art, GankitError(
            f"training diverged: {bad} non-finite updates in a row at step {step} after "
            f"{rollbacks} rollbacks (recover.max_rollbacks); lower train.lr_g / train.lr_d, add a "
            f"penalty (reg.gp, reg.r1) or spectral norm, then resume from the last good checkpoint"))
    try:
        found = store.load_latest() if dist.is_main else None
    except GankitError:
        found = None
    found = dist.broadcast(found)  # every rank rolls back to rank 0's checkpoint
    if found is None:
        raise _logged(art, GankitError(f"training diverged at step {step} before any checkpoint was written; "
                                       "lower the learning rates or write checkpoints more often (log.ckpt_every)"))
    ckpt, path = found
    back = restore(ckpt, str(path))
    st.rollbacks = rollbacks + 1  # the checkpoint's count was older
    f = cfg.recover.lr_factor ** st.rollbacks
    e.scale_lrs(f)
    if dist.is_main:
        _warn(art, f"step {step}: {bad} non-finite updates in a row; rolled back to step {back} "
              f"({path.name}) with learning rates x{f:g}")
    st.guard.consecutive = 0
    return back


def _check_run_dir(out: Path, store: CheckpointStore, cfg: RunConfig, resume: bool, force: bool,
                   loaded: tuple[dict, Path] | None = None) -> dict | None:
    """The checkpoint to continue from (None: start at step 0), after checking that `out` may be
    written: a new run needs a fresh directory; a resumed one a config that matches."""
    if resume:
        if loaded is None and (not store.dir.is_dir() or not store.candidates()):
            saved = out / "config.yaml"
            if not saved.is_file():
                raise GankitError(f"--resume {out}: no checkpoint in {store.dir} and no config.yaml; "
                                  "is this a run directory?")
            _same_config(read_config(saved), cfg, out, force)
            warn(f"--resume {out}: no checkpoint was written before the run stopped; "
                 f"starting from step 0 of its config.yaml")
            return None
        ckpt, path = (loaded or store.load_latest())[:2]
        _same_config(from_dict(ckpt["config"], origin=str(path)), cfg, out, force)
        return ckpt
    if (out / "config.yaml").exists() or (store.dir.is_dir() and store.candidates()):
        raise GankitError(f"{out} already holds a run; continue it with --resume {out}, "
                          "or choose another --out")
    return None


def read_config(path: Path) -> RunConfig:
    """The resolved config a run directory saved."""
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GankitError(f"{path}: unreadable config ({str(e).splitlines()[0]})") from None
    return from_dict(d if isinstance(d, dict) else {}, origin=str(path))


def _same_config(old: RunConfig, new: RunConfig, out: Path, force: bool) -> None:
    diffs = _config_diffs(old, new)
    if diffs and not force:
        raise GankitError(f"--resume {out}: config differs from the run's: {'; '.join(diffs)} "
                          f"(only train.steps, log.*, eval.*, recover.* and device may change; "
                          f"--force to resume anyway)")


def _config_diffs(old: RunConfig, new: RunConfig) -> list[str]:
    def flat(d: dict, prefix: str = "") -> dict:
        items = {}
        for k, v in d.items():
            items.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return items

    a, b = flat(to_dict(old)), flat(to_dict(new))
    free = _RESUMABLE_CHANGES
    if old.train.lr_schedule != "constant":  # the schedule is laid out over train.steps
        free = tuple(k for k in free if k != "train.steps")
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a
            if a[k] != b[k] and not k.startswith(free) and k != "preset"]
