"""The audio task on a tiny folder of tones: WaveGAN and SpecGAN train, the graph-shaped step
equals the eager one and reads nothing back, resume is exact, phase shuffle shifts as WaveGAN
says, spectrograms go back to audio, and `gankit sample --wav` writes clips."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.data.spectrogram import griffin_lim, log_spectrogram
from gankit.models.audio import WaveGANDiscriminator, WaveGANGenerator, phase_shuffle
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

TINY = ["model.g_width=2", "model.d_width=2", "model.z_dim=4", "train.batch=4", "train.n_critic=2",
        "log.progress=false", "device=cpu", "log.every=2", "log.grid_every=1000", "audio.grid_clips=2",
        "audio.griffin_lim=2"]


@pytest.fixture
def tones(tmp_path):
    rate = 16000
    for k, freq in enumerate((220, 330, 440, 550, 660, 770, 880, 990)):
        d = tmp_path / "tones" / ("low" if k < 4 else "high")
        d.mkdir(parents=True, exist_ok=True)
        t = np.arange(rate // 2) / rate
        x = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
        with wave.open(str(d / f"{freq}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(x.tobytes())
    return tmp_path / "tones"


def _cfg(preset, src, *extra):
    return load_config(preset, overrides=[*TINY, f"data.source={src}", *extra])


@pytest.mark.parametrize("preset", ["wavegan", "specgan", "specgan-cond-cpu", "specgan-acgan-cpu"])
def test_graph_shaped_step_equals_eager_and_reads_nothing_back(preset, tones, no_host_reads):
    task = gankit.tasks.get_task("audio")
    out = []
    for mode in ("eager", "static"):
        cfg = _cfg(preset, tones)
        e = Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode=mode)
        w0 = torch.cat([p.detach().flatten().clone() for p in e.st.nets["G"].parameters()])
        if mode == "static":
            with no_host_reads():
                for t in range(2):
                    e.step(t)
        else:
            for t in range(2):
                e.step(t)
        w = torch.cat([p.detach().flatten() for m in e.st.nets.values() for p in m.parameters()])
        assert not torch.equal(w0, torch.cat([p.detach().flatten() for p in e.st.nets["G"].parameters()]))
        out.append((w, e.st.acc.clone()))
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])


def test_phase_shuffle_shifts_each_example_with_reflection():
    x = torch.arange(8.0).view(1, 1, 8).repeat(200, 2, 1)  # (B, C, T)
    y = phase_shuffle(x, 2, torch.Generator().manual_seed(0))
    shifts = set()
    for row in y:
        assert torch.equal(row[0], row[1])  # one shift per example, every channel alike
        k = int(row[0, 4] - x[0, 0, 4]) * -1  # out[t] = x[t - k]
        shifts.add(k)
        ref = torch.tensor([abs(t - k) if t - k < 0 else (t - k if t - k < 8 else 14 - (t - k)) for t in range(8)],
                           dtype=torch.float32)
        assert torch.equal(row[0], ref), (k, row[0])
    assert shifts == {-2, -1, 0, 1, 2}
    assert torch.equal(phase_shuffle(x, 0), x)


def test_wavegan_shapes_and_griffin_lim_round_trip():
    G, D = WaveGANGenerator(4, 2), WaveGANDiscriminator(2)
    x = G(torch.randn(3, 4))
    assert x.shape == (3, 1, 16384) and x.abs().max() <= 1 and D(x).shape == (3,)
    t = torch.arange(16384) / 16000
    tone = (0.5 * torch.sin(2 * torch.pi * 440 * t))[None]
    back = griffin_lim(log_spectrogram(tone), 16384, 32, torch.Generator().manual_seed(0))
    a, b = log_spectrogram(tone).exp(), log_spectrogram(back).exp()
    assert ((a - b).abs().mean() / a.mean()) < 0.3  # the magnitude survives; the phase is re-estimated


@pytest.mark.parametrize("preset", ["wavegan", "specgan"])
def test_resume_is_exact_and_sample_writes_wavs(preset, tones, tmp_path, capsys):
    full = gankit.train(_cfg(preset, tones, "train.steps=4"), str(tmp_path / "full"))
    gankit.train(_cfg(preset, tones, "train.steps=2"), str(tmp_path / "part"))
    part = gankit.train(_cfg(preset, tones, "train.steps=4"), str(tmp_path / "part"), resume=True)
    a = load_checkpoint(full.dir / "checkpoints" / "last.pt")["nets"]
    b = load_checkpoint(part.dir / "checkpoints" / "last.pt")["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
    assert (full.dir / "samples" / "step_000004.wav").is_file() and (full.dir / "data.png").is_file()
    capsys.readouterr()
    assert main(["sample", str(full.dir), "--n", "3", "--seed", "1", "--wav", str(tmp_path / "clips")]) == 0
    files = sorted((tmp_path / "clips").glob("*.wav"))
    assert len(files) == 3
    with wave.open(str(files[0])) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (16000, 1, 2, 16384)
    assert main(["export", str(full.dir), "--out", str(tmp_path / "g.safetensors")]) == 0
    assert main(["sample", str(tmp_path / "g.safetensors"), "--n", "3", "--seed", "1", "--wav", str(tmp_path / "e")]) == 0
    assert all((tmp_path / "e" / f.name).read_bytes() == f.read_bytes() for f in files)  # the export sounds the same
    assert main(["sample", str(full.dir), "--out", "x.png"]) == 2
    assert "--out: for generate runs; " in capsys.readouterr().err
    assert main(["sample", str(full.dir)]) == 2
    assert "an audio run samples clips" in capsys.readouterr().err
    assert main(["eval", str(full.dir), "--n", "10"]) == 2  # a folder of tones: no classifier knows its classes
    assert "audio scores need a classifier of its classes" in capsys.readouterr().err


def test_bundled_speech_classifier_is_the_documented_one():
    """The packaged spoken-digit classifier loads (its SHA-256 checked) and records an accuracy
    of at least 0.99 on the held-out voices."""
    from gankit.metrics.featurenet import load_featurenet
    from gankit.tasks.audio.evaluation import bundled_speechnet_path

    net, meta = load_featurenet(bundled_speechnet_path())
    assert meta["data"] == "spoken-digits-spec" and meta["test_data"] == "spoken-digits-spec:test"
    assert meta["test_accuracy"] >= 0.99 and meta["epochs"] == 12  # as docs/metrics.md states
    assert net(torch.zeros(2, 1, 128, 128)).shape == (2, 10)


@pytest.mark.slow
def test_spoken_digit_runs_are_scored_beside_real_clips(tmp_path):
    """A (barely trained) WaveGAN on spoken digits gets classifier IS, FID and class KL, and real
    training clips score far better (builds the spoken digits once: ~2 minutes on 2 cores)."""
    run = gankit.train(load_config("wavegan", overrides=[*TINY, "train.steps=2"]), str(tmp_path / "w"))
    r = gankit.api.evaluate(str(run.dir), [], n=200)
    assert set(r["gankit"]) == {"is", "fid", "class_kl"} and set(r["real"]) == {"is", "fid", "class_kl"}
    assert r["real"]["is"] > 2 * r["gankit"]["is"] and r["real"]["fid"] < r["gankit"]["fid"] / 2, r
    assert r["protocol"]["n"] == 200 and "held-out voices" in r["protocol"]["ref"]
