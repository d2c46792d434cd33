"""Burn-in schedules (R3GAN, Huang et al. 2024): learning rate, R1/R2 weight, Adam's beta2 and the
EMA half-life move from their starting values to final ones early in training, then hold.

R3GAN's code moves each value along a cosine over the first `total` images shown:

    v(n) = final + (start - final) * (1 + cos(pi * min(n / total, 1))) / 2

with n = images shown so far (steps x the global batch). Its CIFAR-10 setting over 20 M images:
lr 2e-4 -> 5e-5, gamma 0.05 -> 0.005, beta2 0.9 -> 0.99, EMA half-life 0 -> 5 M images. Here the
starting values are the run's own (train.lr_g / lr_d, reg.r1 / reg.r2, train.betas[1]; the
half-life starts at 0), and `burnin.*` gives where they end (`gankit.tasks.generate.config.BurninConfig`).

Every value is a function of the step alone, so `Burnin.apply(t)` before step t is all that resume
needs: nothing is checkpointed. Values reach the step as the optimisers' param groups (a tensor
learning rate is filled in place), the regularisation weight's device scalar (`TrainState.reg_scale`,
which the task multiplies its penalties by) and the EMA's decay ceiling (a device scalar): a
captured CUDA graph reads all three from memory. beta2 is a Python float inside fused Adam, so a
beta2 burn-in keeps the step eager (the generation task's `blockers`). The engine applies it before
each step as the task's `schedule` (`Task.schedule`).
"""

from __future__ import annotations

import math

from gankit.util import set_lr


def cosine(n: float, start: float, final: float, total: float) -> float:
    """R3GAN's schedule: `start` at n = 0, `final` from n = total on, a half cosine between."""
    if total <= 0:
        return final
    u = min(max(n / total, 0.0), 1.0)
    return final + (start - final) * 0.5 * (1.0 + math.cos(math.pi * u))


def ema_decay(half_life_images: float, batch: int) -> float:
    """EMA decay per step for a half-life in images: the average halves after that many images."""
    return 0.5 ** (batch / half_life_images) if half_life_images > 0 else 0.0


class Burnin:
    """Applies `cfg.burnin` to a `TrainState` before each step (`Engine.step`)."""

    def __init__(self, cfg, st):
        self.b, self.st = cfg.burnin, st
        self.batch = cfg.train.batch  # images per step (the global batch)
        self.total = 1000.0 * self.b.kimg
        self.lr_factor = cfg.recover.lr_factor
        self.beta2_start = cfg.train.betas[1]

    @classmethod
    def build(cls, cfg, st) -> Burnin | None:
        return cls(cfg, st) if cfg.burnin.kimg > 0 else None

    def values(self, t: int) -> dict[str, float]:
        """The scheduled values at step t: lr and gamma as factors of their configured values,
        beta2 and the EMA decay as themselves (absent when not scheduled)."""
        n, b = t * self.batch, self.b
        out = {"lr": cosine(n, 1.0, b.lr, self.total), "gamma": cosine(n, 1.0, b.gamma, self.total)}
        if b.beta2 is not None:
            out["beta2"] = cosine(n, self.beta2_start, b.beta2, self.total)
        if b.ema_kimg is not None:
            out["ema"] = ema_decay(cosine(n, 0.0, 1000.0 * b.ema_kimg, self.total), self.batch)
        return out

    def apply(self, t: int) -> None:
        st = self.st
        v = self.values(t)
        rollback = self.lr_factor ** st.rollbacks  # recovery's lowered rates stay lowered
        for name, opt in st.opts.items():
            set_lr(opt, st.lrs[name] * rollback * v["lr"])
            if "beta2" in v:
                for group in opt.param_groups:
                    if "betas" in group:
                        group["betas"] = (group["betas"][0], v["beta2"])
        st.reg_scale.fill_(v["gamma"])
        if "ema" in v:
            for ema in st.emas.values():
                ema.cap.fill_(v["ema"])
