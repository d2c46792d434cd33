"""`train`: the training function, read top to bottom.

Setup (device, data, networks, optimisers, the run's own random generators), then
``for step in ...``: n_critic D updates, one G update, the EMA update, then maintenance every so
many steps (log, sample grid, checkpoint). Scalars are read from the device every ``log.every``
steps, not every step.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
import yaml

from gankit import __version__
from gankit.config import RunConfig, from_dict, to_dict
from gankit.data import load_data
from gankit.errors import GankitError, warn
from gankit.run import Run, resolve_device
from gankit.training.artifacts import Artifacts
from gankit.training.checkpoint import CheckpointStore
from gankit.training.distributed import Dist, reseed_for_rank
from gankit.training.engine import Engine
from gankit.training.evaluation import InTrainingEval
from gankit.training.lock import RunLock
from gankit.training.safety import NonFiniteGuard, StopSignals, all_finite
from gankit.training.progress import Progress
from gankit.training.step import D_STATS, G_STATS, Objective

# Config keys that may change when a run is resumed: how long it runs and what it writes.
_RESUMABLE_CHANGES = ("train.steps", "log.", "eval.", "recover.", "device")


def train(cfg: RunConfig, out: str | Path, resume: bool = False, force: bool = False,
          loaded: tuple[dict, Path] | None = None) -> Run | None:
    """Train a GAN as `cfg` says, writing the run directory `out`; return the finished `Run`.

    With `resume`, continue the run in `out` from its newest good checkpoint (only
    `train.steps`, `log.*`, `eval.*`, `recover.*` and `device` may differ from the saved config,
    unless `force`). `loaded`: the (checkpoint, path) the caller already read with
    `CheckpointStore.load_latest`, so it is not read and verified twice. SIGINT/SIGTERM end the
    run cleanly with a checkpoint (`Run.interrupted`).

    Under torchrun (WORLD_SIZE > 1) every process calls this; they train data-parallel
    (`gankit.training.distributed`) and rank 0 alone writes `out` and returns the Run (None elsewhere).
    """
    out = Path(out)
    dist = Dist.from_env(resolve_device(cfg.device))
    clean = False
    try:
        run = _follow(cfg, out, dist) if not dist.is_main else _lead(cfg, out, resume, force, dist, loaded)
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
          loaded: tuple[dict, Path] | None = None) -> Run:
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
            return _train(cfg, out, store, ckpt, stop, dist)
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
           dist: Dist) -> Run | None:
    # -- setup ------------------------------------------------------------------------------
    device = dist.device(resolve_device(cfg.device))
    data = load_data(cfg.data.source, cfg.data.resolution, cfg.data.channels, device)
    n_classes = len(data.classes) if data.y is not None and data.classes else 0
    e = Engine.build(cfg, data, n_classes, device, dist=dist)
    G, D, ema, guard = e.G, e.D, e.ema, e.guard
    main = dist.is_main
    art = Artifacts(out, data, cfg, n_classes) if main else _Silent()
    evaluator = InTrainingEval(cfg, data, n_classes, device, dist) if cfg.eval.every else None

    def restore(ck: dict) -> int:
        if evaluator and ck.get("best"):
            evaluator.best = ck["best"]
        return _restore(ck, e)

    def checkpoint(done: int) -> bool:
        """Write a checkpoint unless the weights went non-finite (never overwrite a good one)."""
        if not all_finite(G, D):
            warn(f"step {done}: weights are not finite; checkpoint not written")
            return False
        if guard.consecutive:  # mid-way through refused updates: keep the last clean state
            warn(f"step {done}: checkpoint not written during a run of non-finite updates")
            return False
        rngs = dist.gather(_rng(e))  # every rank's own random streams (a collective)
        if main:
            s = _state(e, done)
            s["rng_ranks"] = rngs
            s["rollbacks"] = rollbacks
            if evaluator and evaluator.best:
                s["best"] = evaluator.best
            store.save(s)
        dist.barrier()  # nobody reads checkpoints while rank 0 writes one
        return True

    step = restore(ckpt) if ckpt is not None else 0
    rollbacks = int(ckpt.get("rollbacks", 0)) if ckpt is not None else 0
    if main:
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    sample_G = ema.G if ema else G  # grids show what sampling will give
    if step == 0:
        art.grid(sample_G, 0)  # the untrained generator: the animation's first frame
    else:
        art.forget_after(step)
    total, n_critic = cfg.train.steps, cfg.train.n_critic
    bar = Progress(total, step, enabled=cfg.log.progress) if main else _Silent()
    art.note(e.describe(), echo=cfg.log.progress)
    if device.type == "cpu":
        art.note(f"CPU threads: {torch.get_num_threads()} per process")
    if dist.active:
        art.note(f"data-parallel over {dist.world} processes: global batch {cfg.train.batch} = "
                 f"{dist.shard(cfg.train.batch)[1]} per process x {dist.world}; gradients averaged by "
                 f"{'DistributedDataParallel' if cfg.train.ddp else 'one flat all-reduce (train.ddp=false)'}",
                 echo=cfg.log.progress)
    window, t_window, t_maint = 0, time.perf_counter(), 0.0
    interrupted = None

    # -- the loop ---------------------------------------------------------------------------
    G.train(), D.train()
    while step < total:
        e.step(step)  # n_critic D updates, one G update, EMA, schedules (see training.engine)
        window += 1
        step += 1
        bar.advance()
        last = step == total
        log_now = step % cfg.log.every == 0 or last

        # 3. Non-finite updates in a row: go back to the last good checkpoint. The count lives on
        # the device; it is read when the scalars are (every log.every steps), or every step
        # when the guard syncs anyway (optimisers without a fused found_inf).
        if (log_now or not guard.on_device) and guard.consecutive >= cfg.recover.patience:
            step, rollbacks = _roll_back(cfg, store, restore, e, guard, step, rollbacks, dist)
            bar.bar.n = step
            e.acc_d.zero_(), e.acc_g.zero_()
            window, t_window, t_maint = 0, time.perf_counter(), 0.0
            continue

        # 4. Maintenance: log, grid, evaluation, checkpoint.
        if log_now:
            dist.mean_(e.acc_d), dist.mean_(e.acc_g)  # every rank's share of the window
            elapsed = time.perf_counter() - t_window - t_maint
            row = _log_row(e.acc_d, e.acc_g, window, n_critic, e.obj, step, e.sampler.epoch,
                           window / max(elapsed, 1e-9), float(e.opt_g.param_groups[0]["lr"]))
            if guard.total:
                row["nonfinite"] = guard.total
            art.log(row)
            bar.show(row)
            e.acc_d.zero_(), e.acc_g.zero_()
            window, t_window, t_maint = 0, time.perf_counter(), 0.0
        t0 = time.perf_counter()
        if step % cfg.log.grid_every == 0 or last:
            art.grid(sample_G, step)
            art.plots()
        improved = False
        if evaluator and (step % cfg.eval.every == 0 or last):
            improved = evaluator.run(sample_G, step, art, str(out))
        # Ranks stop together: a signal seen by any rank counts at the next log step.
        stopping = (dist.any(stop.signame is not None) if log_now else False) if dist.active \
            else stop.signame is not None
        if step % cfg.log.ckpt_every == 0 or last or improved or stopping:
            if checkpoint(step) and improved and main:  # a copy of the best checkpoint by FID so far
                shutil.copyfile(store.last, out / "checkpoints" / "best.pt")
        t_maint += time.perf_counter() - t0
        if stopping:
            interrupted = stop.signame or "SIGTERM"  # another rank's signal
            break
    bar.close()
    if dist.broadcast(not store.last.exists() if main else None):  # steps: 0; still leave a loadable run
        checkpoint(step)
        art.plots()
    art.finish()
    if not main:
        return None
    run = Run.load(out, device=device)
    run.interrupted = interrupted
    return run


def _roll_back(cfg: RunConfig, store: CheckpointStore | None, restore, e: Engine, guard: NonFiniteGuard,
               step: int, rollbacks: int, dist: Dist) -> tuple[int, int]:
    """Reload the newest good checkpoint, scale the learning rates, count the rollback."""
    bad = guard.consecutive
    if rollbacks >= cfg.recover.max_rollbacks:
        raise GankitError(
            f"training diverged: {bad} non-finite updates in a row at step {step} after "
            f"{rollbacks} rollbacks (recover.max_rollbacks); lower train.lr_g / train.lr_d, add a "
            f"penalty (reg.gp, reg.r1) or spectral norm, then resume from the last good checkpoint")
    try:
        found = store.load_latest() if dist.is_main else None
    except GankitError:
        found = None
    found = dist.broadcast(found)  # every rank rolls back to rank 0's checkpoint
    if found is None:
        raise GankitError(f"training diverged at step {step} before any checkpoint was written; "
                          "lower the learning rates or write checkpoints more often (log.ckpt_every)")
    ckpt, path = found
    back = restore(ckpt)
    f = cfg.recover.lr_factor ** (rollbacks + 1)
    e.scale_lrs(f)
    if dist.is_main:
        warn(f"step {step}: {bad} non-finite updates in a row; rolled back to step {back} "
             f"({path.name}) with learning rates x{f:g}")
    guard.consecutive = 0
    return back, rollbacks + 1


def _check_run_dir(out: Path, store: CheckpointStore, cfg: RunConfig, resume: bool, force: bool,
                   loaded: tuple[dict, Path] | None = None) -> dict | None:
    if resume:
        if not store.dir.is_dir() or not store.candidates():
            raise GankitError(f"--resume {out}: no checkpoint in {store.dir}")
        ckpt, path = loaded or store.load_latest()
        diffs = _config_diffs(from_dict(ckpt["config"], origin=str(path)), cfg)
        if diffs and not force:
            raise GankitError(f"--resume {out}: config differs from the run's: {'; '.join(diffs)} "
                              f"(only train.steps, log.*, eval.*, recover.* and device may change; "
                              f"--force to resume anyway)")
        return ckpt
    if (out / "config.yaml").exists() or (store.dir.is_dir() and store.candidates()):
        raise GankitError(f"{out} already holds a run; continue it with --resume {out}, "
                          "or choose another --out")
    return None


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


def _log_row(acc_d: torch.Tensor, acc_g: torch.Tensor, window: int, n_critic: int, obj: Objective,
             step: int, epoch: float, steps_per_s: float, lr: float) -> dict:
    d = dict(zip(D_STATS, acc_d.tolist()))  # the one host sync per log window
    g = dict(zip(G_STATS, acc_g.tolist()))
    n_d = window * n_critic
    row = {"step": step, "epoch": round(epoch, 4)}
    row.update({k: round(d[k] / n_d, 6) for k in ("loss_d", "d_real", "d_fake", "acc_real", "acc_fake")})
    row["loss_g"] = round(g["loss_g"] / window, 6)
    row["acc"] = round((row["acc_real"] + row["acc_fake"]) / 2, 6)
    if obj.gp:
        row["gp"] = round(d["gp"] / n_d, 6)
    if obj.r1 and d["r1_n"]:
        row["r1"] = round(d["r1"] / d["r1_n"], 6)  # mean over the D steps that computed it
    if obj.acgan_classes:
        row["aux_d"], row["aux_g"] = round(d["aux_d"] / n_d, 6), round(g["aux_g"] / window, 6)
    if obj.info_cat or obj.info_cont:
        row["info_d"], row["info_g"] = round(d["info_d"] / n_d, 6), round(g["info_g"] / window, 6)
    row["lr_g"] = lr
    row["steps_per_s"] = round(steps_per_s, 3)
    row["time"] = round(time.time(), 3)
    return row


def _rng(e: Engine) -> dict:
    """This process's random streams: torch's (dropout), the augmentation/penalty generator."""
    rng = {"torch": torch.get_rng_state()}
    if e.aug_gen is not None:
        rng["aug"] = e.aug_gen.get_state()
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _state(e: Engine, step: int) -> dict:
    rng = {**_rng(e), "z": e.z_gen.get_state()}  # the latent generator is the same on every rank
    state = {
        "step": step, "config": to_dict(e.cfg), "data": e.data.meta(),
        "G": e.G.state_dict(), "D": e.D.state_dict(),
        "opt_g": e.opt_g.state_dict(), "opt_d": e.opt_d.state_dict(),
        "sampler": e.sampler.state_dict(), "rng": rng,
        "versions": {"gankit": __version__, "torch": str(torch.__version__)},
    }
    if e.sched_g:
        state["sched_g"], state["sched_d"] = e.sched_g.state_dict(), e.sched_d.state_dict()
    if e.ema:
        state["ema"] = e.ema.state_dict()  # its "G" is what sampling loads by default
    return state


def _restore(ckpt: dict, e: Engine) -> int:
    # Loading replaces tensors a captured CUDA graph would still point at (optimiser moments, the
    # learning-rate tensor, EMA state): drop the graphs; the next steps warm up and capture anew.
    e.forget_graphs()
    e.G.load_state_dict(ckpt["G"])
    e.D.load_state_dict(ckpt["D"])
    e.load_optimizers(ckpt["opt_g"], ckpt["opt_d"])
    if e.sched_g:
        e.sched_g.load_state_dict(ckpt["sched_g"])
        e.sched_d.load_state_dict(ckpt["sched_d"])
    if e.ema:
        e.ema.load_state_dict(ckpt["ema"])
    e.sampler.load_state_dict(ckpt["sampler"])
    rng = ckpt["rng"]
    e.z_gen.set_state(rng["z"])
    ranks = ckpt.get("rng_ranks") or [rng]
    step = int(ckpt["step"])
    if e.dist.active and len(ranks) != e.dist.world:  # another world size: fresh per-rank streams
        reseed_for_rank(e.cfg.seed, e.dist.rank, step, e.device)
        return step
    own = ranks[e.dist.rank] if e.dist.rank < len(ranks) else rng
    torch.set_rng_state(own["torch"])
    if e.device.type == "cuda" and "cuda" in own:
        torch.cuda.set_rng_state_all(own["cuda"])
    if e.aug_gen is not None and "aug" in own:  # absent when written by a CUDA-graph run
        e.aug_gen.set_state(own["aug"])
    return step
