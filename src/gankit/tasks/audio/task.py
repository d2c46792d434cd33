"""The audio task: 1 s clips from noise, by WaveGAN (raw waveforms) or SpecGAN (spectrograms
inverted by Griffin-Lim), Donahue et al. 2019.

Data is a `gankit.data.speech.AudioData` (int16 clips at 16 kHz: `spoken-digits` or a user's
folder), kept on the device as int16 and scaled per batch. SpecGAN's per-frequency statistics
are computed once from the training clips and stored in every checkpoint's data description, so
a loaded run maps its spectrograms back to audio with the statistics it was trained on. The grid
is the spectrograms of a fixed latent batch, with the same clips written beside it as one WAV.

`gankit eval RUN` scores samples with the bundled spoken-digit classifier (`evaluation.py`: an
Inception-score analogue, FID on its features, class KL, beside real clips).

With `model.conditional` (labelled data: spoken-digits' digits, a folder's class subfolders) G
takes the class as G(z, y) and D is the projection discriminator (`model.d_head: projection`,
Miyato & Koyama 2018; `gankit.models.audio`) or, with `model.d_head: acgan`, the plain critic
with AC-GAN's digit classifier beside it (Odena et al. 2017; `phases.py`): each critic batch's
fakes carry its real clips' labels, and G's update the first critic batch's, so real and fake
labels follow the data's mix.
`gankit sample RUN --wav DIR --class 7` and `gankit speak RUN --digit 7` then ask for a digit, and
`gankit eval` adds the classifier's accuracy against the asked digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gankit import viz
from gankit.data import BatchSampler
from gankit.data.spectrogram import bin_stats, log_spectrogram, normalise, to_image
from gankit.data.speech import CLIP, RATE, load_audio, spectrogram_images
from gankit.errors import GankitError
from gankit.models.audio import SpecGANDiscriminator, SpecGANGenerator, WaveGANDiscriminator, WaveGANGenerator
from gankit.tasks.audio.phases import STATS, Objective, wgan_phase
from gankit.tasks.base import Card, OnnxGraph, Parts, Task
from gankit.util import full


@dataclass
class AudioTensors:
    """Clips (N, CLIP) int16 on the device, labels, and SpecGAN's bin statistics."""

    name: str
    x: torch.Tensor
    y: torch.Tensor | None
    classes: list[str]
    mu: torch.Tensor
    sigma: torch.Tensor
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.x)

    def meta(self) -> dict:
        return {"name": self.name, "kind": "audio", "rate": RATE, "length": CLIP, "classes": self.classes,
                "spec_mu": self.mu.tolist(), "spec_sigma": self.sigma.tolist(), "count": len(self)}


def to_wave(x: torch.Tensor) -> torch.Tensor:
    """int16 clips (B, T) -> float (B, 1, T) in [-1, 1]."""
    return (full(x) / 32767.0)[:, None]  # float32 (float64 in reference runs)


def model_input(cfg, data: AudioTensors, clips: torch.Tensor) -> torch.Tensor:
    """What D sees of int16 clips: waveforms (WaveGAN) or normalised log spectrograms (SpecGAN)."""
    w = to_wave(clips)
    if cfg.audio.method == "wavegan":
        return w
    return normalise(log_spectrogram(w[:, 0]), data.mu, data.sigma)[:, None]  # (B, 1, 128, 128)


def networks(cfg, n_classes: int = 0):
    """(G, D); conditional on `n_classes` classes when model.conditional (else plain): D's projection
    (model.d_head: projection) or its AC-GAN classifier (acgan) has one entry per class."""
    m, k = cfg.model, n_classes if cfg.model.conditional else 0
    proj, aux = (k, 0) if m.d_head == "projection" else (0, k if m.d_head == "acgan" else 0)
    if cfg.audio.method == "wavegan":
        return (WaveGANGenerator(m.z_dim, m.g_width, n_classes=k),
                WaveGANDiscriminator(m.d_width, shuffle=cfg.audio.phase_shuffle, n_classes=proj, aux_classes=aux))
    return (SpecGANGenerator(m.z_dim, m.g_width, n_classes=k),
            SpecGANDiscriminator(m.d_width, n_classes=proj, aux_classes=aux))


def grid_labels(cfg, n_classes: int, n: int) -> torch.Tensor | None:
    """The grid's labels: classes 0, 1, 2, ... in turn (None for a plain run)."""
    return torch.arange(n) % n_classes if cfg.model.conditional else None


