"""The text task's maths: MLE, RelGAN and SeqGAN steps over encoded lines.

    x      = <bos> x_1 .. x_n <eos> <pad>..       (B, L + 2) ids; G predicts positions 1..L+1
    MLE:   G: -sum_t log p_G(x_t | x_<t) / #tokens                      (teacher forcing)

  RelGAN (Nie et al. 2019), after text.pretrain_steps of MLE:
    o_t    = G's logits at step t;  g_t ~ Gumbel(0, 1)
    x_t    = argmax(o_t + g_t)                     fed back as the next input (no gradient)
    y_t    = softmax(beta (o_t + g_t))             the relaxed one-hot D sees (B, L + 1, V)
    beta   = beta_max ** (t_adv / N_adv)           RelGAN's exponential temperature schedule
    D:     softplus(-(D(x_real) - D(y_fake)))      relativistic standard GAN (RSGAN), per pair
    G:     softplus(-(D(y_fake) - D(x_real)))

  SeqGAN (Yu et al. 2017), after MLE pretraining and text.d_pretrain_steps of D on real lines
  against G's samples:
    y      ~ G (temperature 1), no gradient       (B, L + 1) ids
    Q_t    = mean over K completions of y_<=t drawn from G of sigmoid(D(completion)), scored
             every text.rollout_every tokens and at the last; a token takes the reward of the
             next scored prefix; Q at the end of a line is sigmoid(D(y))
    G:     -sum_t log p_G(y_t | y_<t) (Q_t - b_t) / #tokens       REINFORCE; b_t = the batch's
             mean Q_t, a baseline (not in the paper) that lowers the variance, not the mean
    D:     BCE(D(x_real), 1) + BCE(D(y), 0)

  ORGAN (Guimaraes et al. 2017) is SeqGAN on SMILES with a chemistry objective O in the reward of
  each scored completion (text.objective, `objectives.py`), lambda = 1 - text.objective_weight:
    R(y)   = lambda sigmoid(D(y)) + (1 - lambda) O(y)       O in [0, 1]; 0 for an invalid molecule
  D's pretraining may have its own Adam ("D_pre", text.d_pretrain_lr), so that a D pretrained at
  a high rate (SeqGAN's D needs 2,000 steps at 1e-3) keeps the adversarial phase's rate after.

  LatentGAN (Prykhodko et al. 2019): an autoencoder first, for text.pretrain_steps ("ae"):
    c      = E(x) + 0.1 n,  n ~ N(0, I)            a denoising code (text.latent_noise)
    AE:    -sum_t log p_dec(x_t | x_<t, c) / #tokens   (E and G's decoder, optimiser "AE")
  then ("gan") a WGAN-GP in the code space, E and the decoder frozen:
    D:     D(M(z)) - D(E(x)) + lambda (||grad D(c_hat)|| - 1)^2     train.n_critic times, reg.gp
    G:     -D(M(z))                                 (G's mapper M, optimiser "G_adv")
    sample = decoder(M(z))

MLE updates G through its own Adam ("G", train.lr_g), the adversarial phase through a second
one ("G_adv", text.adv_lr), as RelGAN keeps separate pretraining and adversarial optimisers.
A fake line ends at its first <eos>; D sees <pad> one-hots after it, as after a real line's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.data.text import EOS, PAD
from gankit.losses import d_bce, d_relativistic_pairing, d_wasserstein, g_relativistic_pairing, g_wasserstein
from gankit.regularizers import gradient_penalty
from gankit.models.text import one_hot
from gankit.tasks.phases_common import frozen, stats
from gankit.util import eval_mode, full

# the step's scalars, handed to the trainer as float32 whatever torch's default dtype
STATS = ("loss_g", "nll", "loss_d", "d_real", "d_fake", "reward", "objective", "gan_steps", "d_steps")


@dataclass(frozen=True)
class Objective:
    method: str = "mle"
    rollouts: int = 8
    rollout_every: int = 4
    latent_noise: float = 0.1
    gp: float = 10.0
    weight: float = 0.0  # ORGAN's 1 - lambda: the objective's share of the reward
    score: Callable[[Tensor], Tensor] | None = None  # (N, T) token ids -> (N,) objective in [0, 1], on the host
    d_group: str = "D"  # the optimiser of D's pretraining steps ("D_pre" with text.d_pretrain_lr)


def mle_phase(st, ids: Tensor, y: Tensor | None) -> Tensor:
    """One teacher-forced maximum-likelihood step of G."""
    total, count = st.fwd["G"].nll(ids, y)
    nll = total / count.clamp_min(1)  # nats per token
    st.update("G", nll)
    return stats(STATS, torch.float32, loss_g=nll, nll=nll)


def relgan_phase(st, ids: Tensor, y: Tensor | None, beta: Tensor) -> Tensor:
    """One D and one G update of RelGAN's relativistic objective on Gumbel-softmax samples."""
    G, D = st.fwd["G"], st.fwd["D"]
    vocab, length = st.nets["G"].vocab, ids.shape[1] - 1
    real = one_hot(ids[:, 1:], vocab)  # (B, L + 1, V): what G would emit
    soft, _ = G.gumbel(length, beta, y, st.gens.get("aug"), len(ids))
    real_l, fake_l = D(real, y), D(soft.detach(), y)
    loss_d = d_relativistic_pairing(real_l, fake_l)
    st.update("D", loss_d)
    with frozen(st.nets["D"]):
        fake_g = st.nets["D"](soft, y)
        loss_g = g_relativistic_pairing(fake_g, st.nets["D"](real, y).detach())
        st.update("G_adv", loss_g)
    return stats(STATS, torch.float32, loss_g=loss_g, loss_d=loss_d, d_real=torch.sigmoid(real_l).mean(),
                 d_fake=torch.sigmoid(fake_l).mean(), gan_steps=1.0, d_steps=1.0)


