"""`train`: the training function, read top to bottom.

Setup (device, data, networks, optimisers, the run's own random generators), then
``for step in ...``: the task's step (its D and G updates, EMA), then log, grid, evaluation,
checkpoint, stop. Scalars are read from the device every ``log.every`` steps, not every step, and
that log step is also the one point where data-parallel ranks agree (`Dist.agree`): on the
window's averaged scalars, a stop signal, the time limit and a checkpoint due by the clock.
What a new or resumed run starts from is `gankit.training.rundir`; checkpoints are
`gankit.training.checkpoint` (the format) and `gankit.training.store` (the directory).
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch

from gankit.config import RunConfig
from gankit.errors import DiskError, GankitError, warn
from gankit.util import resolve_device
from gankit.training.artifacts import Artifacts
from gankit.training.checkpoint import pack
from gankit.tasks import get_task
from gankit.training.distributed import Dist
from gankit.training.engine import Engine
from gankit.training.lock import RunLock
from gankit.training.precision import choose as choose_precision
from gankit.training.rundir import Found, check_run_dir, write_config
from gankit.training.safety import StopSignals, all_finite
from gankit.training.profile import StepProfiler
from gankit.training.progress import Progress
from gankit.training.store import CheckpointStore
from gankit.training import tensorboard

class Finished(NamedTuple):
    """How a training call ended (rank 0): the run directory, the step reached, and the signal
    that stopped it early (None when it ran to train.steps)."""

    dir: Path
    step: int
    interrupted: str | None


def train(cfg: RunConfig, out: str | Path, resume: bool = False, force: bool = False,
          loaded: Found | None = None, command: str | None = None) -> Finished | None:
    """Train as `cfg` says, writing the run directory `out`; return how it ended (`Finished`).

    With `resume`, continue the run in `out` from its newest good checkpoint (only
    `train.steps`, `log.*`, `eval.*`, `recover.*` and `device` may differ from the saved config,
    unless `force`); a run killed before its first checkpoint starts again from step 0 of its
    saved config (`gankit.training.rundir`). `loaded`: the (checkpoint, path, damaged files
    skipped) the caller already found with `rundir.resume_point`, so it is not read and verified
    twice. SIGINT/SIGTERM end the run cleanly with a checkpoint (`Finished.interrupted`).
    `command`: the command line that started it, for train.log and the report (default: the
    Python call).

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
          loaded: Found | None = None, command: str | None = None) -> Finished:
    """Rank 0 (or the only process): holds the run directory's lock, checks it, writes it."""
    store = CheckpointStore(out / "checkpoints", keep=cfg.log.keep_last, warn=warn)
    created = not out.exists()
    try:
        with RunLock(out) as lock, StopSignals() as stop:  # the lock first: another trainer may be mid-run
            if lock.took_over:
                warn(f"took over the lock of {out} left by a process that is gone (pid {lock.took_over})")
            try:
                tensorboard.check(cfg.log.tensorboard)  # before anything is written
                found = check_run_dir(out, store, cfg, resume, force, loaded)
            except GankitError as err:
                dist.broadcast(("error", str(err)))  # the other ranks stop too, quietly
                raise
            ckpt = found[0] if found else None
            dist.broadcast(("ok", ckpt))  # other nodes need not see the run directory
            return _train(cfg, out, store, ckpt, stop, dist, found[2] if found else [], command)
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


