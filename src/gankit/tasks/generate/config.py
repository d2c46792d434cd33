"""The generation task's config sections: the networks (`model`), the regularisers and
augmentations of D (`reg`), R3GAN's burn-in (`burnin`), and the rules across them.

Other tasks reuse parts of these sections rather than repeating them: their networks' widths are
`model.g_width` / `model.d_width`, some read `model.z_dim`, `model.conditional` or `model.leak`,
and penalties such as `reg.gp` apply to their critics too (each task's section says which). A
config carries every registered task's sections, so these are always present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import ranged
from gankit.errors import GankitError

BCE_LOSSES = ("ns", "minimax")  # the losses on D's sigmoid output (gankit.losses: GANLoss.bce)

_SIZES = "a non-empty list of sizes >= 1"
_DIFFAUG = {"color", "translation", "cutout"}


@dataclass(frozen=True)
class ModelConfig:
    arch: Literal["mlp", "mlp-bn", "dcgan", "resnet", "r3gan", "stylegan2"] = "mlp"
    z_dim: int = ranged(100, lambda v: v >= 1, "an integer >= 1")  # latent size; z ~ N(0, I)
    # mlp and mlp-bn
    g_hidden: tuple[int, ...] = ranged((256, 512, 1024), lambda v: len(v) >= 1 and min(v) >= 1, _SIZES)
    d_hidden: tuple[int, ...] = ranged((1024, 512, 256), lambda v: len(v) >= 1 and min(v) >= 1, _SIZES)
    leak: float = ranged(0.2, lambda v: 0 <= v < 1, "0 <= leak < 1")  # LeakyReLU negative slope, in both networks
    # dropout after each hidden layer of D; 0 disables it
    d_dropout: float = ranged(0.3, lambda v: 0 <= v < 1, "0 <= d_dropout < 1")
    g_out: Literal["tanh", "none"] = "tanh"  # tanh matches data scaled to [-1, 1]
    # convolutional nets (dcgan, resnet)
    # generator channels at its finest scale (doubles per coarser scale in dcgan)
    g_width: int = ranged(64, lambda v: v >= 1, "an integer >= 1")
    d_width: int = ranged(64, lambda v: v >= 1, "an integer >= 1")  # discriminator channels at its finest scale
    attention: bool = False  # resnet: a self-attention block in G and D (SAGAN)
    spectral_norm: bool = False  # spectral normalisation on every weight layer of D
    d_batchnorm: bool = True  # dcgan: BatchNorm in D (off with spectral_norm, and for penalties)
    # conditioning and structured latents
    conditional: bool = False  # G takes a class label: one-hot concat (mlp) / conditional BN (conv)
    d_head: Literal["plain", "projection", "acgan"] = "plain"  # how D uses the label
    # InfoGAN: size of one categorical code (0: none)
    info_cat: int = ranged(0, lambda v: v == 0 or v >= 2, "0 (off) or a code size >= 2")
    # InfoGAN: number of continuous codes, uniform in [-1, 1]
    info_cont: int = ranged(0, lambda v: v >= 0, "an integer >= 0")
    # r3gan (Huang et al. 2024): inverted-bottleneck residual blocks, no normalisation, fix-up init
    blocks: int = ranged(2, lambda v: v >= 1, "an integer >= 1")  # residual blocks per resolution stage, in G and D alike
    # a block's hidden width = expansion x its stage width (the inverted bottleneck)
    expansion: int = ranged(2, lambda v: v >= 1, "an integer >= 1")
    group: int = ranged(16, lambda v: v >= 1, "an integer >= 1")  # channels per group in a block's grouped 3x3 convolution
    # stage widths double per coarser scale up to width_cap x g_width / d_width (their finest-scale
    # widths); 1: every stage as wide, as in the paper's 32 px nets (768 channels at 4 to 32 px)
    width_cap: int = ranged(8, lambda v: v >= 1, "an integer >= 1")
    # conv archs at large sizes: an r x r map has min(cbase // r, cmax) channels, in G and D alike,
    # in place of g_width / d_width / width_cap (StyleGAN2's channel_base / channel_max: 32768 or
    # 16384 and 512; R3GAN's FFHQ nets: 24576 and 768). null: the g_width / d_width rule above
    cbase: int | None = ranged(None, lambda v: v is None or v >= 1, "an integer >= 1, or null (off)")
    cmax: int | None = ranged(None, lambda v: v is None or v >= 1, "an integer >= 1, or null (no cap)")
    # stylegan2 (Karras et al. 2020): mapping network z -> w, modulated convolutions
    w_dim: int = ranged(128, lambda v: v >= 1, "an integer >= 1")  # the style space's size (the paper's 512 is for 1024 px faces)
    mapping_layers: int = ranged(4, lambda v: v >= 1, "an integer >= 1")  # MLP layers of the mapping network (the paper's 8)
    # probability that a training batch mixes two w's at a random layer; 0: off
    style_mix: float = ranged(0.9, lambda v: 0 <= v <= 1, "a probability in [0, 1]")
    # samples per minibatch-standard-deviation group in D (the official 4; paper256 uses 8)
    mbstd_group: int = ranged(4, lambda v: v >= 1, "an integer >= 1")


@dataclass(frozen=True)
class RegConfig:
    gp: float = ranged(0.0, lambda v: v >= 0, "a number >= 0")  # WGAN-GP penalty weight lambda (10 in Gulrajani et al.); 0: off
    r1: float = ranged(0.0, lambda v: v >= 0, "a number >= 0")  # R1 penalty weight gamma (Mescheder et al.); 0: off
    # lazy R1: apply every k D steps, scaled by k (Karras et al. 2020)
    r1_every: int = ranged(16, lambda v: v >= 1, "an integer >= 1")
    # R2 penalty weight: R1's E[||grad D||^2] at the fakes (R3GAN applies both every step); 0: off
    r2: float = ranged(0.0, lambda v: v >= 0, "a number >= 0")
    pl: float = ranged(0.0, lambda v: v >= 0, "a number >= 0")  # StyleGAN2 path-length regularisation weight (the paper's 2); 0: off
    pl_every: int = ranged(4, lambda v: v >= 1, "an integer >= 1")  # lazy: every k G steps, scaled by k
    # the running mean of path lengths a: a += decay (|J^T y| - a)
    pl_decay: float = ranged(0.01, lambda v: 0 < v <= 1, "0 < pl_decay <= 1")
    clip: float = ranged(0.0, lambda v: v >= 0, "a number >= 0")  # WGAN weight clipping bound c (0.01 in Arjovsky et al.); 0: off
    # DiffAugment policy, e.g. "color,translation,cutout"; "": off
    diffaug: str = ranged("", lambda v: set(filter(None, v.replace(" ", "").split(","))) <= _DIFFAUG,
                          "a comma-separated subset of color, translation, cutout")
    # one-sided: real target 1 - s (BCE losses only)
    label_smoothing: float = ranged(0.0, lambda v: 0 <= v < 0.5, "0 <= label_smoothing < 0.5")
    # std of Gaussian noise added to D's inputs at step 0; 0: off
    instance_noise: float = ranged(0.0, lambda v: v >= 0, "a number >= 0")
    # steps over which that std decays linearly to 0; 0: train.steps
    instance_noise_steps: int = ranged(0, lambda v: v >= 0, "an integer >= 0")
    info_weight: float = ranged(1.0, lambda v: v >= 0, "a number >= 0")  # InfoGAN mutual-information loss weight lambda
    aux_weight: float = ranged(1.0, lambda v: v >= 0, "a number >= 0")  # ACGAN auxiliary classification loss weight
    # ADA (Karras et al. 2020): D's inputs, real and fake, go through gankit.augment.ada_augment
    # at probability p, which the overfitting heuristic r_t = E[sign(D(real))] moves toward ada_target.
    ada: bool = False  # adaptive augmentation: p moves every D update
    ada_target: float = ranged(0.6, lambda v: 0 < v < 1, "0 < ada_target < 1")  # the r_t the heuristic holds (the paper's 0.6)
    # p can move 0 -> 1 in this many thousand real images; the paper's 500 (FFHQ) is slow for runs of a few kimg
    ada_kimg: float = ranged(100.0, lambda v: v > 0, "a number > 0")
    # p's ceiling; the paper does not cap p, but reports leaks above ~0.8
    ada_max: float = ranged(1.0, lambda v: 0 <= v <= 1, "0 <= ada_max <= 1")
    # p at step 0; with ada false and ada_p > 0: a fixed augmentation probability
    ada_p: float = ranged(0.0, lambda v: 0 <= v <= 1, "0 <= ada_p <= 1")


@dataclass(frozen=True)
class BurninConfig:
    """R3GAN's burn-in (Huang et al. 2024): early in training the learning rates, the R1/R2 weight,
    Adam's beta2 and the EMA half-life move along a half cosine from the run's own settings to the
    values below, over `kimg` thousand images, then hold (gankit.tasks.generate.burnin). Off at kimg 0.
    R3GAN's CIFAR-10 values: kimg 20000, lr 0.25 (2e-4 -> 5e-5), gamma 0.1 (0.05 -> 0.005),
    beta2 0.99 (from 0.9), ema_kimg 5000."""

    # thousand images (steps x train.batch) the schedules take; 0: off
    kimg: float = ranged(0.0, lambda v: v >= 0, "a number >= 0 (0: off)")
    # final learning rates as a fraction of train.lr_g / train.lr_d
    lr: float = ranged(1.0, lambda v: v > 0, "a fraction > 0 of the configured rates")
    # final R1 / R2 weight as a fraction of reg.r1 / reg.r2
    gamma: float = ranged(1.0, lambda v: v >= 0, "a fraction >= 0 of reg.r1 / reg.r2")
    # final Adam beta2 (starting at train.betas[1]); null: not scheduled
    beta2: float | None = ranged(None, lambda v: v is None or 0 <= v < 1, "a number in [0, 1), or null")
    # final EMA half-life in thousand images (from 0); null: train.ema_decay
    ema_kimg: float | None = ranged(None, lambda v: v is None or v >= 0, "thousand images >= 0, or null")


SECTIONS = {"model": ModelConfig, "reg": RegConfig, "burnin": BurninConfig}


def check(cfg, origin: str) -> None:
    """Settings of these sections (and train.loss, lr_schedule, ema) valid alone but not together."""
    if cfg.reg.label_smoothing and cfg.train.loss not in BCE_LOSSES:
        raise GankitError(f"{origin}: reg.label_smoothing applies to the BCE losses (ns, minimax), "
                          f"not train.loss = {cfg.train.loss!r}")
    if cfg.reg.gp and cfg.reg.clip:
        raise GankitError(f"{origin}: reg.gp and reg.clip are two ways to constrain a critic; use one")
    if cfg.reg.pl and cfg.model.arch != "stylegan2":
        raise GankitError(f"{origin}: reg.pl (path-length regularisation) needs the stylegan2 arch's mapping "
                          f"network; model.arch is {cfg.model.arch!r}")
    if (cfg.reg.gp or cfg.reg.r1 or cfg.reg.r2) and cfg.model.arch == "dcgan" and cfg.model.d_batchnorm \
            and not cfg.model.spectral_norm:
        raise GankitError(f"{origin}: gradient penalties (reg.gp, reg.r1, reg.r2) need per-sample gradients, "
                          "which BatchNorm in D mixes across the batch; set model.d_batchnorm=false")
    if (cfg.reg.ada or cfg.reg.ada_p) and cfg.reg.diffaug:
        raise GankitError(f"{origin}: reg.ada (or reg.ada_p > 0) and reg.diffaug both augment D's inputs; "
                          "use one augmentation: reg.diffaug or reg.ada")
    if cfg.reg.ada_p > cfg.reg.ada_max:
        raise GankitError(f"{origin}: reg.ada_p = {cfg.reg.ada_p!r} is above reg.ada_max = {cfg.reg.ada_max!r}; "
                          "expected 0 <= ada_p <= ada_max <= 1")
    if cfg.burnin.kimg and cfg.burnin.lr != 1 and cfg.train.lr_schedule != "constant":
        raise GankitError(f"{origin}: burnin.lr and train.lr_schedule = {cfg.train.lr_schedule!r} both move the "
                          "learning rates; use one (train.lr_schedule=constant with a burn-in)")
    if cfg.burnin.kimg and cfg.burnin.ema_kimg is not None and not cfg.train.ema:
        raise GankitError(f"{origin}: burnin.ema_kimg schedules the EMA of G, which is off; set train.ema=true")
    if (cfg.model.cbase is not None or cfg.model.cmax is not None) and cfg.model.arch in ("mlp", "mlp-bn"):
        raise GankitError(f"{origin}: model.cbase / model.cmax set the channels of the convolutional archs "
                          f"(dcgan, resnet, r3gan, stylegan2), not of {cfg.model.arch!r}")
    if cfg.model.cmax is not None and cfg.model.cbase is None:
        raise GankitError(f"{origin}: model.cmax = {cfg.model.cmax} caps model.cbase's rule, which is off; "
                          "set model.cbase too (e.g. 16384), or leave cmax null")
    if cfg.model.attention and cfg.model.arch != "resnet":
        raise GankitError(f"{origin}: model.attention is a block of the resnet arch, "
                          f"not of {cfg.model.arch!r}")
