"""The vocoder task: a log mel spectrogram -> its waveform, by HiFi-GAN (Kong et al. 2020) or
Vocos (Siuzdak 2023; vocoder.g_arch), trained against HiFi-GAN's discriminators.

Data is a `gankit.data.speech.AudioData` (int16 clips of 16,384 samples at 16 kHz: the
`spoken-digits` training voices, or a user's folder), kept on the device as int16. Each step
draws clip indices and a random crop offset per clip (`draw`, from the run's own generator), so
the crops are part of the step's inputs: exact resume and the graph-shaped step need nothing new.
`phases` crops the segments, takes their mel and runs HiFi-GAN's step, whichever G (`phases.py`).

The grid is fixed held-out clips (voices training never hears, for spoken digits): their mel
above G's re-synthesis's mel, with real | vocoded pairs as one WAV beside it. `gankit eval RUN`
scores G against Griffin-Lim on held-out voices (`evaluation.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gankit import viz
from gankit.data import BatchSampler
from gankit.data.speech import CLIP, RATE, load_audio, spoken_digits
from gankit.errors import GankitError
from gankit.tasks.base import Card, OnnxGraph, Parts, Task
from gankit.tasks.vocoder.mel import LOG_FLOOR, mel, spec_of
from gankit.tasks.vocoder.nets import Generator, MultiPeriodD, MultiResolutionD, MultiScaleD
from gankit.tasks.vocoder.phases import STATS, Objective, gan_phase, mel_phase
from gankit.tasks.vocoder.vocos import Vocos
from gankit.util import eval_mode


@dataclass
class ClipData:
    """Clips (N, CLIP) int16 on the device."""

    name: str
    x: torch.Tensor
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.x)

    def meta(self) -> dict:
        return {"name": self.name, "kind": "audio", "rate": RATE, "length": CLIP, "count": len(self)}


def generator(cfg) -> Generator | Vocos:
    v = cfg.vocoder
    if v.g_arch == "vocos":
        return Vocos(v.n_mels, v.vocos_dim, v.vocos_layers, v.vocos_mlp, v.vocos_n_fft, v.hop)
    return Generator(v.n_mels, cfg.model.g_width, v.upsample, v.upsample_kernels, v.res_kernels, v.res_dilations)


ARCH_NAMES = {"hifigan": "HiFi-GAN", "vocos": "Vocos"}


def discriminators(cfg) -> dict:
    """HiFi-GAN's MPD, and beside it its MSD or UnivNet's MRD (vocoder.discriminators), by name."""
    d, v = cfg.model.d_width, cfg.vocoder
    if v.discriminators == "mpd+mrd":
        return {"MPD": MultiPeriodD(d), "MRD": MultiResolutionD(v.mrd_width or d)}
    return {"MPD": MultiPeriodD(d), "MSD": MultiScaleD(d)}


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 32767.0


def held_out_clips(cfg, n: int) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """n clips (n, CLIP) float the run never trained on, their labels, and what they are: the
    spoken-digit test voices (f4, m6, m7, klatt4), every digit equally; for a folder run, its
    last n clips (a folder has no split: say so)."""
    if cfg.data.source.startswith("spoken-digits"):
        a = spoken_digits("test")
        step = max(1, len(a.x) // n)
        return to_float(torch.from_numpy(a.x[::step][:n])), torch.from_numpy(a.y[::step][:n]), \
            "spoken-digits:test (voices f4, m6, m7, klatt4, unseen in training)"
    a = load_audio(cfg.data.source)
    return to_float(torch.from_numpy(a.x[-n:])), None, f"the last {min(n, len(a.x))} clips of {a.name} (trained on)"


def mel_image(m: torch.Tensor) -> torch.Tensor:
    """Log mels (B, n_mels, F) -> uint8 (B, 1, n_mels, F) images, low bands at the bottom, from
    the log floor (black) to log 10 (white)."""
    lo, hi = torch.log(torch.tensor(LOG_FLOOR)), torch.log(torch.tensor(10.0))
    return ((m - lo) / (hi - lo) * 255).clamp(0, 255).round().to(torch.uint8)[:, None].flip(2)


class VocoderTask(Task):
    name = "vocoder"
    stat_names = STATS
    uses_aug_generator = False  # the crops come from st.gens["z"] in draw; no augmentation

    def load_data(self, cfg, device, strict: bool = False):
        a = load_audio(cfg.data.source)
        return ClipData(a.name, torch.from_numpy(a.x).to(device), list(a.notes))

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        if cfg.model.conditional:
            raise GankitError("model.conditional: a vocoder is conditioned on its mel spectrogram; set it false")
        ds = discriminators(cfg)
        nets = {"G": generator(cfg), **ds}
        v = cfg.vocoder
        return Parts(nets=nets, groups={"G": ("G",), "D": tuple(ds)},
                     lrs={"G": cfg.train.lr_g, "D": cfg.train.lr_d},
                     objective=Objective(spec_of(cfg), v.mel_weight, v.fm_weight, v.stft_weight, tuple(ds)),
                     ema=("G",) if cfg.train.ema else (),
                     forwards=dict(nets), ddp=False,
                     samplers={"x": BatchSampler(len(data), cfg.train.batch, cfg.seed, device)})

    def flags(self, cfg, t: int):
        v = cfg.vocoder
        if t >= v.gan_start:
            return "gan"
        return "warm" if v.d_start is not None and t >= v.d_start else "mel"

    def draw(self, st) -> tuple:
        """This rank's clip indices and crop offsets, drawn for the whole global batch."""
        idx = st.samplers["x"].next()  # (B,)
        off = torch.randint(0, CLIP - st.cfg.vocoder.segment + 1, (len(idx),), device=st.device,
                            generator=st.gens["z"])
        s = slice(st.shard[0], sum(st.shard))
        return idx[s], off[s]

    def phases(self, st, inputs: tuple, flags) -> None:
        idx, off = inputs
        cols = off[:, None] + torch.arange(st.cfg.vocoder.segment, device=off.device)  # (B, segment)
        y = to_float(torch.gather(st.data.x[idx], 1, cols))[:, None]  # (B, 1, segment)
        st.acc += gan_phase(st, y) if flags == "gan" else mel_phase(st, y, warm=flags == "warm")

    def log_row(self, cfg, st, sums: dict[str, float], window: int) -> dict:
        row = {"step": st.step, "epoch": round(st.samplers["x"].epoch, 4),
               "loss_g": round(sums["loss_g"] / window, 6), "mel_l1": round(sums["mel_l1"] / window, 6)}
        if cfg.vocoder.stft_weight:
            row["stft"] = round(sums["stft"] / window, 6)
        n = sums["d_steps"]
        if n:  # the discriminators' scalars, averaged over the window's steps that trained them
            row.update({k: round(sums[k] / n, 6) for k in ("loss_d", "d_real", "d_fake")})
        n = sums["gan_steps"]
        if n:  # G's adversarial scalars, averaged over the GAN steps of the window
            row.update({k: round(sums[k] / n, 6) for k in ("adv_g", "fm")})
        return row

    def grid(self, cfg, data, st):
        """Fixed held-out clips: the real mel above the vocoded clip's mel, one column each; the
        audio (real, then vocoded, per clip) as one WAV beside the image."""
        from gankit.tasks.audio.infer import joined, write_wav

        clips, _, _ = held_out_clips(cfg, cfg.vocoder.grid_clips)
        clips = clips.to(data.x.device)
        spec = spec_of(cfg)
        m = mel(clips, spec)
        G = st.sampling_nets["G"]

        @torch.no_grad()
        def write(step: int, path):
            with eval_mode(G):
                y = G(m)[:, 0]  # (B, CLIP)
            write_wav(path.with_suffix(".wav"), joined(torch.stack([clips, y], 1).flatten(0, 1)))
            return viz.save_grid(torch.cat([mel_image(m), mel_image(mel(y, spec))]), path, nrow=len(clips))

        return write

    def preview(self, cfg, data):
        return mel_image(mel(to_float(data.x[:8]), spec_of(cfg)))

    def evaluator(self, cfg, data, st, dist):
        if cfg.eval.every:
            raise GankitError("eval.every: vocoder runs are scored after training (gankit eval RUN); set eval.every 0")
        return None

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        from gankit.tasks.vocoder.evaluation import evaluate_vocoder

        if source is not None:
            cfg = cfg.replace(**{"data.source": source})
        return evaluate_vocoder(cfg, nets["G"], device, min(n, cfg.vocoder.eval_clips), run=run, step=step)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        return {"G": generator(cfg)}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        v = cfg.vocoder
        frames = v.segment // v.hop

        def example(n, hw, gen):  # hw: (1, another length), for the check of the dynamic length
            return {"mel": torch.randn(n, v.n_mels, hw[1] if hw else frames, generator=gen) - 4}

        notes = (f"mel: float32 (N, {v.n_mels}, frames) log mel spectrograms (natural log of the Slaney mel "
                 f"filterbank times |STFT|, clamped at 1e-5; n_fft {v.n_fft}, hop {v.hop}, window {v.win}, "
                 f"{v.fmin:g}-{v.fmax:g} Hz at {RATE} Hz: gankit.tasks.vocoder.mel)",
                 f"output: float32 (N, 1, frames x {v.hop}) waveforms in [-1, 1] at {RATE} Hz; any number of frames")
        return [OnnxGraph("G", nets["G"].eval(), example, output="audio", image_output=False, notes=notes,
                          length_inputs=("mel",), length=frames)]

    def card(self, cfg, data_meta: dict) -> Card:
        return Card("audio-to-audio", f"a log mel spectrogram ({cfg.vocoder.n_mels} bands) -> its {RATE // 1000} kHz "
                    f"waveform (a {ARCH_NAMES[cfg.vocoder.g_arch]} vocoder)",
                    "Turning mel spectrograms (from recordings, or from a text-to-speech front end) into audio, "
                    "for research and speech synthesis experiments.",
                    "It re-synthesises the voice in the mel it is given, including a real person's: do not use it to "
                    "impersonate anyone. Trained on the data below only; other voices, languages and noisy audio "
                    "come out worse.", (cfg.vocoder.g_arch, "vocoder"),
                    gan_start=cfg.vocoder.gan_start)

    def describe_data(self, data) -> list[str]:
        return [f"data: {data.name}: {len(data)} clips of {CLIP} samples at {RATE} Hz"] + \
            [f"data: {n}" for n in data.notes]


TASK = VocoderTask()