class AudioTask(Task):
    name = "audio"
    stat_names = STATS

    def class_conditional(self, cfg) -> bool:
        return cfg.model.conditional

    def double_backward(self, cfg) -> bool:
        return bool(cfg.reg.gp)  # WGAN-GP's penalty differentiates D's gradient

    def load_data(self, cfg, device, strict: bool = False):
        a = load_audio(cfg.data.source)
        x = torch.from_numpy(a.x)
        spec = torch.cat([log_spectrogram(to_wave(c)[:, 0]) for c in x.split(512)])  # (N, 128, 128)
        mu, sigma = bin_stats(spec)
        y = None if a.y is None else torch.from_numpy(a.y)
        return AudioTensors(a.name, x.to(device), None if y is None else y.to(device), a.classes, mu.to(device),
                            sigma.to(device), a.notes)

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        if cfg.model.conditional and (data.y is None or len(data.classes) < 2):
            raise GankitError(f"model.conditional: {cfg.data.source} has no labels; a conditional audio GAN needs "
                              "labelled clips (spoken-digits, or a folder with one subfolder per class)")
        G, D = networks(cfg, len(data.classes))
        nets = {"G": G, "D": D}
        return Parts(nets=nets, groups={"G": ("G",), "D": ("D",)}, lrs={"G": cfg.train.lr_g, "D": cfg.train.lr_d},
                     objective=Objective(cfg.train.loss, cfg.reg.gp, D.aux_fc.out_features if D.aux_fc else 0,
                                         cfg.reg.aux_weight, cfg.audio.aux_fakes), ema=("G",) if cfg.train.ema else (),
                     forwards=dict(nets), ddp=False,
                     samplers={"x": BatchSampler(len(data), cfg.train.batch, cfg.seed, device)})

    def draw(self, st) -> tuple:
        cfg, s = st.cfg, slice(st.shard[0], sum(st.shard))
        idx = torch.stack([st.samplers["x"].next()[s] for _ in range(cfg.train.n_critic)])  # (n_critic, B)
        z = torch.randn(cfg.train.n_critic + 1, cfg.train.batch, cfg.model.z_dim, device=st.device,
                        generator=st.gens["z"])[:, s]
        return idx, z

    def phases(self, st, inputs: tuple, flags) -> None:
        idx, z = inputs
        reals = [model_input(st.cfg, st.data, st.data.x[i]) for i in idx]
        ys = [st.data.y[i] for i in idx] if st.cfg.model.conditional else None  # n_critic x (B,)
        st.acc += wgan_phase(st, reals, z, ys)

    def log_row(self, cfg, st, sums: dict[str, float], window: int) -> dict:
        """The shared row; AC-GAN's cross-entropies (D's last critic update, G's) only when D has
        the classifier, so other runs log what they did."""
        row = super().log_row(cfg, st, sums, window)
        if not st.obj.aux_classes:
            del row["aux_d"], row["aux_g"]
        return row

    def grid(self, cfg, data, st):
        """The spectrograms of a fixed latent batch (SpecGAN's own output; WaveGAN's clips'), and
        the clips as one WAV beside the image (0.25 s of silence between them)."""
        from gankit.tasks.audio.infer import decode, joined, write_wav

        z = torch.randn(cfg.audio.grid_clips, cfg.model.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
        z = z.to(data.x.device)
        y = grid_labels(cfg, len(data.classes), len(z))
        y = None if y is None else y.to(data.x.device)
        G = st.sampling_nets["G"]

        @torch.no_grad()
        def write(step: int, path):
            out = G(z, y)
            clips = decode(cfg, out, data.mu, data.sigma)  # (B, T) float
            spec = out if cfg.audio.method == "specgan" else normalise(log_spectrogram(clips), data.mu,
                                                                       data.sigma)[:, None]  # (B, 1, 128, 128)
            write_wav(path.with_suffix(".wav"), joined(clips))
            return viz.save_grid(to_image(spec), path, nrow=cfg.audio.grid_clips)

        return write

    def preview(self, cfg, data):
        x = data.x[:16]
        return spectrogram_images(to_wave(x)[:, 0], data.mu, data.sigma)

    def evaluator(self, cfg, data, st, dist):
        if cfg.eval.every:
            raise GankitError("eval.every: audio runs are scored after training (gankit eval RUN); set eval.every 0")
        return None

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        from gankit.tasks.audio.evaluation import evaluate_audio

        return evaluate_audio(cfg, nets["G"], data_meta or {}, device, min(n, 2000), featurenet, run, step)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        return {"G": networks(cfg, len(data_meta.get("classes") or []))[0]}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        z_dim, k = cfg.model.z_dim, len(data_meta.get("classes") or []) if cfg.model.conditional else 0

        def example(n, hw, gen):
            z = {"z": torch.randn(n, z_dim, generator=gen)}
            return {**z, "label": torch.randint(k, (n,), generator=gen)} if k else z  # named as generation's

        if cfg.audio.method == "wavegan":
            notes = (f"z: float32 (N, {z_dim}), N(0, 1)", f"output: float32 (N, 1, {CLIP}) waveforms in [-1, 1] "
                     f"at {RATE} Hz")
        else:
            notes = (f"z: float32 (N, {z_dim}), N(0, 1)",
                     "output: float32 (N, 1, 128, 128) normalised log-magnitude spectrograms; audio needs them "
                     "de-normalised (the training set's per-bin spec_mu and spec_sigma, in the export's "
                     "config.json 'data') and inverted by Griffin-Lim outside the graph, as "
                     "gankit.tasks.audio.infer.decode does")
        if k:
            notes += (f"label: int64 (N,), the class 0..{k - 1} ({', '.join(map(str, data_meta['classes']))})",)
        return [OnnxGraph("G", nets["G"].eval(), example, output="audio", image_output=False, notes=notes)]

    def card(self, cfg, data_meta: dict) -> Card:
        kind = "the waveform" if cfg.audio.method == "wavegan" else "a log spectrogram, made sound by Griffin-Lim"
        cond = " + a class label (a digit)" if cfg.model.conditional else ""
        return Card(None, f"noise z{cond} -> a one-second clip: {kind} ({cfg.audio.method})",
                    f"Generating one-second sound clips ({RATE} Hz) like the training clips, for research "
                    "and sound design.",
                    "Clips imitate the training set and may reproduce its recordings; speech-like output is not "
                    "intelligible speech and must not be presented as a real person's voice.", (cfg.audio.method,))

    def describe_data(self, data) -> list[str]:
        classes = f", {len(data.classes)} classes" if data.classes else ""
        return [f"data: {data.name}: {len(data)} clips of {CLIP} samples at {RATE} Hz{classes}"] + \
            [f"data: {n}" for n in data.notes]


TASK = AudioTask()