def _train(cfg: RunConfig, out: Path, store: CheckpointStore | None, ckpt: dict | None, stop: StopSignals,
           dist: Dist, skipped: list[str] = (), command: str | None = None) -> Finished | None:
    # -- setup ------------------------------------------------------------------------------
    device = dist.device(resolve_device(cfg.device))
    task = get_task(cfg.task)
    data = task.load_data(cfg, device, strict=cfg.data.strict)
    main = dist.is_main
    # The forwards' precision, once per run: rank 0 decides (measuring the step if auto asks it to)
    # and every rank follows; a resumed run keeps its checkpoint's.
    left = cfg.train.steps - int(ckpt["step"] if ckpt else 0)
    choice = dist.broadcast(choose_precision(cfg, data, device, task, left, ckpt, dist.world) if main else None)
    e = Engine.build(cfg, data, device, dist=dist, precision=choice.name)
    st, guard = e.st, e.st.guard
    art = Artifacts(out, task.grid(cfg, data, st)) if main else _Silent()
    evaluator = task.evaluator(cfg, data, st, dist)  # .run() -> True on every rank when it improved on .best
    ckpts = _Checkpoints(cfg, store, e, evaluator, dist, art)
    step = ckpts.restore(ckpt, "checkpoint") if ckpt is not None else 0
    init = e.init_from(cfg.train.init) if cfg.train.init and ckpt is None else None  # a fresh run only
    if main:
        write_config(out, cfg)
    art.forget_after(step)  # a resumed run redoes what came after its checkpoint
    _note_setup(art, cfg, task, data, e, choice, dist, device, command, init, skipped)
    art.open_board(cfg, step)  # TensorBoard hides what came after the checkpoint too
    if step == 0:
        art.grid(0)  # the untrained generator: the animation's first frame
        art.preview(task.preview(cfg, data))
    total, every = cfg.train.steps, cfg.log.every
    budget = cfg.train.max_seconds  # seconds of training for this call; 0: none
    bar = Progress(total, step, enabled=cfg.log.progress) if main else _Silent()
    prof = _profiler(cfg, out, device, total - step) if main else None
    window = _Window(st.acc)
    stopping = over = False

    # -- the loop ---------------------------------------------------------------------------
    for net in st.nets.values():
        net.train()
    while step < total:
        e.step(step)  # the task's D and G updates, EMA, schedules (see training.engine)
        if prof is not None:
            prof.step()
        window.steps += 1
        step = st.step = step + 1
        bar.advance()
        # The time limit ends the run as train.steps would: a last log row, grid, evaluation and
        # checkpoint at this step. Alone, a clock read every step stops within a step of the budget;
        # data-parallel ranks take rank 0's clock at log steps.
        over = bool(budget) and (not dist.active or step % every == 0) and window.trained_by_now() >= budget
        log_now = step % every == 0 or step == total or over

        # Non-finite updates in a row: go back to the last good checkpoint. The count lives on the
        # device and is read with the scalars (at log steps), or every step where the guard syncs
        # anyway. The guards of all ranks judged the same averaged losses: they agree as they are.
        if (log_now or not guard.on_device) and guard.consecutive >= cfg.recover.patience:
            step = st.step = ckpts.roll_back(step)
            bar.at(step)
            art.rewind(step)
            window.reset()
            continue

        # Log. The one point where data-parallel ranks agree (`Dist.agree`): on the window's
        # scalars, on a stop signal any rank saw, and on rank 0's clock (time limit, log.ckpt_minutes).
        agreed = {}
        if log_now:
            agreed = dist.agree(st.acc, stop=stop.signame is not None, over=over and main, due=main and ckpts.late())
            row = _log_row(cfg, task, e, window)  # the one host read of the window's scalars
            art.log(row)
            bar.show(row)
            window.reset()
        over, due = agreed.get("over", False), agreed.get("due", False)
        last = step == total or over

        # Grid, evaluation, checkpoint (maintenance: its time is not training time), stop.
        t0 = time.perf_counter()
        if step % cfg.log.grid_every == 0 or last:
            art.grid(step)
            art.plots()
        improved = bool(evaluator) and (step % cfg.eval.every == 0 or last) and evaluator.run(st, step, art, str(out))
        # Ranks stop together, at a log step; alone, at the step the signal came in.
        stopping = agreed.get("stop", False) if dist.active else stop.signame is not None
        if step % cfg.log.ckpt_every == 0 or last or improved or stopping or due:
            ckpts.write(step, best=improved)  # best: a copy of the best checkpoint by the task's evaluation
        window.maintenance += time.perf_counter() - t0
        if stopping or over:
            break

    # -- the end ----------------------------------------------------------------------------
    bar.close()
    if over and not stopping:
        art.note(f"time limit: stopped at step {step} of {total} after {window.trained:.1f} s of training "
                 f"(train.max_seconds {budget:g})", echo=cfg.log.progress)
    if main and step > 0:
        art.note(f"training time: {window.trained:.1f} s for the steps of this call, up to step {step} (evaluation, "
                 "grids and checkpoints excluded)")
    if prof is not None:
        _close_profiler(prof, art, cfg)
    # steps: 0 (or every checkpoint refused for non-finite weights): still leave a loadable run
    if dist.broadcast(not store.last.exists() and ckpts.unwritten is None if main else None):
        ckpts.write(step)
        art.plots()
    art.finish()
    if not main:
        return None
    if ckpts.unwritten is not None:  # the run's last state is not on disk: the exit status must say so
        raise _logged(art, DiskError(
            f"the run ended at step {step} without its final checkpoint: {ckpts.unwritten}; when {store.dir} can be "
            f"written again, continue with: gankit train --resume {out}"))
    return Finished(out, step, (stop.signame or "SIGTERM") if stopping else None)  # SIGTERM: another rank's signal


