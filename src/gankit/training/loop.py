"""`train`: the training function, read top to bottom.

Setup (device, data, networks, optimisers, the run's own random generators), then
``for step in ...``: n_critic D updates, one G update, the EMA update, then maintenance every so
many steps (log, sample grid, checkpoint). Scalars are read from the device every ``log.every``
steps, not every step.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import torch
import yaml

from gankit import __version__
from gankit.config import RunConfig, from_dict, to_dict
from gankit.data import BatchSampler, Dataset, load_data
from gankit.errors import GankitError, warn
from gankit.models import build_models
from gankit.models.latent import draw_latent
from gankit.regularizers import instance_noise_std
from gankit.run import Run, resolve_device
from gankit.training.artifacts import Artifacts
from gankit.training.checkpoint import CheckpointStore
from gankit.training.ema import EMA
from gankit.training.evaluation import InTrainingEval
from gankit.training.lock import RunLock
from gankit.training.safety import NonFiniteGuard, StopSignals, all_finite
from gankit.training.progress import Progress
from gankit.training.step import D_STATS, G_STATS, Batch, Objective, d_step, g_step

# Config keys that may change when a run is resumed: how long it runs and what it writes.
_RESUMABLE_CHANGES = ("train.steps", "log.", "eval.", "recover.", "device")


def train(cfg: RunConfig, out: str | Path, resume: bool = False, force: bool = False) -> Run:
    """Train a GAN as `cfg` says, writing the run directory `out`; return the finished `Run`.

    With `resume`, continue the run in `out` from its newest good checkpoint (only
    `train.steps`, `log.*`, `eval.*`, `recover.*` and `device` may differ from the saved config,
    unless `force`). SIGINT/SIGTERM end the run cleanly with a checkpoint (`Run.interrupted`).
    """
    out = Path(out)
    store = CheckpointStore(out / "checkpoints", keep=cfg.log.keep_last, warn=warn)
    created = not out.exists()
    try:
        with RunLock(out) as lock, StopSignals() as stop:  # the lock first: another trainer may be mid-run
            if lock.took_over:
                warn(f"took over the lock of {out} left by a process that is gone (pid {lock.took_over})")
            ckpt = _check_run_dir(out, store, cfg, resume, force)
            return _train(cfg, out, store, ckpt, stop)
    except GankitError:
        if created and out.is_dir() and not any(out.iterdir()):  # a mistake leaves nothing behind
            out.rmdir()
        raise


def _train(cfg: RunConfig, out: Path, store: CheckpointStore, ckpt: dict | None, stop: StopSignals) -> Run:
    # -- setup ------------------------------------------------------------------------------
    device = resolve_device(cfg.device)
    data = load_data(cfg.data.source, cfg.data.resolution, cfg.data.channels, device)
    n_classes = len(data.classes) if data.y is not None and data.classes else 0
    torch.manual_seed(cfg.seed)  # initial weights and dropout masks
    G, D = build_models(cfg.model, data.shape, n_classes)
    G, D = G.to(device), D.to(device)
    opt_g, opt_d = _optimizer(cfg, G, cfg.train.lr_g, device), _optimizer(cfg, D, cfg.train.lr_d, device)
    sched_g, sched_d = _schedule(cfg, opt_g), _schedule(cfg, opt_d)
    ema = EMA(G, cfg.train.ema_decay) if cfg.train.ema else None
    obj = Objective.from_config(cfg, n_classes)
    guard = NonFiniteGuard(cfg.recover.skip_nonfinite)
    labels = cfg.model.conditional or cfg.model.d_head != "plain"  # does the step need y?
    sampler = BatchSampler(len(data), cfg.train.batch, cfg.seed, device)
    z_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)  # latents and codes
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed + 3)  # augment, penalties, noise
    art = Artifacts(out, data, cfg, n_classes)
    evaluator = InTrainingEval(cfg, data, n_classes, device) if cfg.eval.every else None
    modules = (G, D, opt_g, opt_d, sched_g, sched_d, ema, sampler, z_gen, aug_gen, device)

    def restore(ck: dict) -> int:
        if evaluator and ck.get("best"):
            evaluator.best = ck["best"]
        return _restore(ck, *modules)

    def draw() -> Batch:
        idx = sampler.next()  # (B,) on the device
        lat = draw_latent(cfg.model, len(idx), z_gen, device)
        y = data.y[idx] if labels else None
        return Batch(data.to_model(data.x[idx]), y, lat.z_in, lat.c_cat, lat.c_cont)

    def checkpoint(done: int) -> bool:
        """Write a checkpoint unless the weights went non-finite (never overwrite a good one)."""
        if not all_finite(G, D):
            warn(f"step {done}: weights are not finite; checkpoint not written")
            return False
        if guard.consecutive:  # mid-way through refused updates: keep the last clean state
            warn(f"step {done}: checkpoint not written during a run of non-finite updates")
            return False
        s = _state(cfg, data, G, D, opt_g, opt_d, sched_g, sched_d, ema, sampler, z_gen, aug_gen, done)
        s["rollbacks"] = rollbacks
        if evaluator and evaluator.best:
            s["best"] = evaluator.best
        store.save(s)
        return True

    step = restore(ckpt) if ckpt is not None else 0
    rollbacks = int(ckpt.get("rollbacks", 0)) if ckpt is not None else 0
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    sample_G = ema.G if ema else G  # grids show what sampling will give
    if step == 0:
        art.grid(sample_G, 0)  # the untrained generator: the animation's first frame
    else:
        art.forget_after(step)
    total, n_critic = cfg.train.steps, cfg.train.n_critic
    noise_steps = cfg.reg.instance_noise_steps or total
    bar = Progress(total, step, enabled=cfg.log.progress)
    acc_d = torch.zeros(len(D_STATS), device=device)  # scalars summed on the device
    acc_g = torch.zeros(len(G_STATS), device=device)
    window, t_window, t_maint = 0, time.perf_counter(), 0.0
    interrupted = None

    # -- the loop ---------------------------------------------------------------------------
    G.train(), D.train()
    while step < total:
        noise_std = instance_noise_std(step, cfg.reg.instance_noise, noise_steps)
        # 1. D phase: n_critic updates, each on a fresh batch; the last keeps its fakes' graph.
        for k in range(n_critic):
            b = draw()
            with_r1 = cfg.reg.r1 > 0 and (step * n_critic + k) % cfg.reg.r1_every == 0
            d_stats, x_fake = d_step(G, D, opt_d, b, obj, aug_gen, noise_std, with_r1,
                                     keep_fake_graph=k == n_critic - 1, guard=guard)
            acc_d += d_stats
        # 2. G phase: the updated D judges the last batch's fakes (one G forward per step).
        acc_g += g_step(G, D, opt_g, b, x_fake, obj, aug_gen, noise_std, guard=guard)
        if ema:
            ema.update(G)
        if sched_g:
            sched_g.step(), sched_d.step()
        guard.end_step()
        window += 1
        step += 1
        bar.advance()

        # 3. Non-finite updates in a row: go back to the last good checkpoint.
        if guard.consecutive >= cfg.recover.patience:
            step, rollbacks = _roll_back(cfg, store, restore, opt_g, opt_d, sched_g, sched_d, guard,
                                         step, rollbacks)
            bar.bar.n = step
            acc_d.zero_(), acc_g.zero_()
            window, t_window, t_maint = 0, time.perf_counter(), 0.0
            continue

        # 4. Maintenance: log, grid, evaluation, checkpoint.
        last = step == total
        if step % cfg.log.every == 0 or last:
            elapsed = time.perf_counter() - t_window - t_maint
            row = _log_row(acc_d, acc_g, window, n_critic, obj, step, sampler.epoch,
                           window / max(elapsed, 1e-9), opt_g.param_groups[0]["lr"])
            if guard.total:
                row["nonfinite"] = guard.total
            art.log(row)
            bar.show(row)
            acc_d.zero_(), acc_g.zero_()
            window, t_window, t_maint = 0, time.perf_counter(), 0.0
        t0 = time.perf_counter()
        if step % cfg.log.grid_every == 0 or last:
            art.grid(sample_G, step)
            art.plots()
        improved = False
        if evaluator and (step % cfg.eval.every == 0 or last):
            improved = evaluator.run(sample_G, step, art, str(out))
        if step % cfg.log.ckpt_every == 0 or last or improved or stop.signame:
            if checkpoint(step) and improved:  # a copy of the best checkpoint by FID so far
                shutil.copyfile(store.last, out / "checkpoints" / "best.pt")
        t_maint += time.perf_counter() - t0
        if stop.signame:
            interrupted = stop.signame
            break
    bar.close()
    if not store.last.exists():  # steps: 0; still leave a complete, loadable run directory
        checkpoint(step)
        art.plots()
    art.finish()
    run = Run.load(out, device=device)
    run.interrupted = interrupted
    return run


def _roll_back(cfg: RunConfig, store: CheckpointStore, restore, opt_g, opt_d, sched_g, sched_d,
               guard: NonFiniteGuard, step: int, rollbacks: int) -> tuple[int, int]:
    """Reload the newest good checkpoint, scale the learning rates, count the rollback."""
    if rollbacks >= cfg.recover.max_rollbacks:
        raise GankitError(
            f"training diverged: {guard.consecutive} non-finite updates in a row at step {step} after "
            f"{rollbacks} rollbacks (recover.max_rollbacks); lower train.lr_g / train.lr_d, add a "
            f"penalty (reg.gp, reg.r1) or spectral norm, then resume from the last good checkpoint")
    try:
        ckpt, path = store.load_latest()
    except GankitError:
        raise GankitError(f"training diverged at step {step} before any checkpoint was written; "
                          "lower the learning rates or write checkpoints more often (log.ckpt_every)") from None
    back = restore(ckpt)
    f = cfg.recover.lr_factor ** (rollbacks + 1)
    for opt, sched, lr in ((opt_g, sched_g, cfg.train.lr_g), (opt_d, sched_d, cfg.train.lr_d)):
        for group in opt.param_groups:
            group["lr"] = lr * f * (sched.lr_lambdas[0](sched.last_epoch) if sched else 1.0)
        if sched:
            sched.base_lrs = [lr * f for _ in sched.base_lrs]
    warn(f"step {step}: {guard.consecutive} non-finite updates in a row; rolled back to step {back} "
          f"({path.name}) with learning rates x{f:g}")
    guard.consecutive = 0
    return back, rollbacks + 1


def _optimizer(cfg: RunConfig, net: torch.nn.Module, lr: float, device: torch.device):
    if cfg.train.optimizer == "rmsprop":  # the original WGAN's choice: momentum destabilises a clipped critic
        return torch.optim.RMSprop(net.parameters(), lr=lr)
    fused = device.type == "cuda"  # one kernel per optimiser step; foreach on CPU
    return torch.optim.Adam(net.parameters(), lr=lr, betas=cfg.train.betas, fused=fused)


def _schedule(cfg: RunConfig, opt: torch.optim.Optimizer):
    """Learning-rate multiplier over train.steps: constant (None), linear decay to 0, or cosine to 0."""
    total = max(cfg.train.steps, 1)
    if cfg.train.lr_schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: max(0.0, 1 - t / total))
    if cfg.train.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total) / total)))
    return None


def _check_run_dir(out: Path, store: CheckpointStore, cfg: RunConfig, resume: bool, force: bool) -> dict | None:
    if resume:
        if not store.dir.is_dir() or not store.candidates():
            raise GankitError(f"--resume {out}: no checkpoint in {store.dir}")
        ckpt, path = store.load_latest()
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


def _state(cfg: RunConfig, data: Dataset, G, D, opt_g, opt_d, sched_g, sched_d, ema: EMA | None,
           sampler: BatchSampler, z_gen: torch.Generator, aug_gen: torch.Generator, step: int) -> dict:
    rng = {"torch": torch.get_rng_state(), "z": z_gen.get_state(), "aug": aug_gen.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    state = {
        "step": step, "config": to_dict(cfg), "data": data.meta(),
        "G": G.state_dict(), "D": D.state_dict(),
        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "sampler": sampler.state_dict(), "rng": rng,
        "versions": {"gankit": __version__, "torch": str(torch.__version__)},
    }
    if sched_g:
        state["sched_g"], state["sched_d"] = sched_g.state_dict(), sched_d.state_dict()
    if ema:
        state["ema"] = ema.state_dict()  # its "G" is what sampling loads by default
    return state


def _restore(ckpt: dict, G, D, opt_g, opt_d, sched_g, sched_d, ema: EMA | None, sampler: BatchSampler,
             z_gen: torch.Generator, aug_gen: torch.Generator, device: torch.device) -> int:
    G.load_state_dict(ckpt["G"])
    D.load_state_dict(ckpt["D"])
    opt_g.load_state_dict(ckpt["opt_g"])
    opt_d.load_state_dict(ckpt["opt_d"])
    if sched_g:
        sched_g.load_state_dict(ckpt["sched_g"])
        sched_d.load_state_dict(ckpt["sched_d"])
    if ema:
        ema.load_state_dict(ckpt["ema"])
    sampler.load_state_dict(ckpt["sampler"])
    rng = ckpt["rng"]
    torch.set_rng_state(rng["torch"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state_all(rng["cuda"])
    z_gen.set_state(rng["z"])
    aug_gen.set_state(rng["aug"])
    return int(ckpt["step"])