def _alive(seq: Tensor) -> Tensor:
    """(B, T) bool: positions up to and including the first <eos> (the tokens G chose)."""
    ended = torch.cumsum((seq == EOS).long(), 1)
    return ((ended == 0) | ((ended == 1) & (seq == EOS))) & (seq != PAD)


@torch.no_grad()
def rewards(G, D, seq: Tensor, y: Tensor | None, rollouts: int, every: int, gen, score=None,
            weight: float = 0.0) -> tuple[Tensor, Tensor | None]:
    """SeqGAN's Q (B, T): for each scored prefix length t (every `every` tokens, and T), the mean
    of the reward over `rollouts` completions from G; unscored tokens take the next scored one's.
    The reward is sigmoid(D), or with `score` ORGAN's (1 - weight) sigmoid(D) + weight score.
    Every completion of every prefix is drawn in one batched pass ((P K B) rows). Also returns
    the objective of the whole lines (B,) (None without `score`), for the log."""
    n, T = seq.shape
    scored = list(range(every, T, every))  # prefix lengths completed by rollouts; T is scored as it is
    q = torch.empty(n, T, device=seq.device)

    def reward(lines: Tensor, yy: Tensor | None) -> tuple[Tensor, Tensor | None]:
        r = torch.sigmoid(D(one_hot(lines, G.vocab), yy))
        if score is None:
            return r, None
        o = score(lines).to(r)
        return (1 - weight) * r + weight * o, o

    r_full, o_full = reward(seq, y)  # (B,)
    if scored:
        reps = len(scored) * rollouts
        keep = torch.tensor(scored, device=seq.device).repeat_interleave(rollouts * n)  # (P K B,)
        yk = None if y is None else y.repeat(reps)
        full = G.complete(seq.repeat(reps, 1), keep, yk, gen)  # (P K B, T)
        r = reward(full, yk)[0].view(len(scored), rollouts, n).mean(1)  # (P, B)
    prev = 0
    for i, t in enumerate([*scored, T]):
        q[:, prev:t] = (r[i] if t < T else r_full)[:, None]
        prev = t
    return q, o_full


