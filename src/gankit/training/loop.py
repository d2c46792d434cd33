"""`train`: the training function, read top to bottom.

Setup (device, data, networks, optimisers, the run's own random generators), then
``for step in ...``: draw a batch by index on the device, one `gan_step`, then maintenance every
so many steps (log, sample grid, checkpoint). Scalars are read from the device every
``log.every`` steps, not every step.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import yaml

from gankit import __version__
from gankit.config import RunConfig, from_dict, to_dict
from gankit.data import BatchSampler, Dataset, load_data
from gankit.errors import GankitError
from gankit.losses import LOSSES
from gankit.models import build_models
from gankit.run import Run, resolve_device
from gankit.training.artifacts import Artifacts
from gankit.training.checkpoint import load_checkpoint, save_checkpoint
from gankit.training.progress import Progress
from gankit.training.step import STAT_NAMES, gan_step

# Config sections that may change when a run is resumed: how long it runs and what it writes.
_RESUMABLE_CHANGES = ("train.steps", "log.", "device")


def train(cfg: RunConfig, out: str | Path, resume: bool = False) -> Run:
    """Train a GAN as `cfg` says, writing the run directory `out`; return the finished `Run`.

    With `resume`, continue the run in `out` from its last checkpoint (only `train.steps`,
    `log.*` and `device` may differ from the saved config).
    """
    out = Path(out)
    ckpt_path = out / "checkpoints" / "last.pt"
    ckpt = _check_run_dir(out, ckpt_path, cfg, resume)

    # -- setup ------------------------------------------------------------------------------
    device = resolve_device(cfg.device)
    data = load_data(cfg.data.source, cfg.data.resolution, cfg.data.channels, device)
    torch.manual_seed(cfg.seed)  # initial weights and dropout masks
    G, D = build_models(cfg.model, data.shape)
    G, D = G.to(device), D.to(device)
    fused = device.type == "cuda"  # one kernel per optimiser step; foreach on CPU
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.train.lr_g, betas=cfg.train.betas, fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.train.lr_d, betas=cfg.train.betas, fused=fused)
    d_loss, g_loss = LOSSES[cfg.train.loss]
    sampler = BatchSampler(len(data), cfg.train.batch, cfg.seed, device)
    z_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)  # the run's latent noise
    # The grid's fixed noise is drawn on the CPU so that it is the same on every device.
    n_fixed = cfg.log.grid_n if data.kind == "image" else 1024  # a scatter plot wants more points
    fixed_z = torch.randn(n_fixed, cfg.model.z_dim,
                          generator=torch.Generator().manual_seed(cfg.seed + 2)).to(device)
    step = 0
    if ckpt is not None:
        step = _restore(ckpt, G, D, opt_g, opt_d, sampler, z_gen, device)

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    art = Artifacts(out, data, fixed_z)
    if step == 0:
        art.grid(G, 0)  # the untrained generator: the animation's first frame
    else:
        art.forget_after(step)
    B, total = cfg.train.batch, cfg.train.steps
    bar = Progress(total, step, enabled=cfg.log.progress)
    acc = torch.zeros(len(STAT_NAMES), device=device)  # scalars summed on the device
    window, t_window, t_maint = 0, time.perf_counter(), 0.0

    # -- the loop ---------------------------------------------------------------------------
    G.train(), D.train()
    for step in range(step, total):  # noqa: B020 (step resumes where the checkpoint left off)
        x_real = data.to_model(data.x[sampler.next()])  # (B, C, H, W) in [-1, 1]
        z = torch.randn(B, cfg.model.z_dim, generator=z_gen, device=device)  # (B, z_dim)
        acc += gan_step(G, D, opt_g, opt_d, x_real, z, d_loss, g_loss)
        window += 1
        done = step + 1
        bar.advance()

        # -- maintenance: log, grid, checkpoint -----------------------------------------------
        last = done == total
        if done % cfg.log.every == 0 or last:
            elapsed = time.perf_counter() - t_window - t_maint
            row = _log_row(acc / window, done, sampler.epoch, window / max(elapsed, 1e-9))
            art.log(row)
            bar.show(row)
            acc.zero_()
            window, t_window, t_maint = 0, time.perf_counter(), 0.0
        t0 = time.perf_counter()
        if done % cfg.log.grid_every == 0 or last:
            art.grid(G, done)
            art.plots()
        if done % cfg.log.ckpt_every == 0 or last:
            save_checkpoint(_state(cfg, data, G, D, opt_g, opt_d, sampler, z_gen, done), ckpt_path)
        t_maint += time.perf_counter() - t0
    bar.close()
    if not ckpt_path.exists():  # steps: 0; still leave a complete, loadable run directory
        save_checkpoint(_state(cfg, data, G, D, opt_g, opt_d, sampler, z_gen, step), ckpt_path)
        art.plots()
    art.finish()
    return Run.load(out, device=device)


def _check_run_dir(out: Path, ckpt_path: Path, cfg: RunConfig, resume: bool) -> dict | None:
    if resume:
        if not ckpt_path.exists():
            raise GankitError(f"--resume {out}: no checkpoint at {ckpt_path}")
        ckpt = load_checkpoint(ckpt_path)
        diffs = _config_diffs(from_dict(ckpt["config"], origin=str(ckpt_path)), cfg)
        if diffs:
            raise GankitError(f"--resume {out}: config differs from the run's: {'; '.join(diffs)} "
                              f"(only train.steps, log.* and device may change)")
        return ckpt
    if (out / "config.yaml").exists() or ckpt_path.exists():
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
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a
            if a[k] != b[k] and not k.startswith(_RESUMABLE_CHANGES) and k != "preset"]


def _log_row(means: torch.Tensor, step: int, epoch: float, steps_per_s: float) -> dict:
    values = means.tolist()  # the one host sync per log window
    row = {"step": step, "epoch": round(epoch, 4), **{k: round(v, 6) for k, v in zip(STAT_NAMES, values)}}
    row["acc"] = round((row["acc_real"] + row["acc_fake"]) / 2, 6)
    row["steps_per_s"] = round(steps_per_s, 3)
    row["time"] = round(time.time(), 3)
    return row


def _state(cfg: RunConfig, data: Dataset, G, D, opt_g, opt_d, sampler: BatchSampler,
           z_gen: torch.Generator, step: int) -> dict:
    rng = {"torch": torch.get_rng_state(), "z": z_gen.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "step": step, "config": to_dict(cfg), "data": data.meta(),
        "G": G.state_dict(), "D": D.state_dict(),
        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "sampler": sampler.state_dict(), "rng": rng,
        "versions": {"gankit": __version__, "torch": str(torch.__version__)},
    }


def _restore(ckpt: dict, G, D, opt_g, opt_d, sampler: BatchSampler, z_gen: torch.Generator,
             device: torch.device) -> int:
    G.load_state_dict(ckpt["G"])
    D.load_state_dict(ckpt["D"])
    opt_g.load_state_dict(ckpt["opt_g"])
    opt_d.load_state_dict(ckpt["opt_d"])
    sampler.load_state_dict(ckpt["sampler"])
    rng = ckpt["rng"]
    torch.set_rng_state(rng["torch"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state_all(rng["cuda"])
    z_gen.set_state(rng["z"])
    return int(ckpt["step"])