class _Window:
    """The steps since the last log row: how many, their training time (maintenance, that is grids,
    evaluation and checkpoints, is not training time) and their scalars, summed on the device in
    `acc`. `trained`: the training seconds of the closed windows."""

    def __init__(self, acc: torch.Tensor):
        self.acc, self.trained = acc, 0.0
        self.reset()

    def reset(self) -> None:
        self.acc.zero_()
        self.steps, self.start, self.maintenance = 0, time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.maintenance

    def trained_by_now(self) -> float:
        return self.trained + self.elapsed()

    def close(self) -> float:
        """The window's training seconds, counted into `trained`."""
        elapsed = self.elapsed()
        self.trained += elapsed
        return elapsed


def _log_row(cfg: RunConfig, task, e: Engine, window: _Window) -> dict:
    """The metrics.jsonl row that closes `window`: the task's scalars (read from the device here),
    each optimiser's learning rate as lr_<its name> (a task names its optimisers: lr_g, lr_d for G
    and D), speed, wall time, refused updates so far."""
    st = e.st
    elapsed = window.close()
    row = task.log_row(cfg, st, dict(zip(task.stat_names, window.acc.tolist())), window.steps)
    row.update({f"lr_{name.lower()}": e.lr(name) for name in st.opts})
    row["steps_per_s"] = round(window.steps / max(elapsed, 1e-9), 3)
    row["time"] = round(time.time(), 3)
    if st.guard.total:
        row["nonfinite"] = st.guard.total
    return row


class _Checkpoints:
    """The run's checkpoints as the loop uses them: restore one, write one, roll back to the newest
    after non-finite updates. A state with non-finite weights is never written (it would replace a
    good one); a write the machine refuses (a full disk) is a warning, kept in `unwritten` until a
    later one succeeds. Every rank calls these; rank 0 alone touches the store."""

    def __init__(self, cfg: RunConfig, store: CheckpointStore | None, e: Engine, evaluator, dist: Dist, art):
        self.cfg, self.store, self.e, self.st, self.evaluator, self.dist, self.art = \
            cfg, store, e, e.st, evaluator, dist, art
        self.unwritten: str | None = None  # the machine's refusal of the latest checkpoint
        self.written_at = time.monotonic()  # wall clock of the last checkpoint (log.ckpt_minutes)

    def late(self) -> bool:
        return time.monotonic() - self.written_at >= 60 * self.cfg.log.ckpt_minutes

    def restore(self, ck: dict, where: str) -> int:
        step = self.e.load(ck, where)
        if self.evaluator and self.st.best:
            self.evaluator.best = self.st.best
        return step

    def write(self, step: int, best: bool = False) -> None:
        st, art = self.st, self.art
        if not all_finite(*st.nets.values()):
            _warn(art, f"step {step}: weights are not finite; checkpoint not written")
            return
        if st.guard.consecutive:  # mid-way through refused updates: keep the last clean state
            _warn(art, f"step {step}: checkpoint not written during a run of non-finite updates")
            return
        rngs = self.dist.gather(st.rng_state())  # every rank's own random streams (a collective)
        if self.dist.is_main:
            st.best = self.evaluator.best if self.evaluator else None
            try:
                self.store.save(pack(st, step, rngs))
                self.unwritten, self.written_at = None, time.monotonic()
                art.flush()  # TensorBoard's events up to this checkpoint: what a resume keeps
            except DiskError as err:  # the older checkpoints are intact: train on, try the next one
                self.unwritten = str(err)
                _warn(art, f"step {step}: {err}; training goes on and tries again at the next checkpoint")
            if best and self.unwritten is None:
                try:
                    self.store.save_best({**(st.best or {}), "step": step})
                except DiskError as err:
                    _warn(art, f"step {step}: {err}")
        self.dist.barrier()  # nobody reads checkpoints while rank 0 writes one

    def roll_back(self, step: int) -> int:
        """Reload the newest good checkpoint, scale the learning rates, count the rollback (in
        train.log too); the step it went back to."""
        cfg, st, dist, art = self.cfg, self.st, self.dist, self.art
        bad, rollbacks = st.guard.consecutive, st.rollbacks
        if rollbacks >= cfg.recover.max_rollbacks:
            raise _logged(art, GankitError(
                f"training diverged: {bad} non-finite updates in a row at step {step} after "
                f"{rollbacks} rollbacks (recover.max_rollbacks); lower train.lr_g / train.lr_d, add a "
                f"penalty (reg.gp, reg.r1) or spectral norm, then resume from the last good checkpoint"))
        try:
            found = self.store.load_latest() if dist.is_main else None
        except GankitError:
            found = None
        found = dist.broadcast(found)  # every rank rolls back to rank 0's checkpoint
        if found is None:
            raise _logged(art, GankitError(f"training diverged at step {step} before any checkpoint was written; "
                                           "lower the learning rates or write checkpoints more often (log.ckpt_every)"))
        ckpt, path = found
        back = self.restore(ckpt, str(path))
        st.rollbacks = rollbacks + 1  # the checkpoint's count was older
        f = cfg.recover.lr_factor ** st.rollbacks
        self.e.scale_lrs(f)
        if dist.is_main:
            _warn(art, f"step {step}: {bad} non-finite updates in a row; rolled back to step {back} "
                  f"({path.name}) with learning rates x{f:g}")
        st.guard.consecutive = 0
        return back


