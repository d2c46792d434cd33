"""The generation task's maths: one D update and one G update over tensors on the device.

No host synchronisation happens here (nothing is read back, no host tensor is copied in), so the
phases can be captured in a CUDA graph: each phase returns its scalars as one device tensor that
the task adds to the run's accumulator. Randomness comes in as arguments (the batch's latents)
or from generators the run owns (st.gens["aug"] for augmentation, penalties and noise; torch's
device generator for dropout and stylegan2's noise inputs), all saved in checkpoints. Updates go
through `st.update`, which holds the data-parallel averaging and the non-finite guard.

The updates over micro-batches (train.batch_gpu) are `accumulate.py`, from the same terms
(`d_terms`, `g_terms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.augment import ada_augment, diff_augment
from gankit.losses import LOSSES, GANLoss
from gankit.models.base import Judge
from gankit.regularizers import clip_weights_, gradient_penalty, r1_penalty, smooth_real_target
from gankit.tasks.phases_common import frozen, stats
from gankit.util import full

# Order of the scalars in the tensors the phases return. ada_p: p after each D update; ada_rt: that
# update's r_t = E[sign(D(augmented real))] (both 0 without ADA). pl: the path-length penalty, pl_n:
# 1 on the G updates that computed it, pl_mean: the running mean a of path lengths after it.
D_STATS = ("loss_d", "d_real", "d_fake", "acc_real", "acc_fake", "gp", "r1", "r1_n", "r2", "aux_d", "info_d",
           "ada_p", "ada_rt")
G_STATS = ("loss_g", "aux_g", "info_g", "pl", "pl_n", "pl_mean")
STAT_NAMES = D_STATS + G_STATS


class Batch(NamedTuple):
    x: Tensor  # (B, C, H, W) or (B, D) real examples, model space
    y: Tensor | None  # (B,) labels of the real examples, given to G for the fakes too
    z: Tensor  # (B, G.in_dim) generator input (InfoGAN codes included)
    c_cat: Tensor | None = None  # (B,) InfoGAN categorical code
    c_cont: Tensor | None = None  # (B, L) InfoGAN continuous codes
    mix: tuple[Tensor, Tensor] | None = None  # stylegan2 style mixing: (z2 (B, in_dim), cut (B,) int64)
    # stylegan2's noise inputs, one (B, 1, H, W) per layer, under gradient accumulation (`noise_inputs`);
    # None: G draws its own
    noise: list[Tensor] | None = None


@dataclass(frozen=True)
class Objective:
    """What the step optimises, resolved once from the config."""

    loss: GANLoss
    real_target: float = 1.0  # 1 - one-sided label smoothing
    gp: float = 0.0  # WGAN-GP weight
    r1: float = 0.0  # R1 weight gamma
    r1_every: int = 16
    r2: float = 0.0  # R2 weight: R1's penalty at the fakes, on R1's schedule
    pl: float = 0.0  # path-length regularisation weight (stylegan2)
    pl_every: int = 4
    pl_decay: float = 0.01
    clip: float = 0.0  # weight clipping bound
    diffaug: str = ""  # DiffAugment policy
    ada: bool = False  # D's inputs go through ada_augment at st.extra["ada"].p (adaptive or fixed)
    acgan_classes: int = 0  # > 0: D's aux head starts with this many class logits (ACGAN)
    info_cat: int = 0
    info_cont: int = 0
    info_weight: float = 1.0
    aux_weight: float = 1.0
    bf16: bool = False  # forwards under bfloat16 autocast (train.precision as the trunk resolved it)
    labels: bool = False  # the step needs the real examples' labels (conditional G or a class head in D)

    @classmethod
    def from_config(cls, cfg, n_classes: int = 0, device: torch.device | str = "cpu") -> Objective:
        r = cfg.reg
        return cls(
            loss=LOSSES[cfg.train.loss], real_target=smooth_real_target(r.label_smoothing), gp=r.gp, r1=r.r1,
            r1_every=r.r1_every, r2=r.r2, pl=r.pl, pl_every=r.pl_every, pl_decay=r.pl_decay, clip=r.clip,
            diffaug=r.diffaug.replace(" ", ""), ada=r.ada or r.ada_p > 0,
            acgan_classes=n_classes if cfg.model.d_head == "acgan" else 0,
            info_cat=cfg.model.info_cat, info_cont=cfg.model.info_cont,
            info_weight=r.info_weight, aux_weight=r.aux_weight,
            bf16=cfg.train.precision == "bf16",  # the trainer resolved auto (gankit.training.precision)
            labels=cfg.model.conditional or cfg.model.d_head != "plain")

    @property
    def uses_aux(self) -> bool:
        return bool(self.acgan_classes or self.info_cat or self.info_cont)


def autocast(bf16: bool, device: torch.device):
    """bfloat16 autocast for the forward passes when asked for; a no-op context otherwise."""
    # No cast cache: a CUDA graph must not keep casts from capture time (torch docs, CUDA graphs).
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False)


def d_input(x: Tensor, obj: Objective, gen: torch.Generator | None, noise_std: float,
            p: Tensor | None = None) -> Tensor:
    """What D sees: DiffAugment (same policy for real and fake) or ADA's pipeline at
    probability `p` (a device tensor), then instance noise."""
    if obj.diffaug:
        x = diff_augment(x, obj.diffaug, generator=gen)
    if obj.ada:
        x = ada_augment(x, p, generator=gen)
    if noise_std > 0:
        x = x + noise_std * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return x


def fakes(st, b: Batch) -> Tensor:
    """G(b.z, b.y) through the step's G forward; with style mixing, G(z, y, mix=(z2, cut)); with
    b.noise, stylegan2's noise inputs given."""
    kw = {k: v for k, v in (("mix", b.mix), ("noise", b.noise)) if v is not None}
    return st.fwd["G"](b.z, b.y, **kw)


