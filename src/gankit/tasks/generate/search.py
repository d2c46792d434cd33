"""Latent search: the one optimisation core behind repair by inversion (`invert`, `gankit repair
--method invert`) and projection (`project`, `gankit project`): find the generator input whose
image minimises a loss, by Adam on the latent with G frozen.

What is optimised (`LatentSpace`):

    z    G's whole input (noise + InfoGAN codes): every generator; starts drawn from the run's prior
    w    one w, broadcast to every style input: generators with a mapping network (stylegan2),
         as StyleGAN2's projector; the default there
    w+   one w per style input, (num_ws, w_dim): fits more, strays further from what G learned

In w and w+, restart 0 starts at w_avg and the others at mapping(z) for z from the prior. w_avg
and the latent's spread are measured as the projector does: over mapping(z) of `W_SAMPLES` z drawn
from a fixed seed (the class given, for a conditional run), spread = sqrt(mean |w - w_avg|^2). The
synthesis network's noise inputs are "const" throughout and not optimised: the projector also
optimises the noise maps and regularises them towards white noise; with constant noise there is
nothing to regularise, and the latent alone must explain the image.

The schedule (`Schedule`; StyleGAN2's projector, Karras et al. 2020, for `stylegan2_schedule`), at
step i of `steps`, t = i / steps:

    lr(t)  = lr * min(1, t / rampup) * (1/2 - 1/2 cos(pi * min(1, (1 - t) / rampdown)))
    v_in   = v + N(0, sigma(t)^2),  sigma(t) = spread * noise * max(0, 1 - t / noise_ramp)^2

i.e. a short linear warm-up, a cosine decay to 0 over the last `rampdown` of the steps, and noise
on the latent that explores early and is gone after `noise_ramp` of the steps. A flat schedule
(`Schedule(lr)`: no ramps, no noise) is plain Adam at constant lr, Yeh et al.'s inversion in z.

All restarts of all targets are optimised at once as one batch (N targets x R restarts, target-
major); each target keeps the restart with the lowest final `score` (measured without noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.latent import has_styles
from gankit.tasks.phases_common import frozen

SPACES = ("z", "w", "w+")
W_SAMPLES = 10_000  # mapped z for w_avg and the spread (the projector's w_avg_samples)
W_SEED = 123  # the projector's seed for those z


@dataclass(frozen=True)
class Schedule:
    lr: float  # Adam's peak learning rate
    rampup: float = 0.0  # share of the steps over which lr rises linearly from 0 (0: none)
    rampdown: float = 0.0  # share of the steps at the end over which lr falls to 0 by a cosine (0: none)
    noise: float = 0.0  # noise on the latent at t = 0, as a multiple of its spread (0: none)
    noise_ramp: float = 0.75  # share of the steps after which the noise is 0 (it decays quadratically)

    def lr_at(self, t: float) -> float:
        ramp = 1.0
        if self.rampdown > 0:
            ramp = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / self.rampdown))
        if self.rampup > 0:
            ramp *= min(1.0, t / self.rampup)
        return self.lr * ramp

    def noise_at(self, t: float) -> float:
        """sigma(t) / spread."""
        return self.noise * max(0.0, 1.0 - t / self.noise_ramp) ** 2 if self.noise > 0 else 0.0


def stylegan2_schedule(lr: float = 0.1) -> Schedule:
    """The StyleGAN2 projector's schedule (its initial lr is 0.1)."""
    return Schedule(lr, rampup=0.05, rampdown=0.25, noise=0.05, noise_ramp=0.75)


