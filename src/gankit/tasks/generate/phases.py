"""The generation task's maths: one D update and one G update over tensors on the device.

No host synchronisation happens here (nothing is read back, no host tensor is copied in), so the
phases can be captured in a CUDA graph: each phase returns its scalars as one device tensor that
the task adds to the run's accumulator. Randomness comes in as arguments (the batch's latents)
or from generators the run owns (st.gens["aug"] for augmentation, penalties and noise; torch's
device generator for dropout and stylegan2's noise inputs), all saved in checkpoints. Updates go
through `st.update`, which holds the data-parallel averaging and the non-finite guard.

Gradient accumulation (st.batch_gpu, docs/accumulation.md): each update splits its batch into
micro-batches whose scaled losses are backpropagated one by one (`st.zero_grad`,
`st.micro_batch`, one `st.apply`); what a full batch draws at random (WGAN-GP's alpha, the
path-length projections, stylegan2's noise inputs) is drawn for the whole batch and sliced, so
for networks without batch statistics the update is the whole batch's.
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
from gankit.regularizers import (clip_weights_, gradient_penalty, interpolation_weights, r1_penalty,
                                 smooth_real_target)
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
    ws = G.styles(z, y, mix=mix)  # (B, num_ws, w_dim)
    x = G.synthesis(ws)  # (B, C, H, W)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) / math.sqrt(x[0, 0].numel())
    (jty,) = torch.autograd.grad((x * noise).sum(), ws, create_graph=True)  # J^T y: (B, num_ws, w_dim)
    lengths = jty.square().sum(2).mean(1).sqrt()  # (B,)
    with torch.no_grad():
        mean.a.copy_(mean.a.lerp(lengths.detach().mean().to(mean.a.dtype), decay))  # a += decay (E[length] - a)
    return (lengths - mean.a).square().mean()  # E[(|J^T y| - a)^2]


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


class _DTerms(NamedTuple):
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


def _d_terms(st, b: Batch, noise_std: float, with_r1: bool, keep_fake_graph: bool, p: Tensor | None,
             alpha: Tensor | None = None) -> _DTerms:
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
    return _DTerms(loss, gp, r1, r2, aux_d, info_d, real_logits, fake_logits, x_fake)


def d_phase(st, b: Batch, noise_std: float = 0.0, with_r1: bool = False,
            keep_fake_graph: bool = True) -> tuple[Tensor, Tensor | None]:
    """One D update on (b.x, G(b.z)). Returns (D_STATS tensor, the fakes).

    With `keep_fake_graph`, the fakes keep G's graph so the G phase can reuse them: one
    generator forward per step. Under gradient accumulation (st.batch_gpu below the batch) the
    update is the sum of its micro-batches' gradients, and the fakes returned are None: the G
    phase regenerates them micro-batch by micro-batch (b.noise holds stylegan2's noise inputs for
    the whole batch, so they are the same fakes)."""
    obj, D = st.obj, st.nets["D"]
    ada = st.extra["ada"] if obj.ada else None
    p = ada.p if ada else None  # ADA's probability, read on the device
    parts = micro_slices(b.z.shape[0], getattr(st, "batch_gpu", None))
    if parts is None:  # the whole batch at once
        t = _d_terms(st, b, noise_std, with_r1, keep_fake_graph, p)
        st.update("D", t.loss)  # backward, (data-parallel averaging), guarded optimiser step
        x_fake = t.x_fake
    else:
        t = _d_accumulated(st, b, parts, noise_std, with_r1, p)
        x_fake = None
    if obj.clip:  # a refused update left the weights as they were: clipping them again changes nothing
        clip_weights_(D, obj.clip)
    # 4. ADA: r_t over this update's augmented reals moves p in place, on the device (no read-back).
    # In a data-parallel job these are this rank's logits only (no collective is added here), so
    # each rank's p follows its own slice; the speed counts the global batch, as the images one
    # update shows D in all. Checkpoints keep rank 0's p, which every rank loads on resume.
    rt = ada.update(t.real_logits) if ada else t.gp.new_zeros(())

    with torch.no_grad():
        zero = t.loss.new_zeros(())
        scalars = stats(D_STATS, loss_d=t.loss, d_real=torch.sigmoid(t.real_logits).mean(),
                        d_fake=torch.sigmoid(t.fake_logits).mean(), acc_real=(t.real_logits > 0).float().mean(),
                        acc_fake=(t.fake_logits < 0).float().mean(), gp=t.gp, r1=t.r1,
                        r1_n=1.0 if with_r1 else 0.0, r2=t.r2, aux_d=t.aux_d, info_d=t.info_d,
                        ada_p=ada.p if ada else zero, ada_rt=rt)
    return scalars, x_fake


def _d_accumulated(st, b: Batch, parts: list[slice], noise_std: float, with_r1: bool, p: Tensor | None) -> _DTerms:
    """D's update as micro-batches: each one's loss, scaled by its share of the batch, is
    backpropagated on its own (DDP reduces after the last), then one guarded step. Returns the
    whole batch's terms (detached; logits concatenated, so ADA's r_t sees the whole batch)."""
    obj, G = st.obj, st.nets["G"]
    B = b.z.shape[0]
    # WGAN-GP's alpha for the whole batch, drawn before anything else as the full batch draws it
    # (augmentation draws come first there: with augmentation it is equal in distribution only)
    alpha = interpolation_weights(b.x.shape, b.x.device, full(b.x[:1]).dtype, st.gens["aug"]) if obj.gp else None
    w_avg = _saved_w_avg(G)
    st.zero_grad("D")
    done = []
    for i, s in enumerate(parts):
        with st.micro_batch(last=i == len(parts) - 1):
            t = _d_terms(st, _micro(b, s), noise_std, with_r1, False, p, None if alpha is None else alpha[s])
            (t.loss * ((s.stop - s.start) / B)).backward()  # summed over micro-batches: the batch mean's gradient
        done.append((s, t._replace(x_fake=None)))
    t = _merge(done, B)
    st.apply("D", t.loss)
    _retrack(G, w_avg, (b.z, b.y, obj.bf16))  # the full batch's one G forward moved w_avg once
    return t


def _merge(done: list, B: int) -> NamedTuple:
    """Micro-batches' terms as the whole batch's: 0-dim means weighted by each one's share,
    per-sample tensors (B,) concatenated, None kept."""
    first = done[0][1]
    out = []
    for k, v in enumerate(first):
        if v is None:
            out.append(None)
        elif v.dim() == 0:
            out.append(sum(t[k].detach() * ((s.stop - s.start) / B) for s, t in done))
        else:
            out.append(torch.cat([t[k].detach() for _, t in done]))
    return type(first)(*out)


class _GTerms(NamedTuple):
    loss: Tensor
    aux_g: Tensor
    info_g: Tensor


def _g_terms(st, b: Batch, x_fake: Tensor | None, noise_std: float, p: Tensor | None) -> _GTerms:
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
    return _GTerms(loss, aux_g, info_g)


def g_phase(st, b: Batch, x_fake: Tensor | None, noise_std: float = 0.0, with_pl: bool = False,
            same_fakes: bool = False) -> Tensor:
    """One G update: the (just updated) D judges `x_fake` (regenerated from b.z when None); with
    `with_pl` (lazy, every pl_every G updates) plus the path-length penalty on half the batch.
    Returns the G_STATS tensor. Under gradient accumulation the fakes are always regenerated, per
    micro-batch; `same_fakes` says they are the D phase's (whose forward already moved G's
    running statistics), not fresh ones."""
    obj, D, gen = st.obj, st.nets["D"], st.gens["aug"]
    p = st.extra["ada"].p if obj.ada else None  # as the D phase left it
    parts = micro_slices(b.z.shape[0], getattr(st, "batch_gpu", None))
    if parts is not None:
        return _g_accumulated(st, b, parts, noise_std, with_pl, same_fakes, p)
    with frozen(D):  # backward computes G's gradients only
        t = _g_terms(st, b, x_fake, noise_std, p)
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


def _g_accumulated(st, b: Batch, parts: list[slice], noise_std: float, with_pl: bool, same_fakes: bool,
                   p: Tensor | None) -> Tensor:
    """G's update as micro-batches, each regenerating its fakes from its slice of b (G's graph for
    one micro-batch at a time); the path-length penalty first, in chunks of the micro-batch size
    (its backward must come before the last micro-batch's, after which DDP has reduced)."""
    obj, G, D = st.obj, st.nets["G"], st.nets["D"]
    B = b.z.shape[0]
    w_avg = _saved_w_avg(G)
    st.zero_grad("G")
    with frozen(D):
        pl = pl_accumulated(st, b, parts[0].stop - parts[0].start) if with_pl and obj.pl else None
        done = []
        for i, s in enumerate(parts):
            with st.micro_batch(last=i == len(parts) - 1):
                t = _g_terms(st, _micro(b, s), None, noise_std, p)
                (t.loss * ((s.stop - s.start) / B)).backward()
            done.append((s, t))
        t = _merge(done, B)
        loss = t.loss if pl is None else t.loss + obj.pl * obj.pl_every * pl
        n = max(1, B // 2)  # before the step: the full batch's forwards ran with G's weights as they are now
        _retrack(G, w_avg, *([] if same_fakes else [(b.z, b.y, obj.bf16)]),
                 *([] if pl is None else [(b.z[:n], _cut(b.y, slice(0, n)), False)]))
        st.apply("G", loss)
    zero = loss.new_zeros(())
    return stats(G_STATS, loss_g=loss, aux_g=t.aux_g, info_g=t.info_g, pl=zero if pl is None else pl,
                 pl_n=0.0 if pl is None else 1.0, pl_mean=st.extra["pl"].a if obj.pl else zero)


def pl_accumulated(st, b: Batch, micro: int) -> Tensor:
    """The path-length penalty of `path_length_penalty` on the same first half of the batch, in
    chunks of `micro` samples, each chunk's share backpropagated at once (weight pl x pl_every);
    moves st.extra["pl"].a as the full batch does. Returns the penalty (detached).

    a's update needs E[length] over the whole half-batch before any chunk's penalty
    E[(length - a)^2] can be formed, so a first pass computes every chunk's lengths without the
    double-backward graph: under accumulation a path-length step costs one more forward and
    backward of G over those samples (every pl_every steps)."""
    obj, G, mean, gen = st.obj, st.nets["G"], st.extra["pl"], st.gens["aug"]
    n = max(1, b.z.shape[0] // 2)
    chunks = micro_slices(n, micro) or [slice(0, n)]
    # The full batch's draws for these n samples, in its order: G's noise inputs (torch's
    # generator), then y ~ N(0, I) / sqrt(H W) (the augmentation generator)
    noise = G.noise_inputs(n, b.x.device)
    shape = (n, *b.x.shape[1:])  # the fakes' shape: the reals'
    dtype = full(b.x[:1]).dtype
    y_noise = torch.randn(shape, generator=gen, device=b.x.device, dtype=dtype) / math.sqrt(shape[2] * shape[3])

    def lengths(s: slice, create_graph: bool) -> Tensor:
        mix = None if b.mix is None else (b.mix[0][s], b.mix[1][s])
        ws = G.styles(b.z[s], _cut(b.y, s), mix=mix)  # (b, num_ws, w_dim)
        x = G.synthesis(ws, [t[s] for t in noise])  # (b, C, H, W)
        (jty,) = torch.autograd.grad((x * y_noise[s]).sum(), ws, create_graph=create_graph)
        return jty.square().sum(2).mean(1).sqrt()  # (b,)

    every = torch.cat([lengths(s, False).detach() for s in chunks])  # pass 1: (n,) without the graph
    with torch.no_grad():  # a += decay (E[length] - a), E over all n as in the full batch
        mean.a.copy_(mean.a.lerp(every.mean().to(mean.a.dtype), obj.pl_decay))
    total = every.new_zeros(())
    for s in chunks:  # pass 2: each chunk's share of E[(length - a)^2], with the graph
        pen = (lengths(s, True) - mean.a).square().sum() / n
        (obj.pl * obj.pl_every * pen).backward()
        total = total + pen.detach()
    return total


def micro_slices(n: int, micro: int | None) -> list[slice] | None:
    """A batch of n split into consecutive micro-batches of `micro` (the last one shorter when
    `micro` does not divide n), or None when it is one batch."""
    if micro is None or micro >= n:
        return None
    return [slice(i, min(i + micro, n)) for i in range(0, n, micro)]


def _cut(t, s: slice):
    return None if t is None else t[s]


def _micro(b: Batch, s: slice) -> Batch:
    """Batch b's samples s (its noise inputs too)."""
    return Batch(b.x[s], _cut(b.y, s), b.z[s], _cut(b.c_cat, s), _cut(b.c_cont, s),
                 None if b.mix is None else (b.mix[0][s], b.mix[1][s]),
                 None if b.noise is None else [t[s] for t in b.noise])


def noise_inputs(st, n: int) -> list[Tensor] | None:
    """Under gradient accumulation, the noise inputs a generator with them (stylegan2) would draw
    in one forward of the whole batch of n, for b.noise (each micro-batch forward takes its
    slice: the fakes, and their regeneration in the G phase, are the full batch's); else None."""
    G = st.nets["G"]
    if micro_slices(n, getattr(st, "batch_gpu", None)) is None or not hasattr(G, "noise_inputs"):
        return None
    return G.noise_inputs(n, st.device)


def _saved_w_avg(G) -> Tensor | None:
    w = getattr(G, "w_avg", None)
    return None if w is None else w.clone()


def _retrack(G, saved: Tensor | None, *batches: tuple) -> None:
    """stylegan2's G moves its running mean w_avg on every training forward, by that forward's
    mean w: micro-batch forwards (and their regeneration, and the path-length passes) would move
    it once each. Put it back and move it once per forward the full-batch step makes over
    `batches`, (z, y, bf16) each, in that step's order."""
    if saved is None:
        return
    G.w_avg.copy_(saved)
    with torch.no_grad():
        for z, y, bf16 in batches:
            with autocast(bf16, z.device):
                G.mapping(z, y)


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