def _note_setup(art, cfg: RunConfig, task, data, e: Engine, choice, dist: Dist, device: torch.device,
                command: str | None, init: str | None, skipped: list[str]) -> None:
    """train.log's account of the run before its first step: what started it, its data, how its
    step runs, on what."""
    art.note(f"command: {command or _python_call()}")
    summary, *notes = task.describe_data(data)
    art.note(summary)
    if init:
        art.note(init)
    for line in e.frozen:  # train.freeze_d / freeze_g
        art.note(line)
    for line in notes:  # what loading converted or skipped: the user should see it once
        art.note(line, echo=True)
    for msg in skipped:  # damaged checkpoints skipped on the way in
        art.note(msg)
    art.note(e.describe(), echo=cfg.log.progress)
    art.note(choice.note())
    if "slower" in choice.why:  # an explicit bf16 where it is emulated
        warn(f"{choice.why}; train.precision auto picks fp32 here")
    if device.type == "cpu":
        art.note(f"CPU threads: {torch.get_num_threads()} per process")
    if e.st.batch_gpu:
        _note_accumulation(art, cfg, e.st, dist)
    if dist.active:
        how = ("DistributedDataParallel" if e.ddp else "one flat all-reduce" + (
            " (train.ddp=false)" if not cfg.train.ddp else " (this task runs D more than once per backward)"))
        art.note(f"data-parallel over {dist.world} processes: global batch {cfg.train.batch} = "
                 f"{dist.shard(cfg.train.batch)[1]} per process x {dist.world}; gradients averaged by {how}",
                 echo=cfg.log.progress)


def _note_accumulation(art, cfg: RunConfig, st, dist: Dist) -> None:
    """train.log: how each update's batch is split (docs/accumulation.md), and a warning where
    BatchNorm makes the update differ from the whole batch's (its statistics are per micro-batch)."""
    share, b = dist.shard(cfg.train.batch)[1], st.batch_gpu
    per = f" of the {share} each of {dist.world} processes trains on" if dist.active else ""
    art.note(f"gradient accumulation: each update sums the gradients of {share // b} micro-batches of "
             f"train.batch_gpu = {b}{per} (train.batch = {cfg.train.batch})", echo=cfg.log.progress)
    bn = sorted(n for n, m in st.nets.items() if any(isinstance(x, torch.nn.modules.batchnorm._BatchNorm)
                                                      for x in m.modules()))
    if bn and dist.is_main:
        _warn(art, f"{' and '.join(bn)} {'uses' if len(bn) == 1 else 'use'} BatchNorm, whose statistics are per micro-batch of {b}: the update "
              f"differs from one over the whole batch of {share} (docs/accumulation.md)")


def _profiler(cfg: RunConfig, out: Path, device: torch.device, left: int) -> StepProfiler | None:
    """log.profile: a profiler over that many steps after a warm-up, if the run has them."""
    if not cfg.log.profile:
        return None
    if left < StepProfiler.needed(cfg.log.profile):
        raise GankitError(f"--profile {cfg.log.profile}: needs {StepProfiler.needed(cfg.log.profile)} steps "
                          f"(a {StepProfiler.needed(0)}-step warm-up first); the run has {left} left")
    return StepProfiler(out, cfg.log.profile, device)


def _close_profiler(prof: StepProfiler, art, cfg: RunConfig) -> None:
    table = prof.close()
    if table:
        art.note(f"profile of {cfg.log.profile} steps: {prof.trace} (Perfetto, TensorBoard); top operators "
                 f"in {prof.dir / 'top_ops.txt'}")
        print(table, file=sys.stderr)


class _Silent:
    """What ranks > 0 have instead of Artifacts and the progress bar: nothing is written."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return None


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
