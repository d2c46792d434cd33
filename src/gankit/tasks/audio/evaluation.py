"""How good an audio run's clips are, as WaveGAN's paper scored SC09: through a spoken-digit
classifier trained here (the bundled `spoken-digits-cnn`, a `FeatureNet` on normalised log
spectrogram images; its test accuracy on unseen voices is in its sidecar), beside real clips.

    is         the classifier Inception score exp(E_x KL(p(y|x) || p(y))) of n samples (10 is the
               most a 10-class set can score; real held-out clips show what real speech gets)
    fid        Frechet distance of the classifier's penultimate features, samples against the
               held-out clips (`spoken-digits:test`, voices training never heard)
    class_kl   KL(generated digit histogram || held-out histogram): are all ten digits made?
    real       the same scores for n training clips: the ceiling

A digit-conditional run (model.conditional) is asked for the digits in turn (n / 10 clips each,
the same latents as an unconditional run's), and adds

    accuracy   the classifier's accuracy against the asked digit: per digit and the mean, beside
               the same for n real held-out clips (the ceiling: the classifier's own accuracy on
               voices training never heard) and chance (1 / 10)

Clips become images one way for every party (gankit.data.speech.spectrogram_images with the
training split's statistics), so samples, references and the classifier agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankit.data.speech import CLIP, spectrogram_images, spoken_digits, train_spectrogram_stats
from gankit.errors import GankitError
from gankit.util import eval_mode

REF = "spoken-digits-spec:test"


def bundled_speechnet_path() -> Path:
    """The packaged spoken-digit classifier (`gankit features train --data spoken-digits-spec`)."""
    return Path(__file__).resolve().parents[2] / "metrics" / "weights" / "spoken-digits-cnn.safetensors"


@torch.no_grad()
def sample_clips(cfg, G, data_meta: dict, n: int, device, seed: int = 0, batch: int = 250,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """n clips (n, CLIP) float on the CPU from G, SpecGAN's through Griffin-Lim; `labels` (n,):
    a conditional G's classes."""
    from gankit.tasks.audio.infer import decode

    g = torch.Generator().manual_seed(seed)
    mu, sigma = (torch.tensor(data_meta[k], device=device) for k in ("spec_mu", "spec_sigma"))
    out = []
    for i in range(0, n, batch):
        z = torch.randn(min(batch, n - i), cfg.model.z_dim, generator=g).to(device)
        y = None if labels is None else labels[i:i + len(z)].to(device)
        out.append(decode(cfg, G(z, y), mu, sigma, torch.Generator(device=device).manual_seed(seed + i)).cpu())
    return torch.cat(out) if out else torch.zeros(0, CLIP)


def evaluate_audio(cfg, G, data_meta: dict, device="cpu", n: int = 1000, featurenet: str | None = None,
                   run: str | None = None, step: int | None = None, seed: int = 0) -> dict:
    if not cfg.data.source.startswith("spoken-digits") and featurenet is None:
        raise GankitError(f"{cfg.data.source}: audio scores need a classifier of its classes; the bundled one knows "
                          "spoken digits (train one with gankit features train on your spectrogram images)")
    ev = scorer(featurenet, device)
    asked = torch.arange(n) % len(data_meta["classes"]) if cfg.model.conditional else None  # the digits in turn
    with eval_mode(G):
        clips = sample_clips(cfg, G, data_meta, n, device, seed, labels=asked)
    real = real_clips(n)
    out = {"gankit": score_clips(ev, clips, seed), "real": score_clips(ev, real, seed),
           "protocol": {**protocol(ev, n, seed), "real": f"{len(real)} training clips", "run": run, "step": step}}
    if asked is not None and cfg.data.source.startswith("spoken-digits"):  # the classifier's classes are the run's
        held, held_y = held_out_clips(n)
        out["accuracy"] = {"gankit": digit_accuracy(ev, clips, asked), "held_out": digit_accuracy(ev, held, held_y),
                           "chance": 1 / 10}
        out["protocol"]["accuracy"] = (f"the classifier's digit against the asked one, {n // 10} clips per digit; "
                                       f"held_out: {len(held)} real clips of spoken-digits:test (unseen voices)")
    return out


def scorer(featurenet: str | None = None, device="cpu"):
    """The `Evaluator` of the spoken-digit classifier (the bundled one, or `featurenet`)."""
    from gankit.metrics.evaluate import Evaluator

    net = Path(featurenet) if featurenet else bundled_speechnet_path()
    if not net.is_file():
        raise GankitError(f"{net}: the spoken-digit classifier is not there; build it with gankit features train "
                          "--data spoken-digits-spec --test spoken-digits-spec:test --out " + str(net))
    return Evaluator(net, device)


def protocol(ev, n: int, seed: int) -> dict:
    return {"metric": f"classifier IS, FID on its features, class KL ({ev.net_name}.safetensors)", "n": n,
            "ref": f"{REF} (held-out voices)", "sample_seed": seed}


def spread(n: int, total: int) -> np.ndarray:
    """min(n, total) indices spread evenly over range(total): floor(k total / n), so the whole of a
    set stored in digit order is covered (a plain stride of total // n, cut at n, dropped the last
    digits whenever n did not divide total); the same picks as that stride when it does."""
    n = min(n, total)
    return np.arange(n) * total // n


def real_clips(n: int) -> torch.Tensor:
    """n training clips (n, CLIP) float, every digit equally (the set is stored in digit order)."""
    train = spoken_digits("train").x
    return torch.from_numpy(train[spread(n, len(train))]).float() / 32767.0


def held_out_clips(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n held-out clips (n, CLIP) float, spread over the set (every digit about equally), and their
    digits (n,)."""
    test = spoken_digits("test")
    pick = spread(n, len(test.x))
    return torch.from_numpy(test.x[pick]).float() / 32767.0, torch.from_numpy(test.y[pick]).long()


@torch.no_grad()
def classify(ev, images: torch.Tensor) -> torch.Tensor:
    """The classifier's class probabilities (N, 10) of uint8 spectrogram images (N, 1, 128, 128)."""
    return ev.features(images).logits.softmax(1)


def digit_accuracy(ev, clips: torch.Tensor, digits: torch.Tensor) -> dict:
    """How often the classifier hears the digit asked for (or spoken): the mean over the digits, then
    each digit's (by its word), for float clips (N, CLIP), as every party is scored (training statistics)."""
    from gankit.data.speech import DIGITS

    mu, sigma = train_spectrogram_stats()
    hit = (classify(ev, spectrogram_images(clips, mu, sigma)).argmax(1) == digits).float()  # (N,)
    per = {DIGITS[k]: round(float(hit[digits == k].mean()), 4) for k in range(10) if (digits == k).any()}
    return {"mean": round(sum(per.values()) / len(per), 4), **per}  # one line in gankit eval's print-out


def score_clips(ev, clips: torch.Tensor, seed: int = 0) -> dict:
    """IS, FID against the held-out voices and class KL of float clips (N, CLIP) through the
    classifier's Evaluator `ev`, as every party is scored: spectrogram images with the training
    split's statistics."""
    mu, sigma = train_spectrogram_stats()
    return _pick(ev.evaluate(spectrogram_images(clips, mu, sigma), ("fid", "is", "classes"), REF, seed))


def _pick(r: dict) -> dict:
    return {k: r[k] for k in ("is", "fid", "class_kl") if k in r}