class LatentSpace:
    """Where the search moves: z, w or w+ of a loaded generate run, for labels `y` (conditional
    runs: one per restart, else None). `render(v)` is the image in model space ([-1, 1])."""

    def __init__(self, run, kind: str, y: Tensor | None = None):
        if kind not in SPACES:
            raise GankitError(f"--space {kind!r}: choose one of auto, {', '.join(SPACES)}")
        self.run, self.kind, self.G, self.y = run, kind, run.G, y
        self.styled = has_styles(self.G)
        if kind != "z" and not self.styled:
            raise GankitError(f"--space {kind} needs a stylegan2 run (a mapping network); this is a "
                              f"{run.config.model.arch} run: use --space z (its default)")
        self._stats: tuple[Tensor, float] | None = None

    @classmethod
    def default(cls, run, y: Tensor | None = None) -> LatentSpace:
        """w for a generator with a mapping network, z for all others."""
        return cls(run, "w" if has_styles(run.G) else "z", y)

    def _y(self, n: int, offset: int = 0) -> Tensor | None:
        return None if self.y is None else self.y[offset:offset + n].to(self.run.device)

    def w_stats(self) -> tuple[Tensor, float]:
        """(w_avg (w_dim,), spread) over mapping(z) of W_SAMPLES seeded z (see the module docstring)."""
        if self._stats is None:
            dev, parts = self.run.device, []
            z = self.run.latents(W_SAMPLES, W_SEED)
            y = None if self.y is None else self.y[:1].to(dev).expand(W_SAMPLES)  # the (one) class projected into
            with torch.no_grad():
                for i in range(0, W_SAMPLES, 1000):
                    parts.append(self.G.mapping(z[i:i + 1000], None if y is None else y[i:i + 1000]))
            w = torch.cat(parts)  # (W_SAMPLES, w_dim)
            avg = w.mean(0)
            self._stats = avg, float((w - avg).pow(2).sum(1).mean().sqrt())
        return self._stats

    @property
    def spread(self) -> float:
        """sqrt(E |v - mean|^2): the scale of the search noise."""
        if self.kind == "z":
            return math.sqrt(self.run.config.model.z_dim)  # z ~ N(0, I): E |z|^2 = z_dim
        return self.w_stats()[1]

    def starts(self, n: int, restarts: int, seed: int) -> Tensor:
        """(n * restarts, ...) starting latents, target-major: z from the prior; in w / w+ restart 0
        at w_avg and the others at mapping(z)."""
        z = self.run.latents(n * restarts, seed)  # (n R, in_dim)
        if self.kind == "z":
            return z
        avg, _ = self.w_stats()
        with torch.no_grad():
            w = self.G.mapping(z, self._y(len(z)))  # (n R, w_dim)
        w.view(n, restarts, -1)[:, 0] = avg
        if self.kind == "w+":
            w = w[:, None].repeat(1, int(self.G.num_ws), 1)  # (n R, num_ws, w_dim)
        return w

    def ws(self, v: Tensor) -> Tensor:
        """(B, num_ws, w_dim) style inputs of latents v (styled generators only)."""
        if self.kind == "w+":
            return v
        w = v if self.kind == "w" else self.G.mapping(v, self._y(len(v)))
        return w[:, None].expand(-1, int(self.G.num_ws), -1)

    def render(self, v: Tensor) -> Tensor:
        """(B, C, H, W) model-space images of latents v: G(z, y), or synthesis(ws) with constant noise."""
        if self.styled:
            return self.G.synthesis(self.ws(v), noise="const")
        return self.G(v, self._y(len(v)))


@dataclass
class Found:
    latent: Tensor  # (N, ...) each target's chosen latent
    images: Tensor  # (N, C, H, W) its image in model space, without noise
    start: Tensor  # (N, R) score of each restart's starting latent
    end: Tensor  # (N, R) score of each restart's final latent
    best: Tensor  # (N,) int64: the chosen restart
    curve: Tensor  # (steps, N) the objective of the chosen restart at each step (with the search noise)


def search(space: LatentSpace, objective: Callable[[Tensor, Tensor], Tensor], score: Callable[[Tensor], Tensor],
           n: int, restarts: int, steps: int, schedule: Schedule, seed: int = 0,
           frozen_too: tuple[nn.Module | None, ...] = (), progress: Callable[[int, int], None] | None = None) -> Found:
    """Minimise `objective(images, latents) -> (n R,)` over the latents of n targets x `restarts`,
    for `steps` Adam steps under `schedule`; pick each target's restart by `score(images) -> (n R,)`.
    G (and `frozen_too`: a prior's D, a feature network) get no gradients."""
    R, dev = restarts, space.run.device
    with torch.no_grad():
        v = space.starts(n, R, seed).detach().clone()
        start = score(space.render(v)).view(n, R)
    v.requires_grad_(True)
    opt = torch.optim.Adam([v], lr=schedule.lr)
    sigma0 = space.spread if schedule.noise > 0 else 0.0
    noise_gen = torch.Generator().manual_seed(seed + 1)  # on the CPU: the same noise on any device
    curve = torch.empty(steps, n * R, device=dev)
    with frozen(space.G, *frozen_too):
        for i in range(steps):
            t = i / steps
            for group in opt.param_groups:
                group["lr"] = schedule.lr_at(t)
            v_in = v
            if sigma0 > 0 and schedule.noise_at(t) > 0:
                v_in = v + torch.randn(v.shape, generator=noise_gen).to(dev) * (sigma0 * schedule.noise_at(t))
            loss = objective(space.render(v_in), v_in)  # (n R,)
            curve[i] = loss.detach()
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # the restarts are independent: the sum's gradient is each one's own
            opt.step()
            if progress is not None:
                progress(i + 1, steps)
        with torch.no_grad():
            v = v.detach()
            img = space.render(v)
            end = score(img).view(n, R)
    best = end.argmin(1)  # (n,)
    rows = torch.arange(n, device=dev) * R + best.to(dev)  # flat index of each target's chosen restart
    return Found(latent=v[rows], images=img[rows], start=start, end=end, best=best, curve=curve[:, rows])
