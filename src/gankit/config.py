"""The run configuration: typed, frozen dataclasses, and the one loader that builds them.

A config comes from a preset (``src/gankit/presets/NAME.yaml``) or a YAML file, plus dotted
``--set section.key=value`` overrides. Unknown keys, wrong types and invalid choices are
rejected with a one-line `GankitError` that names the key and lists what is accepted.
The resolved config is written to every run directory and checkpoint (`to_dict`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from gankit.errors import GankitError


@dataclass(frozen=True)
class DataConfig:
    source: str = "mnist"  # a name (`gankit data info --help` lists them) or a path
    resolution: int | None = None  # square side the images are resized to at load; None: native
    channels: int | None = None  # 1 or 3; None: the source's own
    strict: bool = False  # refuse a folder with unreadable images instead of skipping them (--strict-data)


@dataclass(frozen=True)
class ModelConfig:
    arch: Literal["mlp", "mlp-bn", "dcgan", "resnet", "r3gan", "stylegan2"] = "mlp"
    z_dim: int = 100  # latent size; z ~ N(0, I)
    # mlp and mlp-bn
    g_hidden: tuple[int, ...] = (256, 512, 1024)
    d_hidden: tuple[int, ...] = (1024, 512, 256)
    leak: float = 0.2  # LeakyReLU negative slope, in both networks
    d_dropout: float = 0.3  # dropout after each hidden layer of D; 0 disables it
    g_out: Literal["tanh", "none"] = "tanh"  # tanh matches data scaled to [-1, 1]
    # convolutional nets (dcgan, resnet)
    g_width: int = 64  # generator channels at its finest scale (doubles per coarser scale in dcgan)
    d_width: int = 64  # discriminator channels at its finest scale
    attention: bool = False  # resnet: a self-attention block in G and D (SAGAN)
    spectral_norm: bool = False  # spectral normalisation on every weight layer of D
    d_batchnorm: bool = True  # dcgan: BatchNorm in D (off with spectral_norm, and for penalties)
    # conditioning and structured latents
    conditional: bool = False  # G takes a class label: one-hot concat (mlp) / conditional BN (conv)
    d_head: Literal["plain", "projection", "acgan"] = "plain"  # how D uses the label
    info_cat: int = 0  # InfoGAN: size of one categorical code (0: none)
    info_cont: int = 0  # InfoGAN: number of continuous codes, uniform in [-1, 1]
    # r3gan (Huang et al. 2024): inverted-bottleneck residual blocks, no normalisation, fix-up init
    blocks: int = 2  # residual blocks per resolution stage, in G and D alike
    expansion: int = 2  # a block's hidden width = expansion x its stage width (the inverted bottleneck)
    group: int = 16  # channels per group in a block's grouped 3x3 convolution
    # stage widths double per coarser scale up to width_cap x g_width / d_width (their finest-scale
    # widths); 1: every stage as wide, as in the paper's 32 px nets (768 channels at 4 to 32 px)
    width_cap: int = 8
    # stylegan2 (Karras et al. 2020): mapping network z -> w, modulated convolutions
    w_dim: int = 128  # the style space's size (the paper's 512 is for 1024 px faces)
    mapping_layers: int = 4  # MLP layers of the mapping network (the paper's 8)
    style_mix: float = 0.9  # probability that a training batch mixes two w's at a random layer; 0: off


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 469  # one step = n_critic D updates and one G update; 469 x 128 ~ one MNIST epoch
    # stop this training call after this many seconds of training (evaluation, grids and checkpoints
    # not counted), as if train.steps had been reached there; 0: no time limit (--max-seconds)
    max_seconds: float = 0.0
    batch: int = 128
    loss: Literal["ns", "minimax", "ls", "hinge", "wasserstein", "ragan", "rpgan"] = "ns"  # see gankit.losses
    optimizer: Literal["adam", "rmsprop"] = "adam"  # rmsprop for the original WGAN
    lr_g: float = 2e-4  # separate rates for G and D allow TTUR (Heusel et al. 2017)
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # Adam; beta1 0.5 as in DCGAN
    n_critic: int = 1  # D updates per G update (5 for WGAN, WGAN-GP, SNGAN)
    # over train.steps, every optimiser; hold-linear: constant for the first half, then linear to 0 (CycleGAN)
    lr_schedule: Literal["constant", "linear", "cosine", "hold-linear"] = "constant"
    ema: bool = False  # keep an exponential moving average of G's weights for sampling
    ema_decay: float = 0.999  # with ramp-up: decay_t = min(ema_decay, (1 + t) / (10 + t))
    # bf16: forward passes under bfloat16 autocast; auto: bf16 on a CUDA GPU with bf16; on a CPU the
    # faster of the two as timed on the run's own step (cached per CPU and config), fp32 for runs
    # too short to time it (gankit.training.precision; CPU flags do not predict bf16's speed)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    reuse_fakes: bool = True  # G's update reuses the D step's fakes (one G forward per step); false: fresh z
    cuda_graph: bool = True  # on CUDA, capture the whole step as one CUDA graph when nothing prevents it
    compile: bool = False  # torch.compile the networks' forward passes (not with reg.gp / reg.r1)
    channels_last: bool = False  # channels-last memory format for convolutional networks
    sync_bn: bool = False  # data-parallel runs: BatchNorm statistics over the global batch (SyncBatchNorm)
    ddp: bool = True  # data-parallel runs: DistributedDataParallel; false: one flat gradient all-reduce
    # start from another run's weights (a run directory or checkpoint .pt of the same task; the
    # networks both have, by name); optimisers and the step start afresh; null: fresh weights
    init: str | None = None


@dataclass(frozen=True)
class RegConfig:
    gp: float = 0.0  # WGAN-GP penalty weight lambda (10 in Gulrajani et al.); 0: off
    r1: float = 0.0  # R1 penalty weight gamma (Mescheder et al.); 0: off
    r1_every: int = 16  # lazy R1: apply every k D steps, scaled by k (Karras et al. 2020)
    r2: float = 0.0  # R2 penalty weight: R1's E[||grad D||^2] at the fakes (R3GAN applies both every step); 0: off
    pl: float = 0.0  # StyleGAN2 path-length regularisation weight (the paper's 2); 0: off
    pl_every: int = 4  # lazy: every k G steps, scaled by k
    pl_decay: float = 0.01  # the running mean of path lengths a: a += decay (|J^T y| - a)
    clip: float = 0.0  # WGAN weight clipping bound c (0.01 in Arjovsky et al.); 0: off
    diffaug: str = ""  # DiffAugment policy, e.g. "color,translation,cutout"; "": off
    label_smoothing: float = 0.0  # one-sided: real target 1 - s (BCE losses only)
    instance_noise: float = 0.0  # std of Gaussian noise added to D's inputs at step 0; 0: off
    instance_noise_steps: int = 0  # steps over which that std decays linearly to 0; 0: train.steps
    info_weight: float = 1.0  # InfoGAN mutual-information loss weight lambda
    aux_weight: float = 1.0  # ACGAN auxiliary classification loss weight
    # ADA (Karras et al. 2020): D's inputs, real and fake, go through gankit.augment.ada_augment
    # at probability p, which the overfitting heuristic r_t = E[sign(D(real))] moves toward ada_target.
    ada: bool = False  # adaptive augmentation: p moves every D update
    ada_target: float = 0.6  # the r_t the heuristic holds (the paper's 0.6)
    # p can move 0 -> 1 in this many thousand real images; the paper's 500 (FFHQ) is slow for runs of a few kimg
    ada_kimg: float = 100.0
    ada_max: float = 1.0  # p's ceiling; the paper does not cap p, but reports leaks above ~0.8
    ada_p: float = 0.0  # p at step 0; with ada false and ada_p > 0: a fixed augmentation probability


@dataclass(frozen=True)
class BurninConfig:
    """R3GAN's burn-in (Huang et al. 2024): early in training the learning rates, the R1/R2 weight,
    Adam's beta2 and the EMA half-life move along a half cosine from the run's own settings to the
    values below, over `kimg` thousand images, then hold (gankit.training.burnin). Off at kimg 0.
    R3GAN's CIFAR-10 values: kimg 20000, lr 0.25 (2e-4 -> 5e-5), gamma 0.1 (0.05 -> 0.005),
    beta2 0.99 (from 0.9), ema_kimg 5000."""

    kimg: float = 0.0  # thousand images (steps x train.batch) the schedules take; 0: off
    lr: float = 1.0  # final learning rates as a fraction of train.lr_g / train.lr_d
    gamma: float = 1.0  # final R1 / R2 weight as a fraction of reg.r1 / reg.r2
    beta2: float | None = None  # final Adam beta2 (starting at train.betas[1]); null: not scheduled
    ema_kimg: float | None = None  # final EMA half-life in thousand images (from 0); null: train.ema_decay


@dataclass(frozen=True)
class RecoverConfig:
    skip_nonfinite: bool = True  # a NaN/inf loss or gradient: don't apply that update (one sync per update)
    patience: int = 10  # that many non-finite updates in a row: roll back to the last good checkpoint
    max_rollbacks: int = 3  # more rollbacks than this: stop with a message
    lr_factor: float = 0.5  # learning rates are multiplied by this at each rollback


@dataclass(frozen=True)
class EvalConfig:
    every: int = 0  # evaluate every N steps during training (0: never); `--eval-every N`
    n: int = 10_000  # generated samples per evaluation
    metrics: str = "fid"  # comma-separated, see `gankit eval --help`; fid also keeps checkpoints/best.pt
    ref: str = "mnist:test"  # reference data source
    featurenet: str | None = None  # feature network .safetensors; None: the bundled MNIST network


@dataclass(frozen=True)
class LogConfig:
    every: int = 50  # read scalars from the device and write metrics.jsonl every K steps
    grid_every: int = 500  # sample grid of the fixed noise batch every M steps
    grid_n: int = 64  # images in each grid (a square number draws a square grid)
    ckpt_every: int = 1000  # write checkpoints/last.pt every this many steps (and at the end)
    ckpt_minutes: float = 10.0  # ... or after this many minutes of training, whichever comes first
    keep_last: int = 3  # checkpoints kept: last.pt and the previous ones as step_NNNNNNNN.pt
    progress: bool = True  # live progress bar on stderr
    profile: int = 0  # profile this many steps after a 5-step warm-up (--profile N): RUN/profile/; 0: off


@dataclass(frozen=True)
class TranslateConfig:
    """The translation task (task: translate): pix2pix on paired data, CycleGAN on unpaired data.
    The networks' widths are model.g_width / model.d_width; the adversarial loss is train.loss
    (ns: the cGAN loss of pix2pix; ls: CycleGAN's least squares)."""

    method: Literal["pix2pix", "cyclegan"] = "pix2pix"
    direction: Literal["AtoB", "BtoA"] = "AtoB"  # pix2pix: which domain is the input
    g_arch: Literal["unet", "resnet"] = "unet"  # pix2pix: U-Net; CycleGAN: ResNet blocks
    norm: Literal["batch", "instance", "none"] = "batch"  # pix2pix: batch; CycleGAN: instance
    g_blocks: int = 9  # resnet generator: residual blocks (6 at 128 px, 9 at 256 px in the paper)
    d_layers: int | None = None  # PatchGAN depth; None: the 70x70-at-256 patch scaled to the image size
    gan: float = 1.0  # weight of the adversarial term in G's loss (0: L1 only, the paper's ablation)
    l1: float = 100.0  # pix2pix: lambda of the L1 term
    cycle: float = 10.0  # CycleGAN: lambda of the cycle-consistency terms
    identity: float = 0.5  # CycleGAN: identity term weight, x lambda (needs equal channel counts)
    pool: int = 50  # CycleGAN: each D also sees up to this many earlier fakes (0: off)
    grid_examples: int = 12  # fixed held-out examples in every input | output | target grid


@dataclass(frozen=True)
class SuperresConfig:
    """The super-resolution task (task: superres): SRResNet trained on L1, then (SRGAN/ESRGAN)
    fine-tuned with a relativistic adversarial term. G's width is model.g_width, D's
    model.d_width; the adversarial loss is train.loss (ragan: ESRGAN's relativistic average)."""

    scale: Literal[2, 3, 4] = 4  # LR -> HR factor
    patch: int = 96  # HR training patch side (LR patch = patch / scale)
    g_blocks: int = 16  # residual blocks of SRResNet (16 in Ledig et al.)
    pretrain_steps: int | None = None  # L1-only steps before the GAN phase; None: every step is L1 (srresnet)
    l1: float = 1.0  # weight of the pixel L1 term
    adv: float = 5e-3  # weight of the adversarial term in the GAN phase (ESRGAN's lambda)
    fm: float = 1.0  # weight of feature matching on D's features (no pretrained VGG is reachable offline)


@dataclass(frozen=True)
class InterpolateConfig:
    """The frame-interpolation task (task: interpolate): a U-Net G on the two neighbours
    (t-1, t+1) predicts frame t; a temporal PatchGAN D judges (t-1, t, t+1) triplets. G's width
    is model.g_width, D's model.d_width; the adversarial loss is train.loss (ns)."""

    residual: bool = True  # G predicts the correction to the neighbours' average, not the frame (without flow)
    flow: bool = False  # G also sees both neighbours warped halfway by Farneback flow, fuses and corrects them
    norm: Literal["batch", "instance", "none"] = "batch"
    d_layers: int | None = None  # PatchGAN depth; null: the 70x70-at-256 patch scaled to the frame size
    gan: float = 1.0  # weight of G's adversarial term (0: L1 only)
    l1: float = 100.0  # weight of L1 to the true middle frame
    grid_examples: int = 8  # held-out triplets in every grid


@dataclass(frozen=True)
class InpaintConfig:
    """The inpainting task (task: inpaint): a U-Net G on the image with its hole zeroed plus the
    mask as a channel, its output composited so known pixels are kept exactly; an SN-PatchGAN D
    on the completed image and the mask (DeepFill v2's). G's width is model.g_width, D's
    model.d_width; the adversarial loss is train.loss (hinge, as SN-PatchGAN)."""

    mask: str = "mixed"  # hole kind for training: box:A, box:A-B (area fraction), stroke, mixed (gankit.data.masks)
    patch: int | None = None  # crop side for photos and folders (None: 64); MNIST uses whole 28 px digits
    norm: Literal["batch", "instance", "none"] = "batch"  # G's norm layers
    d_norm: Literal["batch", "instance", "none"] = "none"  # D's (SN-PatchGAN: spectral norm alone)
    d_layers: int | None = None  # PatchGAN depth; null: the 70x70-at-256 patch scaled to the image size
    gan: float = 1.0  # weight of G's adversarial term (0: L1 only)
    l1_hole: float = 100.0  # weight of L1 inside the hole
    l1_valid: float = 10.0  # weight of L1 of G's raw output on the known pixels (kept by the composite)
    grid_examples: int = 8  # held-out images in every grid


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
    max_len: int = 64  # tokens per line; longer lines are truncated with one warning
    vocab_size: int | None = None  # most frequent tokens kept (others become <unk>); null: all
    emb: int = 64  # token embedding size, in G and D
    hidden: int = 256  # LSTM width
    layers: int = 1  # LSTM layers
    pretrain_steps: int = 0  # relgan / seqgan: MLE steps before the adversarial phase
    adv_lr: float = 1e-4  # relgan / seqgan: G's learning rate in the adversarial phase (its own Adam; train.lr_g is MLE's)
    d_pretrain_steps: int = 0  # seqgan: D steps on real vs G's samples after MLE, before the adversarial phase
    d_filters: int = 64  # D: filters per convolution width (2, 3, 4, 5)
    d_dropout: float = 0.25
    beta_max: float = 100.0  # relgan: Gumbel-softmax inverse temperature at the end, from 1 (exponential schedule)
    latent: int = 128  # latentgan: the autoencoder's code size (the GAN's noise is model.z_dim)
    latent_noise: float = 0.1  # latentgan: std of Gaussian noise on the code while the autoencoder trains
    rollouts: int = 8  # seqgan: Monte-Carlo completions per scored prefix
    rollout_every: int = 4  # seqgan: score prefixes every k tokens (and the whole line); tokens between share the reward
    temperature: float = 1.0  # sampling temperature of grids and evaluation during training
    eval_temperatures: tuple[float, ...] = (1.0,)  # `gankit eval`: scores at each sampling temperature
    grid_lines: int = 16  # samples in every grid (samples/step_NNNNNN.png and .txt)


@dataclass(frozen=True)
class AudioConfig:
    """The audio task (task: audio): WaveGAN (raw 16 kHz waveforms, phase shuffle in D) or SpecGAN
    (normalised log spectrograms, inverted by Griffin-Lim), Donahue et al. 2019. The model size d
    is model.g_width for G and model.d_width for D (the paper's 64); the loss train.loss with
    reg.gp (the paper: wasserstein, 10, train.n_critic 5)."""

    method: Literal["wavegan", "specgan"] = "wavegan"
    phase_shuffle: int = 2  # wavegan: D's activations shifted by up to this many samples (0: off)
    griffin_lim: int = 16  # specgan: iterations that recover the phase
    grid_clips: int = 8  # clips in every grid (spectrograms in the image, the audio in a .wav beside it)


@dataclass(frozen=True)
class RunConfig:
    preset: str | None = None  # the preset this config started from, for the record
    task: Literal["generate", "translate", "superres", "interpolate", "inpaint", "text", "audio"] = "generate"  # what is trained: gankit.tasks.TASKS
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    burnin: BurninConfig = field(default_factory=BurninConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    recover: RecoverConfig = field(default_factory=RecoverConfig)
    log: LogConfig = field(default_factory=LogConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)  # task: translate
    superres: SuperresConfig = field(default_factory=SuperresConfig)  # task: superres
    interpolate: InterpolateConfig = field(default_factory=InterpolateConfig)  # task: interpolate
    inpaint: InpaintConfig = field(default_factory=InpaintConfig)  # task: inpaint
    text: TextConfig = field(default_factory=TextConfig)  # task: text
    audio: AudioConfig = field(default_factory=AudioConfig)  # task: audio

    def replace(self, **overrides: Any) -> RunConfig:
        """A validated copy with dotted keys replaced: ``cfg.replace(**{"train.steps": 10})``."""
        return from_dict(_apply_overrides(to_dict(self), overrides, origin="replace()"))


BCE_LOSSES = ("ns", "minimax")  # the losses on D's sigmoid output (gankit.losses: GANLoss.bce)

# Keys a preset file may carry beside the config itself; they describe the preset.
_PRESET_META = ("description",)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain data (lists, not tuples), ready for YAML, JSON or a checkpoint."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def from_dict(d: dict[str, Any], origin: str = "config") -> RunConfig:
    """Build and validate a `RunConfig`; `origin` names the source in error messages."""
    cfg = _build(RunConfig, d, origin, prefix="")
    _check_combinations(cfg, origin)
    return cfg


def _check_combinations(cfg: RunConfig, origin: str) -> None:
    """Settings that are valid alone but not together."""
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
    if cfg.log.profile and cfg.log.profile + 5 > cfg.train.steps:  # gankit.training.profile: WAIT + WARMUP = 5
        raise GankitError(f"{origin}: log.profile = {cfg.log.profile} needs {cfg.log.profile + 5} steps "
                          f"(a 5-step warm-up first); train.steps is {cfg.train.steps}")
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
    if cfg.model.attention and cfg.model.arch != "resnet":
        raise GankitError(f"{origin}: model.attention is a block of the resnet arch, "
                          f"not of {cfg.model.arch!r}")


def preset_names() -> list[str]:
    root = resources.files("gankit") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    if name not in preset_names():
        raise GankitError(f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}")
    return (resources.files("gankit") / "presets" / f"{name}.yaml").read_text()


def preset_description(name: str) -> str:
    return _parse_yaml(preset_text(name), f"preset {name}").get("description", "")


def load_config(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve preset, then YAML file, then overrides (later wins) into a validated config.

    `overrides` is a list of ``"a.b=value"`` strings (values parsed as YAML scalars) or a dict
    of dotted keys. With neither preset nor file, the defaults (the tutorial's GAN) are used.
    """
    d: dict[str, Any] = {}
    if preset is not None:
        d = _parse_yaml(preset_text(preset), f"preset {preset}")
        d["preset"] = preset
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise GankitError(f"config file {str(path)!r} does not exist")
        d = _merge(d, _parse_yaml(path.read_text(), str(path)))
    for k in _PRESET_META:
        d.pop(k, None)
    if isinstance(overrides, list):
        overrides = dict(_parse_set(s) for s in overrides)
    d = _apply_overrides(d, overrides or {}, origin="--set")
    return from_dict(d, origin=str(file) if file else f"preset {preset}" if preset else "config")


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """`cfg` with ``"a.b=value"`` overrides applied and the result validated."""
    d = _apply_overrides(to_dict(cfg), dict(_parse_set(s) for s in overrides), origin="--set")
    return from_dict(d, origin="--set")


def _parse_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GankitError(f"{origin}:{where}: malformed YAML: {problem}") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise GankitError(f"{origin}: expected a mapping of config sections, got {type(d).__name__}")
    return d


def _parse_set(s: str) -> tuple[str, Any]:
    key, sep, raw = s.partition("=")
    if not sep or not key.strip():
        raise GankitError(f"--set {s!r}: expected key=value, e.g. train.lr_g=1e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        value = raw  # not YAML: keep the text; type checking decides
    # YAML 1.1 reads 1e-4 as a string; accept the float users mean.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else value
        except ValueError:
            pass
    return key.strip(), value


def _apply_overrides(d: dict[str, Any], overrides: dict[str, Any], origin: str) -> dict[str, Any]:
    d = _merge({}, d)
    for key, value in overrides.items():
        parts = key.split(".")
        node = d
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise GankitError(f"{origin} {key}: {p!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return d


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(cls: type, d: Any, origin: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(d, dict):
        raise GankitError(f"{origin}: {where} must be a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise GankitError(
            f"{origin}: unknown key {prefix}{unknown[0]}; valid keys at {where}: {', '.join(names)}"
        )
    kwargs = {}
    for name in names:
        if name not in d:
            continue
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, d[name], origin, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(tp, d[name], f"{origin}: {prefix}{name}")
    cfg = cls(**kwargs)
    _check_ranges(cfg, origin, prefix)
    return cfg


def _coerce(tp: Any, v: Any, where: str) -> Any:
    """Check `v` against the annotation `tp`; convert only where no information is lost."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], v, where)
    if origin is Literal:
        if v not in args:
            raise GankitError(f"{where} = {v!r}; choose one of: {', '.join(map(str, args))}")
        return v
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise GankitError(f"{where} = {v!r}; expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
        if len(v) != len(args):
            raise GankitError(f"{where} = {v!r}; expected a list of {len(args)} values")
        return tuple(_coerce(a, x, f"{where}[{i}]") for i, (a, x) in enumerate(zip(args, v)))
    if tp is bool:
        if isinstance(v, bool):
            return v
        raise GankitError(f"{where} = {v!r}; expected true or false")
    if tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        raise GankitError(f"{where} = {v!r}; expected an integer")
    if tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        raise GankitError(f"{where} = {v!r}; expected a number")
    if tp is str:
        if isinstance(v, str):
            return v
        raise GankitError(f"{where} = {v!r}; expected a string")
    raise TypeError(f"config type {tp} not handled")  # our bug, not the user's


_EVAL_METRICS = ("fid", "kid", "is", "pr", "dc", "classes", "stacked")  # gankit.metrics.evaluate.METRICS

# (section, key) -> (test, what is accepted)
_RANGES: dict[tuple[type, str], tuple[Any, str]] = {
    (RunConfig, "seed"): (lambda v: v >= 0, "an integer >= 0"),
    (DataConfig, "resolution"): (lambda v: v is None or 4 <= v <= 1024, "4 to 1024, or null"),
    (DataConfig, "channels"): (lambda v: v in (None, 1, 3), "1, 3 or null"),
    (ModelConfig, "z_dim"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "g_hidden"): (lambda v: len(v) >= 1 and min(v) >= 1, "a non-empty list of sizes >= 1"),
    (ModelConfig, "d_hidden"): (lambda v: len(v) >= 1 and min(v) >= 1, "a non-empty list of sizes >= 1"),
    (ModelConfig, "leak"): (lambda v: 0 <= v < 1, "0 <= leak < 1"),
    (ModelConfig, "d_dropout"): (lambda v: 0 <= v < 1, "0 <= d_dropout < 1"),
    (ModelConfig, "g_width"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "d_width"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "info_cat"): (lambda v: v == 0 or v >= 2, "0 (off) or a code size >= 2"),
    (ModelConfig, "info_cont"): (lambda v: v >= 0, "an integer >= 0"),
    (TrainConfig, "steps"): (lambda v: v >= 0, "an integer >= 0"),
    (TrainConfig, "max_seconds"): (lambda v: v >= 0, "a number of seconds >= 0 (0: no limit)"),
    (TrainConfig, "batch"): (lambda v: v >= 1, "an integer >= 1"),
    (TrainConfig, "lr_g"): (lambda v: v > 0, "a number > 0"),
    (TrainConfig, "lr_d"): (lambda v: v > 0, "a number > 0"),
    (TrainConfig, "betas"): (lambda v: all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
    (TrainConfig, "n_critic"): (lambda v: v >= 1, "an integer >= 1"),
    (TrainConfig, "ema_decay"): (lambda v: 0 < v < 1, "0 < ema_decay < 1"),
    (RegConfig, "gp"): (lambda v: v >= 0, "a number >= 0"),
    (RegConfig, "r1"): (lambda v: v >= 0, "a number >= 0"),
    (RegConfig, "r1_every"): (lambda v: v >= 1, "an integer >= 1"),
    (RegConfig, "r2"): (lambda v: v >= 0, "a number >= 0"),
    (RegConfig, "pl"): (lambda v: v >= 0, "a number >= 0"),
    (RegConfig, "pl_every"): (lambda v: v >= 1, "an integer >= 1"),
    (RegConfig, "pl_decay"): (lambda v: 0 < v <= 1, "0 < pl_decay <= 1"),
    (ModelConfig, "blocks"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "expansion"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "group"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "width_cap"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "w_dim"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "mapping_layers"): (lambda v: v >= 1, "an integer >= 1"),
    (ModelConfig, "style_mix"): (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    (RegConfig, "clip"): (lambda v: v >= 0, "a number >= 0"),
    (RegConfig, "diffaug"): (lambda v: set(filter(None, v.replace(" ", "").split(","))) <= {"color", "translation", "cutout"},
                             "a comma-separated subset of color, translation, cutout"),
    (RegConfig, "label_smoothing"): (lambda v: 0 <= v < 0.5, "0 <= label_smoothing < 0.5"),
    (RegConfig, "instance_noise"): (lambda v: v >= 0, "a number >= 0"),
    (RegConfig, "instance_noise_steps"): (lambda v: v >= 0, "an integer >= 0"),
    (RegConfig, "info_weight"): (lambda v: v >= 0, "a number >= 0"),
    (RegConfig, "aux_weight"): (lambda v: v >= 0, "a number >= 0"),
    (RegConfig, "ada_target"): (lambda v: 0 < v < 1, "0 < ada_target < 1"),
    (RegConfig, "ada_kimg"): (lambda v: v > 0, "a number > 0"),
    (RegConfig, "ada_max"): (lambda v: 0 <= v <= 1, "0 <= ada_max <= 1"),
    (RegConfig, "ada_p"): (lambda v: 0 <= v <= 1, "0 <= ada_p <= 1"),
    (EvalConfig, "every"): (lambda v: v >= 0, "an integer >= 0"),
    (EvalConfig, "n"): (lambda v: v >= 2, "an integer >= 2"),
    (EvalConfig, "metrics"): (lambda v: set(filter(None, v.replace(" ", "").split(","))) <= set(_EVAL_METRICS),
                              f"a comma-separated subset of {', '.join(_EVAL_METRICS)}"),
    (BurninConfig, "kimg"): (lambda v: v >= 0, "a number >= 0 (0: off)"),
    (BurninConfig, "lr"): (lambda v: v > 0, "a fraction > 0 of the configured rates"),
    (BurninConfig, "gamma"): (lambda v: v >= 0, "a fraction >= 0 of reg.r1 / reg.r2"),
    (BurninConfig, "beta2"): (lambda v: v is None or 0 <= v < 1, "a number in [0, 1), or null"),
    (BurninConfig, "ema_kimg"): (lambda v: v is None or v >= 0, "thousand images >= 0, or null"),
    (RecoverConfig, "patience"): (lambda v: v >= 1, "an integer >= 1"),
    (RecoverConfig, "max_rollbacks"): (lambda v: v >= 0, "an integer >= 0"),
    (RecoverConfig, "lr_factor"): (lambda v: 0 < v <= 1, "0 < lr_factor <= 1"),
    (TranslateConfig, "g_blocks"): (lambda v: v >= 0, "an integer >= 0"),
    (TranslateConfig, "d_layers"): (lambda v: v is None or 1 <= v <= 6, "1 to 6, or null"),
    (TranslateConfig, "gan"): (lambda v: v >= 0, "a number >= 0"),
    (TranslateConfig, "l1"): (lambda v: v >= 0, "a number >= 0"),
    (TranslateConfig, "cycle"): (lambda v: v >= 0, "a number >= 0"),
    (TranslateConfig, "identity"): (lambda v: v >= 0, "a number >= 0"),
    (TranslateConfig, "pool"): (lambda v: v >= 0, "an integer >= 0"),
    (TranslateConfig, "grid_examples"): (lambda v: 1 <= v <= 64, "1 to 64"),
    (SuperresConfig, "patch"): (lambda v: 8 <= v <= 512, "8 to 512"),
    (SuperresConfig, "g_blocks"): (lambda v: v >= 1, "an integer >= 1"),
    (SuperresConfig, "pretrain_steps"): (lambda v: v is None or v >= 0, "an integer >= 0, or null"),
    (SuperresConfig, "l1"): (lambda v: v >= 0, "a number >= 0"),
    (SuperresConfig, "adv"): (lambda v: v >= 0, "a number >= 0"),
    (SuperresConfig, "fm"): (lambda v: v >= 0, "a number >= 0"),
    (InterpolateConfig, "d_layers"): (lambda v: v is None or 1 <= v <= 6, "1 to 6, or null"),
    (InterpolateConfig, "gan"): (lambda v: v >= 0, "a number >= 0"),
    (InterpolateConfig, "l1"): (lambda v: v >= 0, "a number >= 0"),
    (InterpolateConfig, "grid_examples"): (lambda v: 1 <= v <= 64, "1 to 64"),
    (TextConfig, "max_len"): (lambda v: 1 <= v <= 4096, "1 to 4096 tokens"),
    (TextConfig, "vocab_size"): (lambda v: v is None or v >= 1, "an integer >= 1, or null (all tokens)"),
    (TextConfig, "emb"): (lambda v: v >= 1, "an integer >= 1"),
    (TextConfig, "hidden"): (lambda v: v >= 1, "an integer >= 1"),
    (TextConfig, "layers"): (lambda v: v >= 1, "an integer >= 1"),
    (TextConfig, "pretrain_steps"): (lambda v: v >= 0, "an integer >= 0"),
    (TextConfig, "adv_lr"): (lambda v: v > 0, "a learning rate > 0"),
    (TextConfig, "d_pretrain_steps"): (lambda v: v >= 0, "an integer >= 0"),
    (TextConfig, "d_filters"): (lambda v: v >= 1, "an integer >= 1"),
    (TextConfig, "d_dropout"): (lambda v: 0 <= v < 1, "0 <= p < 1"),
    (TextConfig, "beta_max"): (lambda v: v >= 1, "a number >= 1"),
    (TextConfig, "latent"): (lambda v: v >= 1, "an integer >= 1"),
    (TextConfig, "latent_noise"): (lambda v: v >= 0, "a number >= 0"),
    (TextConfig, "rollouts"): (lambda v: v >= 1, "an integer >= 1"),
    (TextConfig, "rollout_every"): (lambda v: v >= 1, "an integer >= 1"),
    (TextConfig, "temperature"): (lambda v: v > 0, "a number > 0"),
    (TextConfig, "eval_temperatures"): (lambda v: len(v) >= 1 and all(t > 0 for t in v), "one or more numbers > 0"),
    (TextConfig, "grid_lines"): (lambda v: 1 <= v <= 64, "1 to 64"),
    (AudioConfig, "phase_shuffle"): (lambda v: 0 <= v <= 16, "0 to 16 samples"),
    (AudioConfig, "griffin_lim"): (lambda v: v >= 1, "an integer >= 1"),
    (AudioConfig, "grid_clips"): (lambda v: 1 <= v <= 32, "1 to 32"),
    (LogConfig, "keep_last"): (lambda v: v >= 1, "an integer >= 1"),
    (LogConfig, "every"): (lambda v: v >= 1, "an integer >= 1"),
    (LogConfig, "grid_every"): (lambda v: v >= 1, "an integer >= 1"),
    (LogConfig, "grid_n"): (lambda v: 1 <= v <= 1024, "1 to 1024"),
    (LogConfig, "ckpt_every"): (lambda v: v >= 1, "an integer >= 1"),
    (LogConfig, "ckpt_minutes"): (lambda v: v > 0, "a number of minutes > 0"),
    (LogConfig, "profile"): (lambda v: v >= 0, "an integer >= 0 (0: off)"),
}


def _check_ranges(cfg: Any, origin: str, prefix: str) -> None:
    for f in dataclasses.fields(cfg):
        rule = _RANGES.get((type(cfg), f.name))
        if rule is None:
            continue
        ok, accepted = rule
        v = getattr(cfg, f.name)
        if not ok(v):
            raise GankitError(f"{origin}: {prefix}{f.name} = {v!r} is out of range; expected {accepted}")
