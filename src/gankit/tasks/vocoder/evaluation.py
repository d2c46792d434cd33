"""How good a vocoder is: held-out clips re-synthesised from their mel, against the real clip,
beside the classical inversions of the same mel.

    pesq       ITU-T P.862.2 wideband PESQ at 16 kHz (`pesq`), MOS-LQO from 1.04 to 4.64: mean
               over the clips it scores (a clip PESQ finds no speech in is counted, not scored)
    stoi       short-time objective intelligibility (`pystoi`, Taal et al. 2011), 0 to 1, of all
               the clips joined into one signal (each against the real clips joined the same way):
               STOI's 384 ms analysis windows need more speech than one spoken digit has once its
               silent frames are dropped (pystoi returns 1e-5 for a short clip)
    mcd        mel-cepstral distortion (dB): c = DCT-II (orthonormal) of the log mel (mel.py) over
               bands, coefficients 1-13 (c_0, the level, left out); per frame
               (10 / ln 10) sqrt(2 sum_d (c_d - c'_d)^2), averaged over the real clip's speech
               frames (energy within 40 dB of its loudest frame); no time warping: the lengths match
    accuracy   the bundled spoken-digit classifier's accuracy on the re-synthesised clips
               (`gankit.tasks.audio.evaluation.scorer`, its own input: SpecGAN-style spectrogram
               images with the training split's statistics); spoken digits only
    rtf        real-time factor: seconds of compute per second of audio made, with this process's
               torch threads (under 1: faster than real time)

Paired against each baseline (`paired`, with the run's G and a baseline in the same call): the
per-clip PESQ differences (mean, its standard error, the clips where G scores higher) and STOI
on disjoint blocks of 10 consecutive clips joined (mean, smallest and largest difference, the
blocks where G scores higher): how far a mean's margin is from the spread of the clips under it.

Rows ("methods"):

    real             the real clip itself: the ceiling (PESQ 4.64, STOI 1, MCD 0)
    gankit           the run's G on the clip's mel
    griffin_lim_N    the mel -> linear magnitude by the filterbank's pseudo-inverse (negatives
                     clipped), then N Griffin-Lim iterations from a seeded random phase
    specgan_gl16     SpecGAN's own path: its 128 x 128 linear log spectrogram (n_fft 256, hop 128:
                     more detail than 80 mel bands) inverted by 16 Griffin-Lim iterations, the audio
                     task's decoder
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from gankit.data.speech import CLIP, RATE
from gankit.tasks.vocoder.mel import MelSpec, griffin_lim_mel, mel, spec_of
from gankit.util import eval_mode

N_CEPS = 13
SPEECH_DB = 40.0


def _threads() -> int:
    return torch.get_num_threads()


@torch.no_grad()
def vocode_mels(G, m: torch.Tensor, device, batch: int = 25) -> torch.Tensor:
    """Log mels (n, n_mels, F) -> clips (n, F hop) float on the CPU."""
    with eval_mode(G):
        out = [G(m[i:i + batch].to(device))[:, 0].cpu() for i in range(0, len(m), batch)]
    return torch.cat(out)


def cepstra(m: torch.Tensor) -> np.ndarray:
    """Log mel (n_mels, F) -> cepstra 1..13 (F, 13)."""
    from scipy.fft import dct

    return dct(m.double().numpy().T, type=2, norm="ortho", axis=1)[:, 1:N_CEPS + 1]


def mcd(real: torch.Tensor, fake: torch.Tensor, spec: MelSpec) -> float:
    """Mel-cepstral distortion (dB) of one clip (T,) against the real one, over its speech frames."""
    mr, mf = mel(real[None], spec)[0], mel(fake[None], spec)[0]  # (n_mels, F)
    energy = torch.logsumexp(2 * mr, 0)  # log power per frame
    speech = (energy >= energy.max() - SPEECH_DB * math.log(10) / 10).numpy()
    d = cepstra(mr)[speech] - cepstra(mf)[speech]
    return float(np.mean(10 / math.log(10) * np.sqrt(2 * (d ** 2).sum(1))))


def _need_speech_extra() -> None:
    import importlib.util

    from gankit.errors import GankitError

    for name in ("pesq", "pystoi"):
        if importlib.util.find_spec(name) is None:
            raise GankitError(f"the vocoder's scores need the speech extra ({name} is not installed): "
                              "pip install 'gankit[speech]' (make installs it)")


def pesq_wb(real: np.ndarray, fake: np.ndarray) -> float | None:
    from pesq import pesq
    from pesq.cypesq import PesqError

    try:
        return float(pesq(RATE, real, fake, "wb"))
    except PesqError:  # no utterance found: counted by the caller
        return None


def classifier_accuracy(clips: torch.Tensor, labels: torch.Tensor) -> float:
    from gankit.data.speech import spectrogram_images, train_spectrogram_stats
    from gankit.tasks.audio.evaluation import scorer

    mu, sigma = train_spectrogram_stats()
    logits = scorer(None, "cpu").features(spectrogram_images(clips.clamp(-1, 1), mu, sigma)).logits
    return float((logits.argmax(1).cpu() == labels).float().mean())


BLOCK = 10  # clips joined per STOI block of the paired comparison


def _stoi(real: torch.Tensor, fake: torch.Tensor) -> float:
    """STOI of clips (n, T) joined into one signal, against the real clips joined the same way."""
    from pystoi import stoi

    return float(stoi(real.flatten().double().numpy(), fake.flatten().double().numpy(), RATE, extended=False))


def score(real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None, spec: MelSpec,
          per_clip: dict | None = None) -> dict:
    """PESQ, STOI, MCD (and classifier accuracy with labels) of clips (n, T) against the real ones.
    `per_clip`, when given, receives each clip's PESQ (None: unscored) and the STOI of each block
    of BLOCK clips (when there are two blocks or more), for `paired`."""
    _need_speech_extra()
    fake = fake.clamp(-1, 1)
    qs, c = [], []
    for r, f in zip(real, fake):
        qs.append(pesq_wb(r.double().numpy(), f.double().numpy()))
        c.append(mcd(r, f, spec))
    p = [q for q in qs if q is not None]
    out = {"pesq": round(float(np.mean(p)), 3) if p else None, "stoi": round(_stoi(real, fake), 4),
           "mcd": round(float(np.mean(c)), 3)}
    if len(p) < len(qs):
        out["pesq_unscored"] = len(qs) - len(p)
    if labels is not None:
        out["accuracy"] = round(classifier_accuracy(fake, labels), 4)
    if per_clip is not None:
        blocks = range(0, len(real) - BLOCK + 1, BLOCK) if len(real) >= 2 * BLOCK else ()
        per_clip.update(pesq=qs, stoi=[_stoi(real[i:i + BLOCK], fake[i:i + BLOCK]) for i in blocks])
    return out


def paired(ours: dict, theirs: dict) -> dict:
    """G against one baseline on the same clips, from `score`'s per_clip records: PESQ per clip
    (both scored) and STOI per block: mean difference (ours - theirs), PESQ's standard error,
    STOI's smallest and largest block difference, and how often ours is higher."""
    d = np.array([a - b for a, b in zip(ours["pesq"], theirs["pesq"]) if a is not None and b is not None])
    out = {}
    if len(d):
        out.update(pesq_diff=round(float(d.mean()), 4),
                   pesq_se=round(float(d.std(ddof=1) / math.sqrt(len(d))), 4) if len(d) > 1 else None,
                   pesq_higher=f"{int((d > 0).sum())}/{len(d)} clips")
    s = np.array(ours["stoi"]) - np.array(theirs["stoi"])
    if len(s):
        out.update(stoi_diff=round(float(s.mean()), 4), stoi_min=round(float(s.min()), 4),
                   stoi_max=round(float(s.max()), 4), stoi_higher=f"{int((s > 0).sum())}/{len(s)} blocks of {BLOCK}")
    return out


