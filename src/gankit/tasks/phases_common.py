"""What every task's phases write the same way: D frozen while G updates (`frozen`, also what
latent search freezes G with), and the step's scalars handed to the trainer by name (`stats`);
and what the image-restoration tasks (denoise, recon) share: G's residual estimate (`estimate`)
and the conditional-PatchGAN + L1 step over it (`paired_step`, its weights `PairedObjective`).

The trainer sums each step's scalars into `st.acc`, one slot per name of the task's
`stat_names`; `stats` builds that vector from keyword names, so no phase lines up a positional
stack with a tuple defined elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gankit.losses import LOSSES
from gankit.util import full


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """No gradients for the modules' parameters inside the block: D while G updates (G's backward
    through D then computes G's gradients only; D has had its update this step), or G and a
    prior while a latent is searched. Each parameter's requires_grad is restored on the way out,
    whatever happens."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def stats(names: tuple[str, ...], dtype: torch.dtype | None = None, **named: Tensor | float) -> Tensor:
    """The step's scalars as one vector in `names` order (a task's `stat_names`), each detached;
    a name not given is 0, a plain number (a count such as gan_steps=1.0) a 0-d tensor like the
    first tensor given. `dtype` casts every entry (None: the tensors' own dtype). Allocates on the
    device only (no host copy), so it is safe inside a captured CUDA graph."""
    unknown = set(named) - set(names)
    if unknown:
        raise KeyError(f"stats: {', '.join(sorted(unknown))} not in the task's names {names}")
    ref = next(v for v in named.values() if isinstance(v, Tensor))
    if dtype is not None:
        ref = ref.to(dtype)
    out = []
    for name in names:
        v = named.get(name, 0.0)
        if isinstance(v, Tensor):
            out.append(v.detach() if dtype is None else v.detach().to(dtype))
        else:
            out.append(ref.new_full((), float(v)))
    return torch.stack(out)


PAIRED_STATS = ("loss_d", "loss_g", "adv_g", "l1", "d_real", "d_fake")


class LossPair:
    """For a task's objective with a `loss` field (train.loss, a name in `gankit.losses.LOSSES`):
    `pair`, its D and G functions."""

    @property
    def pair(self):
        return LOSSES[self.loss]


@dataclass(frozen=True)
class PairedObjective(LossPair):
    """`paired_step`'s st.obj: the weights of G's adversarial and L1 terms, whether G's output is a
    residual on its input (`estimate`), and the loss pair by name (train.loss)."""

    gan: float = 1.0
    l1: float = 100.0
    residual: bool = True
    loss: str = "ns"


def estimate(G, y: Tensor, residual: bool) -> Tensor:
    """G's estimate of the true image from the model-space degraded image y (B, C, H, W): y plus
    G's correction (residual), or G's output alone."""
    return y + G(y) if residual else G(y)


def _judge(D, y: Tensor, img: Tensor) -> Tensor:
    return full(D(torch.cat([y, img], 1)).flatten(1))  # (B, patches)


def paired_step(st, y: Tensor, x: Tensor, out: Tensor) -> Tensor:
    """One D update, then one G update, of a conditional PatchGAN (pix2pix) over G's estimate
    `out` of the true image x from the input y, all (B, C, H, W) in model space; returns the
    PAIRED_STATS vector. `out` is whatever the task makes of G's output (recon: after its
    data-consistency step), built on G's graph; st.obj has `pair`, `gan` and `l1`.

        D:  pair.d(D(cat(y, x)), D(cat(y, out)))          is this the true image of that input?
        G:  gan pair.g(D(cat(y, out))) + l1 |out - x|_1    (mean over pixels and channels)
    """
    obj, D = st.obj, st.nets["D"]
    pair = obj.pair
    real_l = _judge(st.fwd["D"], y, x)
    fake_l = _judge(st.fwd["D"], y, out.detach())
    loss_d = pair.d(real_l, fake_l)
    st.update("D", loss_d)
    with frozen(D):  # G's update reaches D's input only
        adv = pair.g(_judge(D, y, out), real_l.detach() if pair.g_needs_real else None)
        l1 = (out - x).abs().mean()
        loss_g = obj.gan * adv + obj.l1 * l1
        st.update("G", loss_g)
    with torch.no_grad():
        return stats(PAIRED_STATS, loss_d=loss_d, loss_g=loss_g, adv_g=adv, l1=l1,
                     d_real=torch.sigmoid(real_l).mean(), d_fake=torch.sigmoid(fake_l).mean())