def seqgan_phase(st, ids: Tensor, y: Tensor | None) -> Tensor:
    """One REINFORCE update of G with rollout rewards, then one D update on fresh samples."""
    G, D, obj = st.nets["G"], st.nets["D"], st.obj
    length, gen = ids.shape[1] - 1, st.gens.get("aug")
    with eval_mode(D):  # rewards without dropout
        seq = G.sample(len(ids), length, 1.0, y, gen)  # (B, L + 1)
        q, o = rewards(G, D, seq, y, obj.rollouts, obj.rollout_every, gen, obj.score, obj.weight)
    alive = _alive(seq).float()
    adv = (q - (q * alive).sum(0) / alive.sum(0).clamp_min(1)) * alive  # minus the batch's mean per position
    inp = torch.cat([G.start(len(seq), seq.device)[:, None], seq[:, :-1]], 1)
    logp = -F.cross_entropy(full(st.fwd["G"](inp, y)).transpose(1, 2), seq, reduction="none")  # (B, T)
    loss_g = -(logp * adv).sum() / alive.sum().clamp_min(1)
    st.update("G_adv", loss_g)
    stats = d_phase(st, ids, y, "D")
    stats[STATS.index("loss_g")] = loss_g.detach().float()
    if o is not None:
        stats[STATS.index("objective")] = o.mean().float()
    stats[STATS.index("reward")] = ((q * alive).sum() / alive.sum().clamp_min(1)).float()
    stats[STATS.index("gan_steps")] = 1.0
    return stats


def d_phase(st, ids: Tensor, y: Tensor | None, group: str | None = None) -> Tensor:
    """One BCE update of D: real lines against G's samples at temperature 1 (SeqGAN's D), by the
    optimiser `group` (default: the pretraining's, st.obj.d_group)."""
    G, vocab = st.nets["G"], st.nets["G"].vocab
    fake = G.sample(len(ids), ids.shape[1] - 1, 1.0, y, st.gens.get("aug"))
    real_l = st.fwd["D"](one_hot(ids[:, 1:], vocab), y)
    fake_l = st.fwd["D"](one_hot(fake, vocab), y)
    loss_d = d_bce(real_l, fake_l)
    st.update(group or st.obj.d_group, loss_d)
    return stats(STATS, torch.float32, loss_d=loss_d, d_real=torch.sigmoid(real_l).mean(),
                 d_fake=torch.sigmoid(fake_l).mean(), d_steps=1.0)


def ae_phase(st, ids: Tensor) -> Tensor:
    """One step of LatentGAN's autoencoder: reconstruct the line from its (noised) code."""
    code = st.fwd["E"](ids)  # (B, latent)
    noise = torch.randn(code.shape, device=code.device, generator=st.gens.get("aug"))
    total, count = st.nets["G"].decoder.nll(ids, None, code + st.obj.latent_noise * noise)
    nll = total / count.clamp_min(1)
    st.update("AE", nll)
    return stats(STATS, torch.float32, loss_g=nll, nll=nll)


def latent_gan_phase(st, batches: Tensor) -> Tensor:
    """train.n_critic WGAN-GP updates of D on codes (one real batch each), then one of G's mapper."""
    E, M, D, gen = st.nets["E"], st.nets["G"].mapper, st.nets["D"], st.gens.get("aug")
    z_dim = st.nets["G"].z_dim
    for ids in batches:
        with torch.no_grad():
            real = E(ids)  # (B, latent): the frozen encoder's codes of real lines
        fake = M(torch.randn(len(ids), z_dim, device=ids.device, generator=gen))
        real_l, fake_l = D(real), D(fake.detach())
        loss_d = d_wasserstein(real_l, fake_l) + st.obj.gp * gradient_penalty(_Critic(D), real, fake, None, gen)
        st.update("D", loss_d)
    with frozen(D):
        loss_g = g_wasserstein(D(M(torch.randn(len(ids), z_dim, device=ids.device, generator=gen))))
        st.update("G_adv", loss_g)
    return stats(STATS, torch.float32, loss_g=loss_g, loss_d=loss_d, gan_steps=1.0, d_steps=1.0)  # critic values: no D(x)


class _Critic(torch.nn.Module):
    """The code critic with the (x, y) signature gradient_penalty calls."""

    def __init__(self, D):
        super().__init__()
        self.D = D

    def forward(self, x, y=None):
        return self.D(x)