def resynthesise(method: str, clips: torch.Tensor, spec: MelSpec, G=None, device="cpu", seed: int = 0):
    """(clips (n, T) made by `method` from the real clips' representation, seconds it took); G is
    the generator of "gankit"."""
    from gankit.data.spectrogram import griffin_lim, log_spectrogram

    gen = torch.Generator().manual_seed(seed)
    if method == "real":
        return clips, 0.0
    if method == "specgan_gl16":
        s = log_spectrogram(clips)
        t = time.perf_counter()
        return griffin_lim(s, clips.shape[1], 16, gen), time.perf_counter() - t
    m = mel(clips, spec)
    t = time.perf_counter()
    if method == "gankit":
        out = vocode_mels(G, m, device)
    elif method.startswith("griffin_lim_"):
        out = griffin_lim_mel(m, spec, int(method.rsplit("_", 1)[1]), gen)
    else:
        raise ValueError(method)
    return out, time.perf_counter() - t


def evaluate_vocoder(cfg, G, device="cpu", n: int = 100, methods=("gankit", "griffin_lim_32"),
                     run: str | None = None, step: int | None = None, seed: int = 0,
                     others: dict | None = None) -> dict:
    """Scores of `methods` on n held-out clips (`task.held_out_clips`), with the protocol.
    `others` {name: G}: other runs' generators (of the same mel) scored after `methods` under
    their names, and paired against "gankit" like the baselines (an ablation: stage against stage)."""
    from gankit.tasks.vocoder.task import held_out_clips

    clips, labels, what = held_out_clips(cfg, n)
    spec = spec_of(cfg)
    others = others or {}
    methods = [*methods, *others]
    out, per_clip = {}, {}
    for method in methods:
        fake, secs = resynthesise("gankit" if method in others else method, clips, spec, others.get(method, G),
                                  device, seed)
        row = score(clips, fake, labels, spec, per_clip.setdefault(method, {}))
        if method != "real":
            row["rtf"] = round(secs / (len(clips) * CLIP / RATE), 5)
        out[method] = row
    if "gankit" in methods:
        versus = {f"gankit vs {m}": paired(per_clip["gankit"], per_clip[m]) for m in methods
                  if m not in ("gankit", "real")}
        if versus:
            out["paired"] = versus
    out["protocol"] = {
        "clips": f"{len(clips)} clips of {CLIP} samples at {RATE} Hz: {what}",
        "mel": f"{spec.n_mels} bands, n_fft {spec.n_fft}, hop {spec.hop}, window {spec.win}, "
               f"{spec.fmin:g}-{spec.fmax:g} Hz (Slaney filterbank, log clamped at 1e-5)",
        "metric": "PESQ wideband (pesq), STOI (pystoi), MCD (13 cepstra of the log mel, speech frames, dB), "
                  "spoken-digit classifier accuracy, RTF (compute s / audio s)",
        "griffin_lim": "mel -> linear magnitude by the filterbank's pseudo-inverse, negatives clipped; "
                       f"random phase from seed {seed}",
        "threads": _threads(), "device": str(device), "run": run, "step": step}
    return out
