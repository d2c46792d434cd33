"""Repair by inversion: search the latent space of any unconditional generator gankit trained for
a latent whose image matches the known pixels, then put that image into the hole (Yeh et al. 2017,
"Semantic image inpainting with deep generative models").

The search is the core shared with projection (`gankit.tasks.generate.search`): in z for ordinary
generators, where Yeh et al. search (restarts z_r ~ the run's prior, Adam at constant lr); in w for
a stylegan2 run (restart 0 at w_avg, the others at mapping(z_r); the StyleGAN2 projector's lr ramps
and decaying noise on w; constant noise inputs).

For an image x with hole mask m (1 = missing), per restart r, with v_r the latent searched:

    W        = (1 - m) * avgpool_7x7(m)          Yeh et al.'s importance weights: a known pixel
                                                 counts by the share of missing pixels in the
                                                 7 x 7 window around it (context near the hole
                                                 matters most); the weights are normalised to
                                                 mean 1 over the known pixels, plus 1/10 for
                                                 every known pixel so far context still counts
    context  = sum |W (G(z) - x)| / sum(1 - m)   (per image, channels averaged)
    prior    = softplus(-D(G(v)))                "d": the paper's perceptual loss log(1 - D(G(z)))
                                                 in its non-saturating form, from the run's D
               | (|z|^2 / dim - 1)^2             "norm": keep z on the prior's shell (z only: w has
                                                 no such shell)
               | 0                               "none"
    loss     = context + prior_weight * prior    (the paper: lambda = 0.003)

Adam (peak lr `lr`) on all restarts of all images at once for `steps` steps; each image keeps the
restart with the lowest final context loss, and the repaired image is G(v*) in the hole and x
everywhere else (a plain composite; the paper's Poisson blending is not applied). The cost is
restarts x steps forward and backward passes of G (and D for the "d" prior) per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.data import from_model, to_model
from gankit.errors import GankitError
from gankit.tasks.generate.search import LatentSpace, Schedule, search, stylegan2_schedule

PRIORS = ("d", "norm", "none")
WINDOW = 7  # Yeh et al.'s window for the importance weights
FAR = 0.1  # weight floor of known pixels far from the hole


@dataclass(frozen=True)
class InvertSettings:
    restarts: int = 8
    steps: int = 300
    lr: float = 0.05
    prior: str = "d"
    prior_weight: float = 0.003
    seed: int = 0

    def check(self) -> None:
        if self.restarts < 1 or self.steps < 1:
            raise GankitError(f"--restarts {self.restarts} --steps {self.steps}: both must be >= 1")
        if self.lr <= 0:
            raise GankitError(f"--lr {self.lr}: must be > 0")
        if self.prior not in PRIORS:
            raise GankitError(f"--prior {self.prior!r}: choose one of {', '.join(PRIORS)}")


def check_invertible(run) -> None:
    """Refuse, in one line, a run whose generator cannot be inverted here."""
    run.need("generate", "repair by inversion (--method invert)")
    if run.conditional:
        raise GankitError(f"{run.dir}: a conditional run (model.conditional); inversion needs an unconditional "
                          "generator (a class would have to be guessed): use an unconditional run or --method learned "
                          "with an inpaint run")
    if run.data_meta.get("kind") != "image":
        raise GankitError(f"{run.dir}: a 2-D toy run; inversion repairs images")


def importance_weights(mask: torch.Tensor) -> torch.Tensor:
    """float (N, 1, H, W) context weights of the known pixels (see the module docstring)."""
    m = mask.float()
    near = F.avg_pool2d(m, WINDOW, 1, WINDOW // 2, count_include_pad=False) * (1.0 - m)
    known = (1.0 - m).sum((1, 2, 3), keepdim=True).clamp_min(1.0)
    near = near / (near.sum((1, 2, 3), keepdim=True) / known).clamp_min(1e-12)  # mean 1 over known pixels
    return near + FAR * (1.0 - m)


def invert(run, x: torch.Tensor, masks: torch.Tensor, s: InvertSettings = InvertSettings(),
           progress=None) -> tuple[torch.Tensor, dict]:
    """uint8 (N, C, H, W) images with bool (N, 1, H, W) holes -> (uint8 repaired images, info):
    info holds each image's context loss before (the best random restart) and after the search,
    and the space searched (z, or w for a stylegan2 run)."""
    check_invertible(run)
    s.check()
    shape = tuple(run.data_meta["shape"])
    if tuple(x.shape[1:]) != shape:
        raise GankitError(f"images of {tuple(x.shape[1:])} (C, H, W); this run's generator makes {shape}: "
                          "inversion needs images of its size")
    D = run.nets.get("D")
    if s.prior == "d" and D is None:
        raise GankitError(f"{run.dir}: no discriminator here (an exported generator); use --prior norm or none")
    space = LatentSpace.default(run)
    if s.prior == "norm" and space.kind != "z":
        raise GankitError(f"--prior norm keeps z on the prior's shell; a stylegan2 run is inverted in {space.kind}, "
                          "which has none: use --prior d or none")
    dev = run.device
    n, R = len(x), s.restarts
    xm = to_model(x.to(dev), "image").repeat_interleave(R, 0)  # (N R, C, H, W)
    m = masks.to(dev).repeat_interleave(R, 0)
    w = importance_weights(m)
    known = (~m).float().sum((1, 2, 3)).clamp_min(1.0)  # (N R,)

    def context(img: torch.Tensor) -> torch.Tensor:  # (N R,)
        return ((img - xm).abs().mean(1, keepdim=True) * w).sum((1, 2, 3)) / known

    def objective(img: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # (N R,)
        loss = context(img)
        if s.prior == "d":
            loss = loss + s.prior_weight * F.softplus(-D(img).reshape(len(img), -1).mean(1))
        elif s.prior == "norm":
            loss = loss + s.prior_weight * (v.pow(2).mean(1) - 1.0).pow(2)
        return loss

    # z: Yeh et al.'s plain Adam; w: the StyleGAN2 projector's ramps and noise, which W needs
    schedule = Schedule(s.lr) if space.kind == "z" else stylegan2_schedule(s.lr)
    found = search(space, objective, context, n, R, s.steps, schedule, s.seed, frozen_too=(D,), progress=progress)
    out = torch.where(masks.to(dev), from_model(found.images, "image"), x.to(dev)).cpu()
    info = {"context_start": found.start.min(1).values.cpu().tolist(),
            "context_end": found.end.gather(1, found.best[:, None])[:, 0].cpu().tolist(),
            "restarts": R, "steps": s.steps, "prior": s.prior, "prior_weight": s.prior_weight, "lr": s.lr,
            "space": space.kind}
    return out, info
