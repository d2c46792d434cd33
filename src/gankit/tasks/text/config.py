"""The text task's config section (`text:`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import ranged
from gankit.errors import GankitError


@dataclass(frozen=True)
class TextConfig:
    """The text task (task: text): an LSTM generator over characters or words, trained by maximum
    likelihood (mle, the baseline), or MLE-pretrained and then trained against a CNN D by
    RelGAN's Gumbel-softmax relaxation with the relativistic loss (relgan), or by SeqGAN's
    REINFORCE with Monte-Carlo rollouts (seqgan). G's width is text.hidden; the rates are
    train.lr_g / train.lr_d; topics condition G and D with model.conditional. latentgan
    (LatentGAN, Prykhodko et al. 2019): an LSTM autoencoder trained first, then a WGAN-GP between an
    MLP's codes and the encoder's codes of real lines, decoded by the autoencoder's decoder."""

    method: Literal["mle", "relgan", "seqgan", "latentgan"] = "mle"
    kind: Literal["text", "smiles"] = "text"  # smiles: lines are molecules (invalid ones skipped; MOSES's metrics)
    level: Literal["char", "word"] = "char"  # tokens: characters, or whitespace-separated words
    # tokens per line; longer lines are truncated with one warning
    max_len: int = ranged(64, lambda v: 1 <= v <= 4096, "1 to 4096 tokens")
    # most frequent tokens kept (others become <unk>); null: all
    vocab_size: int | None = ranged(None, lambda v: v is None or v >= 1, "an integer >= 1, or null (all tokens)")
    emb: int = ranged(64, lambda v: v >= 1, "an integer >= 1")  # token embedding size, in G and D
    hidden: int = ranged(256, lambda v: v >= 1, "an integer >= 1")  # LSTM width
    layers: int = ranged(1, lambda v: v >= 1, "an integer >= 1")  # LSTM layers
    # relgan / seqgan: MLE steps before the adversarial phase
    pretrain_steps: int = ranged(0, lambda v: v >= 0, "an integer >= 0")
    # relgan / seqgan: G's learning rate in the adversarial phase (its own Adam; train.lr_g is MLE's)
    adv_lr: float = ranged(1e-4, lambda v: v > 0, "a learning rate > 0")
    # seqgan: D steps on real vs G's samples after MLE, before the adversarial phase
    d_pretrain_steps: int = ranged(0, lambda v: v >= 0, "an integer >= 0")
    # seqgan: Adam's rate for those D steps, in an optimiser of their own; null: train.lr_d's
    # (SeqGAN's D learnt in 2,000 steps at 1e-3 where 200 at 1e-4 left it at chance: BENCHMARKS.md)
    d_pretrain_lr: float | None = ranged(None, lambda v: v is None or v > 0, "a learning rate > 0, or null")
    # seqgan on SMILES (ORGAN): a chemistry objective mixed into D's reward; none: D's alone
    objective: Literal["none", "qed", "logp", "sa"] = "none"
    # ORGAN's 1 - lambda: reward = (1 - w) sigmoid(D) + w objective (0: D alone, 1: the objective alone)
    objective_weight: float = ranged(0.5, lambda v: 0 <= v <= 1, "a number from 0 to 1")
    # D: filters per convolution width (2, 3, 4, 5)
    d_filters: int = ranged(64, lambda v: v >= 1, "an integer >= 1")
    d_dropout: float = ranged(0.25, lambda v: 0 <= v < 1, "0 <= p < 1")
    # relgan: Gumbel-softmax inverse temperature at the end, from 1 (exponential schedule)
    beta_max: float = ranged(100.0, lambda v: v >= 1, "a number >= 1")
    # latentgan: the autoencoder's code size (the GAN's noise is model.z_dim)
    latent: int = ranged(128, lambda v: v >= 1, "an integer >= 1")
    # latentgan: std of Gaussian noise on the code while the autoencoder trains
    latent_noise: float = ranged(0.1, lambda v: v >= 0, "a number >= 0")
    rollouts: int = ranged(8, lambda v: v >= 1, "an integer >= 1")  # seqgan: Monte-Carlo completions per scored prefix
    # seqgan: score prefixes every k tokens (and the whole line); tokens between share the reward
    rollout_every: int = ranged(4, lambda v: v >= 1, "an integer >= 1")
    # sampling temperature of grids and evaluation during training
    temperature: float = ranged(1.0, lambda v: v > 0, "a number > 0")
    # `gankit eval`: scores at each sampling temperature
    eval_temperatures: tuple[float, ...] = ranged((1.0,), lambda v: len(v) >= 1 and all(t > 0 for t in v),
                                                  "one or more numbers > 0")
    # samples in every grid (samples/step_NNNNNN.png and .txt)
    grid_lines: int = ranged(16, lambda v: 1 <= v <= 64, "1 to 64")


SECTIONS = {"text": TextConfig}


def check(cfg, origin: str) -> None:
    """Settings of `text` valid alone but not together."""
    t = cfg.text
    if t.objective != "none" and (t.method != "seqgan" or t.kind != "smiles"):
        raise GankitError(f"{origin}: text.objective = {t.objective!r} is ORGAN's reward, for text.method seqgan with "
                          f"text.kind smiles; this run has method {t.method!r}, kind {t.kind!r} (preset organ-qed)")
    if t.d_pretrain_lr is not None and t.method != "seqgan":
        raise GankitError(f"{origin}: text.d_pretrain_lr is the rate of SeqGAN's D pretraining; text.method is "
                          f"{t.method!r} (use seqgan, or leave it null)")
