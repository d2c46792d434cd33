"""Gradient accumulation for the generation task (train.batch_gpu, docs/accumulation.md).

Each update splits this rank's batch into micro-batches of st.batch_gpu, backpropagates each
one's loss scaled by its share of the batch (`st.zero_grad`, `st.micro_batch`, one `st.apply`),
so the summed gradients are the whole batch's mean gradient, and steps once. For networks
without batch statistics the update is the whole batch's (`phases.d_phase`, `phases.g_phase`):
what the whole batch draws at random (WGAN-GP's alpha, the path-length projections, stylegan2's
noise inputs) is drawn once for it and sliced, G's update regenerates the D update's fakes micro-
batch by micro-batch instead of keeping their graphs, path length's running mean moves by the
whole half-batch's E[length], and stylegan2's w_avg moves once per whole-batch forward.
Augmentation draws and dropout masks are per micro-batch (equal in distribution), BatchNorm
statistics per micro-batch. Like the phases, nothing here reads a value back to the host.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gankit.regularizers import interpolation_weights
from gankit.tasks.generate.phases import (G_STATS, Batch, autocast, ada_p, d_finish, d_terms, differentiable_styles,
                                          g_terms)
from gankit.tasks.phases_common import frozen, stats
from gankit.util import full


def d_accumulated(st, b: Batch, noise_std: float = 0.0, with_r1: bool = False) -> Tensor:
    """`phases.d_phase` as micro-batches of st.batch_gpu: each one's loss, scaled by its share of
    the batch, is backpropagated on its own (DDP reduces after the last), then one guarded step.
    The fakes are made without G's graph (the G update regenerates them). Returns D_STATS over the
    whole batch (logits concatenated: ADA's r_t sees the whole batch, once)."""
    obj, G, p = st.obj, st.nets["G"], ada_p(st)
    B = b.z.shape[0]
    parts = micro_slices(B, st.batch_gpu) or [slice(0, B)]
    # WGAN-GP's alpha for the whole batch, drawn before anything else as the full batch draws it
    # (augmentation draws come first there: with augmentation it is equal in distribution only)
    alpha = interpolation_weights(b.x.shape, b.x.device, full(b.x[:1]).dtype, st.gens["aug"]) if obj.gp else None
    w_avg = _saved_w_avg(G)
    st.zero_grad("D")
    done = []
    for i, s in enumerate(parts):
        with st.micro_batch(last=i == len(parts) - 1):
            t = d_terms(st, micro(b, s), noise_std, with_r1, False, p, None if alpha is None else alpha[s])
            (t.loss * ((s.stop - s.start) / B)).backward()  # summed over micro-batches: the batch mean's gradient
        done.append((s, t._replace(x_fake=None)))
    t = _merge(done, B)
    st.apply("D", t.loss)
    _retrack(G, w_avg, (b.z, b.y, obj.bf16))  # the full batch's one G forward moved w_avg once
    return d_finish(st, t, with_r1)


def _merge(done: list, B: int):
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


def g_accumulated(st, b: Batch, noise_std: float = 0.0, with_pl: bool = False, same_fakes: bool = True) -> Tensor:
    """`phases.g_phase` as micro-batches of st.batch_gpu, each regenerating its fakes from its
    slice of b (G's graph for one micro-batch at a time; b.noise makes them the D update's);
    `same_fakes`: they are the D update's (train.reuse_fakes), whose forward already moved w_avg.
    The path-length penalty comes first, in chunks of the micro-batch size: its backward must
    come before the last micro-batch's, whose backward DDP reduces. Returns G_STATS."""
    obj, G, D, p = st.obj, st.nets["G"], st.nets["D"], ada_p(st)
    B = b.z.shape[0]
    parts = micro_slices(B, st.batch_gpu) or [slice(0, B)]
    w_avg = _saved_w_avg(G)
    st.zero_grad("G")
    with frozen(D):
        pl = pl_accumulated(st, b, parts[0].stop - parts[0].start) if with_pl and obj.pl else None
        done = []
        for i, s in enumerate(parts):
            with st.micro_batch(last=i == len(parts) - 1):
                t = g_terms(st, micro(b, s), None, noise_std, p)
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


def pl_accumulated(st, b: Batch, size: int) -> Tensor:
    """The path-length penalty of `path_length_penalty` on the same first half of the batch, in
    chunks of `size` samples, each chunk's share backpropagated at once (weight pl x pl_every);
    moves st.extra["pl"].a as the full batch does. Returns the penalty (detached).

    a's update needs E[length] over the whole half-batch before any chunk's penalty
    E[(length - a)^2] can be formed, so a first pass computes every chunk's lengths without the
    double-backward graph: under accumulation a path-length step costs one more forward and
    backward of G over those samples (every pl_every steps)."""
    obj, G, mean, gen = st.obj, st.nets["G"], st.extra["pl"], st.gens["aug"]
    n = max(1, b.z.shape[0] // 2)
    chunks = micro_slices(n, size) or [slice(0, n)]
    # The full batch's draws for these n samples, in its order: G's noise inputs (torch's
    # generator), then y ~ N(0, I) / sqrt(H W) (the augmentation generator)
    noise = G.noise_inputs(n, b.x.device)
    shape = (n, *b.x.shape[1:])  # the fakes' shape: the reals'
    dtype = full(b.x[:1]).dtype
    y_noise = torch.randn(shape, generator=gen, device=b.x.device, dtype=dtype) / math.sqrt(shape[2] * shape[3])

    def lengths(s: slice, create_graph: bool) -> Tensor:
        mix = None if b.mix is None else (b.mix[0][s], b.mix[1][s])
        ws = differentiable_styles(G.styles(b.z[s], _cut(b.y, s), mix=mix))  # (b, num_ws, w_dim)
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


def micro(b: Batch, s: slice) -> Batch:
    """Batch b's samples s (its noise inputs too)."""
    return Batch(b.x[s], _cut(b.y, s), b.z[s], _cut(b.c_cat, s), _cut(b.c_cont, s),
                 None if b.mix is None else (b.mix[0][s], b.mix[1][s]),
                 None if b.noise is None else [t[s] for t in b.noise])


def noise_inputs(st, n: int) -> list[Tensor] | None:
    """Under gradient accumulation, the noise inputs a generator with them (stylegan2) would draw
    in one forward of the whole batch of n, for b.noise (each micro-batch forward takes its
    slice: the fakes, and their regeneration in the G phase, are the full batch's); else None."""
    G = st.nets["G"]
    if micro_slices(n, st.batch_gpu) is None or not hasattr(G, "noise_inputs"):
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