class PathLengthMean:
    """The running mean a of path lengths |J_w^T y| for path-length regularisation: a 0-dim
    full-precision device tensor updated in place (a captured graph keeps the same tensor), kept in the
    task's checkpointed state, not in G, so EMA copies and exported models do not carry it. In a
    data-parallel job each rank keeps its own, from its own slice; checkpoints keep rank 0's.

    state_dict() -> {"a": tensor}."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.a = torch.zeros((), device=device)  # torch's default dtype: float32 (float64 in reference runs)

    def state_dict(self) -> dict:
        return {"a": self.a.detach().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.a.copy_(state["a"])


def path_length_penalty(G, z: Tensor, y: Tensor | None, mix: tuple[Tensor, Tensor] | None, mean: PathLengthMean,
                        decay: float, generator: torch.Generator | None = None) -> Tensor:
    """StyleGAN2's path-length penalty (Karras et al. 2020, eq. 4) on G(z, y), unscaled; moves `mean`.

    With y ~ N(0, I) / sqrt(H W) of the images' shape, J^T y = d sum(G(ws) * y) / d ws, and a
    sample's length is sqrt(mean over the num_ws styles of |J^T y|^2 summed over w_dim). Then
    a <- a + decay (E[length] - a), and the penalty is E[(length - a)^2] with the updated a held
    constant (the official code lets a small gradient flow through a's update; decay 0.01)."""
    ws = differentiable_styles(G.styles(z, y, mix=mix))  # (B, num_ws, w_dim)
    x = G.synthesis(ws)  # (B, C, H, W)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) / math.sqrt(x[0, 0].numel())
    (jty,) = torch.autograd.grad((x * noise).sum(), ws, create_graph=True)  # J^T y: (B, num_ws, w_dim)
    lengths = jty.square().sum(2).mean(1).sqrt()  # (B,)
    with torch.no_grad():
        mean.a.copy_(mean.a.lerp(lengths.detach().mean().to(mean.a.dtype), decay))  # a += decay (E[length] - a)
    return (lengths - mean.a).square().mean()  # E[(|J^T y| - a)^2]


def differentiable_styles(ws: Tensor) -> Tensor:
    """The styles as a leaf the penalty differentiates by when nothing before them trains (the
    mapping network frozen, train.freeze_g): no gradient is lost, none would reach it."""
    return ws if ws.requires_grad else ws.detach().requires_grad_(True)


def info_loss(aux: Tensor, b: Batch, obj: Objective) -> Tensor:
    """InfoGAN's lower bound on I(c; G(z, c)), negated: cross-entropy of the categorical code plus
    the Gaussian negative log-likelihood (unit variance) of the continuous codes."""
    a = aux[:, obj.acgan_classes:]  # (B, info_cat + info_cont)
    loss = aux.new_zeros(())
    if obj.info_cat:
        loss = loss + F.cross_entropy(a[:, :obj.info_cat], b.c_cat)
    if obj.info_cont:
        loss = loss + 0.5 * (a[:, obj.info_cat:] - b.c_cont).square().sum(1).mean()
    return loss


class DTerms(NamedTuple):
    """One D forward's loss and what the stats report of it (logits (B,), penalties 0-dim)."""

    loss: Tensor
    gp: Tensor
    r1: Tensor
    r2: Tensor
    aux_d: Tensor
    info_d: Tensor
    real_logits: Tensor
    fake_logits: Tensor
    x_fake: Tensor


def d_terms(st, b: Batch, noise_std: float, with_r1: bool, keep_fake_graph: bool, p: Tensor | None,
             alpha: Tensor | None = None) -> DTerms:
    """D's loss on (b.x, G(b.z)): the adversarial loss, its penalties and auxiliary heads."""
    obj, D, gen = st.obj, st.nets["D"], st.gens["aug"]
    amp = autocast(obj.bf16, b.x.device)
    # 1. Fakes. detach() below keeps G out of D's backward pass.
    with amp, torch.set_grad_enabled(keep_fake_graph):
        x_fake = fakes(st, b)  # (B, C, H, W)
    xr = d_input(b.x, obj, gen, noise_std, p)  # the penalties below see these augmented inputs too
    xf = d_input(x_fake.detach(), obj, gen, noise_std, p)

    # 2. The adversarial loss, real up, fake down (losses in fp32 whatever the forward's precision).
    with amp:  # real and fake logits (and aux heads) in D's one forward of the update
        real_logits, fake_logits, aux_r, aux_f = st.fwd["judge"](xr, xf, b.y, bool(obj.acgan_classes), obj.uses_aux)
    real_logits, fake_logits = full(real_logits), full(fake_logits)  # (B,)
    aux_r = None if aux_r is None else full(aux_r)
    aux_f = None if aux_f is None else full(aux_f)
    loss = obj.loss.d(real_logits, fake_logits, obj.real_target) if obj.loss.bce \
        else obj.loss.d(real_logits, fake_logits)
    zero = loss.new_zeros(())
    gp = r1 = r2 = aux_d = info_d = zero

    # 3. Regularisers and auxiliary heads (penalties through D itself, not its DDP wrapper).
    if obj.gp:
        gp = gradient_penalty(D, full(xr), full(xf), b.y, generator=gen, alpha=alpha)  # E[(||grad D(x_hat)|| - 1)^2], fp32
        loss = loss + obj.gp * gp
    if with_r1 and obj.r1:
        r1 = r1_penalty(D, full(xr.detach()), b.y)  # in fp32 (outside autocast), whatever the forward's precision  # E[||grad D(x)||^2] at real x
        # lazy: k times the weight, every k steps; st.reg_scale: the burn-in's factor (else 1)
        loss = loss + 0.5 * obj.r1 * obj.r1_every * st.reg_scale * r1
    if with_r1 and obj.r2:
        r2 = r1_penalty(D, full(xf.detach()), b.y)  # R2: E[||grad D(x)||^2] at the (augmented) fakes
        loss = loss + 0.5 * obj.r2 * obj.r1_every * st.reg_scale * r2
    if obj.uses_aux:
        if obj.acgan_classes:  # D classifies real and fake by the label they carry
            K = obj.acgan_classes
            aux_d = F.cross_entropy(aux_r[:, :K], b.y) + F.cross_entropy(aux_f[:, :K], b.y)
            loss = loss + obj.aux_weight * aux_d
        if obj.info_cat or obj.info_cont:  # Q (D's aux head) learns to recover the codes
            info_d = info_loss(aux_f, b, obj)
            loss = loss + obj.info_weight * info_d
    return DTerms(loss, gp, r1, r2, aux_d, info_d, real_logits, fake_logits, x_fake)


def d_phase(st, b: Batch, noise_std: float = 0.0, with_r1: bool = False,
            keep_fake_graph: bool = True) -> tuple[Tensor, Tensor]:
    """One D update on (b.x, G(b.z)). Returns (D_STATS tensor, the fakes).

    With `keep_fake_graph`, the fakes keep G's graph so the G phase can reuse them: one
    generator forward per step. (Under gradient accumulation: `accumulate.d_accumulated`.)"""
    t = d_terms(st, b, noise_std, with_r1, keep_fake_graph, ada_p(st))
    st.update("D", t.loss)  # backward, (data-parallel averaging), guarded optimiser step
    return d_finish(st, t, with_r1), t.x_fake


def ada_p(st) -> Tensor | None:
    """ADA's probability, read on the device (None without ADA)."""
    return st.extra["ada"].p if st.obj.ada else None


def d_finish(st, t: DTerms, with_r1: bool) -> Tensor:
    """After D's step: weight clipping, ADA's p moved by this update's r_t, the D_STATS tensor."""
    obj = st.obj
    ada = st.extra["ada"] if obj.ada else None
    if obj.clip:  # a refused update left the weights as they were: clipping them again changes nothing
        clip_weights_(st.nets["D"], obj.clip)
    # 4. ADA: r_t over this update's augmented reals moves p in place, on the device (no read-back).
    # In a data-parallel job these are this rank's logits only (no collective is added here), so
    # each rank's p follows its own slice; the speed counts the global batch, as the images one
    # update shows D in all. Checkpoints keep rank 0's p, which every rank loads on resume.
    rt = ada.update(t.real_logits) if ada else t.gp.new_zeros(())

    with torch.no_grad():
        zero = t.loss.new_zeros(())
        return stats(D_STATS, loss_d=t.loss, d_real=torch.sigmoid(t.real_logits).mean(),
                     d_fake=torch.sigmoid(t.fake_logits).mean(), acc_real=(t.real_logits > 0).float().mean(),
                     acc_fake=(t.fake_logits < 0).float().mean(), gp=t.gp, r1=t.r1,
                     r1_n=1.0 if with_r1 else 0.0, r2=t.r2, aux_d=t.aux_d, info_d=t.info_d,
                     ada_p=ada.p if ada else zero, ada_rt=rt)


class GTerms(NamedTuple):
    loss: Tensor
    aux_g: Tensor
    info_g: Tensor


def g_terms(st, b: Batch, x_fake: Tensor | None, noise_std: float, p: Tensor | None) -> GTerms:
    """G's adversarial loss (and auxiliary heads) with D frozen: the (just updated) D judges
    `x_fake`, regenerated from b when None."""
    obj, D, gen = st.obj, st.nets["D"], st.gens["aug"]
    with autocast(obj.bf16, b.x.device):
        if x_fake is None:
            x_fake = fakes(st, b)
        h_f = D.features(d_input(x_fake, obj, gen, noise_std, p))
        fake_logits = full(D.head(h_f, b.y))  # (B,)
        real_logits = full(D(d_input(b.x, obj, gen, noise_std, p), b.y)) if obj.loss.g_needs_real else None
        aux_f = full(D.aux(h_f)) if obj.uses_aux else None
    loss = obj.loss.g(fake_logits, real_logits)
    aux_g = info_g = loss.new_zeros(())
    if obj.uses_aux:
        if obj.acgan_classes:  # G makes fakes D classifies as their label
            aux_g = F.cross_entropy(aux_f[:, :obj.acgan_classes], b.y)
            loss = loss + obj.aux_weight * aux_g
        if obj.info_cat or obj.info_cont:  # G makes its codes recoverable
            info_g = info_loss(aux_f, b, obj)
            loss = loss + obj.info_weight * info_g
    return GTerms(loss, aux_g, info_g)


def g_phase(st, b: Batch, x_fake: Tensor | None, noise_std: float = 0.0, with_pl: bool = False) -> Tensor:
    """One G update: the (just updated) D judges `x_fake` (regenerated from b.z when None); with
    `with_pl` (lazy, every pl_every G updates) plus the path-length penalty on half the batch.
    Returns the G_STATS tensor. (Under gradient accumulation: `accumulate.g_accumulated`.)"""
    obj, D, gen = st.obj, st.nets["D"], st.gens["aug"]
    p = ada_p(st)  # as the D phase left it
    with frozen(D):  # backward computes G's gradients only
        t = g_terms(st, b, x_fake, noise_std, p)
        loss, zero = t.loss, t.loss.new_zeros(())
        pl = zero
        pl_mean = st.extra["pl"].a if obj.pl else zero
        if with_pl and obj.pl:
            # On half the batch (the paper's pl_batch_shrink 2): the double backward through G is the
            # costly part. Through G itself, not its DDP wrapper, as the penalties through D; in fp32.
            n = max(1, b.z.shape[0] // 2)
            mix = None if b.mix is None else (b.mix[0][:n], b.mix[1][:n])
            pl = path_length_penalty(st.nets["G"], b.z[:n], None if b.y is None else b.y[:n], mix, st.extra["pl"],
                                     obj.pl_decay, generator=gen)
            loss = loss + obj.pl * obj.pl_every * pl  # lazy: k times the weight, every k G steps
        st.update("G", loss)
    return stats(G_STATS, loss_g=loss, aux_g=t.aux_g, info_g=t.info_g, pl=pl,
                 pl_n=1.0 if with_pl and obj.pl else 0.0, pl_mean=pl_mean)


class _Bare:
    """The little of a training state the phases use, for one step outside a trainer."""

    def __init__(self, G, D, opt_g, opt_d, obj: Objective, gen: torch.Generator | None):
        self.nets, self.obj, self.gens = {"G": G, "D": D}, obj, {"aug": gen}
        # no ADA state: gan_step runs without ADA
        self.extra = {"pl": PathLengthMean(next(G.parameters()).device)} if obj.pl else {}
        self.fwd = {"G": G, "judge": Judge(D)}
        self.opts = {"G": opt_g, "D": opt_d}
        self.reg_scale = torch.ones((), device=next(D.parameters()).device)  # no burn-in: penalties at full weight

    def update(self, name: str, loss: Tensor) -> None:
        opt = self.opts[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def gan_step(G, D, opt_g, opt_d, b: Batch, obj: Objective, gen: torch.Generator | None = None) -> Tensor:
    """One D update and one G update reusing the same fakes, without a trainer (tests, notebooks).
    Returns the STAT_NAMES tensor."""
    st = _Bare(G, D, opt_g, opt_d, obj, gen)
    d_stats, x_fake = d_phase(st, b)
    return torch.cat([d_stats, g_phase(st, b, x_fake)])
