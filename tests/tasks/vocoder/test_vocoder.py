"""The vocoder task at tiny sizes: the mel filterbank against its definition, G's upsampling is
the hop, MPD's reshaping by period, the losses against their formulas, the graph-shaped step
equals the eager one, resume is exact, the scores at their known values, ONNX, and `gankit
vocode` / `gankit speak` on a tiny trained run, refusing every bad input in one line with no
output left behind."""

from __future__ import annotations

import math
import shutil
import wave

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.tasks.vocoder.mel import MelSpec, filterbank, griffin_lim_mel, hz_to_mel, mel, mel_to_hz, overlap_add
from gankit.tasks.vocoder.nets import Generator, MultiPeriodD, MultiScaleD, by_period
from gankit.tasks.vocoder.phases import d_loss, feature_matching, g_adv_loss
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

RATE = 16_000
TINY = ["model.g_width=16", "model.d_width=1", "train.batch=2", "vocoder.segment=2048", "vocoder.gan_start=1",
        "vocoder.grid_clips=1", "log.progress=false", "device=cpu", "log.every=1", "log.grid_every=1000"]


def _wav(path, x: np.ndarray, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())


def _tone(f: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * f * t) * np.hanning(len(t))


def _cfg(folder, *extra):
    return load_config("hifigan-cpu", overrides=[*TINY, f"data.source={folder}", *extra])


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    """One mel-L1 step (no discriminator): the commands need a run, not a good one."""
    return gankit.train(_cfg(folder, "train.steps=1", "vocoder.gan_start=1"), str(tmp_path_factory.mktemp("voc") / "run"))


# -- the mel spectrogram ---------------------------------------------------------------------------


def test_slaney_mel_scale_at_its_anchor_points():
    m = hz_to_mel(torch.tensor([0.0, 500.0, 1000.0, 6400.0]))
    torch.testing.assert_close(m, torch.tensor([0.0, 7.5, 15.0, 42.0], dtype=torch.float64))  # 27 mels per x6.4
    f = torch.tensor([10.0, 999.0, 1001.0, 7900.0], dtype=torch.float64)
    torch.testing.assert_close(mel_to_hz(hz_to_mel(f)), f)


def test_filterbank_is_the_slaney_definition():
    """Each band a triangle over mel-spaced corners, scaled to area 1 (2 / (right - left) Hz)."""
    s = MelSpec()
    fb = filterbank(s).double()
    assert fb.shape == (80, 513)
    corners = [float(mel_to_hz(torch.tensor(hz_to_mel(torch.tensor(0.0)).item() + i * float(hz_to_mel(8000.0)) / 81)))
               for i in range(82)]
    bins = np.arange(513) * RATE / 1024
    for i in (0, 10, 40, 79):
        lo, c, hi = corners[i:i + 3]
        want = np.maximum(0, np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c))) * 2 / (hi - lo)
        np.testing.assert_allclose(fb[i].numpy(), want, rtol=1e-5, atol=1e-8)  # float32
    wide = fb[40:] * RATE / 1024  # a filter many bins wide: its samples sum to its area, 1
    torch.testing.assert_close(wide.sum(1), torch.ones(40, dtype=torch.float64), rtol=0.02, atol=0)


def test_mel_frames_floor_and_a_tone_in_its_band():
    s = MelSpec()
    x = torch.from_numpy(_tone(1000.0, 0.512)).float()[None]  # 8192 samples
    m = mel(x, s)
    assert m.shape == (1, 80, 32)
    centre = int(m[0, :, 16].argmax())
    lo, c, hi = (float(mel_to_hz(hz_to_mel(torch.tensor(0.0)) + (centre + k) * hz_to_mel(8000.0) / 81)) for k in range(3))
    assert lo < 1000 < hi
    assert torch.equal(mel(torch.zeros(1, 1024), s), torch.full((1, 80, 4), math.log(1e-5)))


def test_overlap_add_inverts_the_mel_framing_and_griffin_lim_returns_the_length():
    s = MelSpec()
    x = torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    xp = torch.nn.functional.pad(x[:, None], (s.pad, s.pad), mode="reflect")[:, 0]
    X = torch.stft(xp, s.n_fft, s.hop, s.win, window=torch.hann_window(s.win), center=False, return_complex=True)
    torch.testing.assert_close(overlap_add(X, s, 4096), x, atol=1e-5, rtol=0)
    y = griffin_lim_mel(mel(x, s), s, 2, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()


# -- the networks and the losses -------------------------------------------------------------------


def test_generator_upsamples_each_frame_to_hop_samples():
    G = Generator(80, 16, (8, 8, 2, 2), (16, 16, 4, 4))
    assert G.hop == 256
    with torch.no_grad():
        y = G(torch.randn(2, 80, 7))
    assert y.shape == (2, 1, 7 * 256) and float(y.abs().max()) <= 1
    G2 = Generator(10, 8, (4, 3), (8, 7))
    assert G2(torch.randn(1, 10, 5)).shape == (1, 1, 5 * 12)


def test_period_reshape_puts_every_pth_sample_in_a_column():
    x = torch.arange(10.0)[None, None]
    r = by_period(x, 3)  # padded by reflection to 12: ..., 9, 8, 7
    assert r.shape == (1, 1, 4, 3)
    assert r[0, 0, :, 1].tolist() == [1.0, 4.0, 7.0, 8.0] and r[0, 0, :3, 0].tolist() == [0.0, 3.0, 6.0]


def test_discriminators_have_five_periods_and_three_scales():
    x = torch.randn(2, 1, 2048)
    mpd, msd = MultiPeriodD(1), MultiScaleD(1)
    outs = mpd(x)
    assert [s.period for s in mpd.subs] == [2, 3, 5, 7, 11] and len(outs) == 5 and len(msd(x)) == 3
    assert all(len(f) == 6 for _, f in outs) and outs[0][1][0].shape[-1] == 2  # conv (5, 1): columns kept apart


def test_losses_match_their_formulas():
    r = [(torch.tensor([[1.0, 0.5]]), [torch.tensor([1.0, 2.0])]), (torch.tensor([[0.0]]), [torch.tensor([3.0])])]
    f = [(torch.tensor([[0.5, 0.0]]), [torch.tensor([0.0, 2.0])]), (torch.tensor([[1.0]]), [torch.tensor([1.0])])]
    # sub 1: E[(r-1)^2] = (0 + .25)/2, E[f^2] = (.25 + 0)/2; sub 2: 1 + 1
    torch.testing.assert_close(d_loss(r, f), torch.tensor(0.125 + 0.125 + 2.0))
    torch.testing.assert_close(g_adv_loss(f), torch.tensor((0.25 + 1.0) / 2 + 0.0))
    torch.testing.assert_close(feature_matching(r, f), torch.tensor((1.0 + 0.0) / 2 + 2.0))


def test_config_refuses_an_upsampling_that_is_not_the_hop():
    with pytest.raises(GankitError, match=r"vocoder.upsample \[8, 8, 2\] multiplies to 128; it must be vocoder.hop "
                                          r"\(256\)"):
        load_config("hifigan-cpu", overrides=["vocoder.upsample=[8,8,2]", "vocoder.upsample_kernels=[16,16,4]"])
    with pytest.raises(GankitError, match=r"vocoder.segment 1100 is not a multiple of vocoder.hop 256"):
        load_config("hifigan-cpu", overrides=["vocoder.segment=1100"])


# -- the trainer -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_graph_shaped_step_equals_eager_and_trains(folder):
    task = gankit.tasks.get_task("vocoder")
    runs = []
    for mode in ("eager", "static"):
        cfg = _cfg(folder, "vocoder.d_start=1", "vocoder.gan_start=2")
        e = Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode=mode)
        w0 = [p.detach().clone() for m in e.st.nets.values() for p in m.parameters()]
        for t in range(3):  # one mel step, one warm step (D learns, G spectral), one GAN step
            e.step(t)
        w = [p.detach() for m in e.st.nets.values() for p in m.parameters()]
        assert all(not torch.equal(a, b) for a, b in zip(w0[:3], w[:3]))  # G moved
        runs.append((torch.cat([v.flatten() for v in w]), e.st.acc.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


@pytest.mark.slow
def test_resume_is_exact(folder, tmp_path):
    whole = gankit.train(_cfg(folder, "train.steps=4"), str(tmp_path / "whole"))
    gankit.train(_cfg(folder, "train.steps=2"), str(tmp_path / "part"))
    resumed = gankit.api.resume(str(tmp_path / "part"), ["train.steps=4"])
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")["nets"]
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


# -- scores ------------------------------------------------------------------------------------------


def test_scores_of_a_clip_against_itself_and_against_noise():
    from gankit.tasks.vocoder.evaluation import mcd, score

    s = MelSpec()
    real = torch.from_numpy(np.stack([_tone(f) + _tone(2 * f) * 0.3 for f in (200, 300)])).float()
    same = score(real, real, None, s)
    assert same["pesq"] > 4.5 and same["stoi"] > 0.99 and same["mcd"] == 0
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(0)) * 0.1
    worse = score(real, noise, None, s)
    assert worse["stoi"] < 0.5 and worse["mcd"] > 5
    near = mcd(real[0], real[0] + noise[0] * 0.01, s)
    assert 0 < near < mcd(real[0], real[0] + noise[0] * 0.1, s)


def test_paired_differences_against_a_baseline():
    from gankit.tasks.vocoder.evaluation import paired

    ours = {"pesq": [3.0, 2.0, None, 4.0], "stoi": [0.9, 0.8]}
    theirs = {"pesq": [2.0, 2.5, 1.0, 3.0], "stoi": [0.85, 0.82]}
    p = paired(ours, theirs)  # PESQ differences 1, -0.5, 1 (the unscored clip left out)
    assert p["pesq_diff"] == 0.5 and p["pesq_higher"] == "2/3 clips"
    assert p["pesq_se"] == round(float(np.std([1, -0.5, 1], ddof=1) / math.sqrt(3)), 4)
    assert (p["stoi_diff"], p["stoi_min"], p["stoi_max"]) == (0.015, -0.02, 0.05)
    assert p["stoi_higher"] == "1/2 blocks of 10"


@pytest.mark.slow  # ~3 s on a shared CPU: PESQ and MCD of the folder's clips, twice
def test_another_runs_g_is_scored_on_the_same_clips_and_paired(run):
    from gankit.tasks.vocoder.evaluation import evaluate_vocoder

    G = run.nets["G"]
    r = evaluate_vocoder(run.config, G, n=10, methods=("gankit",), others={"the same G": G})
    assert list(r) == ["gankit", "the same G", "paired", "protocol"]
    assert {k: v for k, v in r["the same G"].items() if k != "rtf"} == \
        {k: v for k, v in r["gankit"].items() if k != "rtf"}  # same clips, same mel, same G
    assert set(r["paired"]) == {"gankit vs the same G"}
    p = r["paired"]["gankit vs the same G"]
    assert p["pesq_diff"] == 0.0 and p["pesq_higher"].startswith("0/")  # never higher than itself


@pytest.mark.slow  # ~10 s: 20 held-out spoken digits, PESQ and STOI twice
def test_scores_keep_per_clip_pesq_and_block_stoi_for_the_paired_comparison():
    from gankit.data.speech import spoken_digits
    from gankit.tasks.vocoder.evaluation import paired, score

    s = MelSpec()
    g = torch.Generator().manual_seed(1)
    real = torch.from_numpy(spoken_digits("test").x[::50][:20]).float() / 32767  # speech: PESQ's domain
    near, far = {}, {}
    score(real, real + 0.002 * torch.randn(real.shape, generator=g), None, s, near)
    score(real, real + 0.05 * torch.randn(real.shape, generator=g), None, s, far)
    assert len(near["pesq"]) == 20 and len(near["stoi"]) == 2  # two blocks of 10 clips
    p = paired(near, far)
    assert p["pesq_higher"] == "20/20 clips" and p["stoi_higher"] == "2/2 blocks of 10" and p["stoi_min"] > 0
    few = {}
    score(real[:19], real[:19], None, s, few)
    assert few["stoi"] == []  # under two blocks: no block STOI


# -- the commands --------------------------------------------------------------------------------------


def test_vocode_a_wav_and_a_mel(run, tmp_path, capsys):
    src = tmp_path / "in.wav"
    _wav(src, _tone(300, 0.3))
    assert main(["vocode", str(run.dir), str(src), "--out", str(tmp_path / "out.wav")]) == 0
    assert "vocoded 0.30 s by a HiFi-GAN vocoder trained on spectral losses only (no adversarial steps): " \
        in capsys.readouterr().out  # one mel step, no adversarial one: not called a GAN
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert w.getframerate() == RATE and w.getnframes() == int(0.3 * RATE)
    m = mel(torch.from_numpy(_tone(300, 0.256)).float()[None]).numpy()  # (1, 80, 16)
    np.save(tmp_path / "m.npy", m[0])
    assert main(["vocode", str(run.dir), str(tmp_path / "m.npy"), "--out", str(tmp_path / "m.wav")]) == 0
    with wave.open(str(tmp_path / "m.wav")) as w:
        assert w.getnframes() == 16 * 256


def test_vocode_resamples_with_a_note_or_refuses_with_strict(run, tmp_path, capsys):
    src = tmp_path / "in22.wav"
    _wav(src, _tone(300, 0.3, 22_050), 22_050)
    assert main(["vocode", str(run.dir), str(src), "--out", str(tmp_path / "a.wav")]) == 0
    assert "note: in22.wav: resampled from 22050 Hz to 16000 Hz" in capsys.readouterr().out
    with pytest.raises(GankitError, match=r"^\S+in22.wav: audio at 22050 Hz; this vocoder works at 16000 Hz"):
        gankit.api.vocode(run.dir, src, tmp_path / "b.wav", strict=True)
    assert not (tmp_path / "b.wav").exists()


@pytest.mark.parametrize("array, words", [
    (np.zeros((40, 10), np.float32), r"shape \(40, 10\); this run expects \(80, frames\)"),
    (np.zeros((2, 80, 10), np.float32), r"shape \(2, 80, 10\)"),
    (np.full((80, 10), np.nan, np.float32), r"finite floats \(got float32 with NaN or inf\)"),
    (np.zeros((80, 10), np.int64), r"finite floats \(got int64\)"),
])
def test_a_bad_mel_file_is_refused_in_one_line(run, tmp_path, array, words):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(GankitError, match=words) as e:
        gankit.api.vocode(run.dir, tmp_path / "bad.npy", tmp_path / "o.wav")
    assert "\n" not in str(e.value) and not (tmp_path / "o.wav").exists()


def test_vocode_refuses_a_missing_input_a_non_wav_output_and_an_existing_one(run, tmp_path):
    src = tmp_path / "in.wav"
    _wav(src, _tone(300, 0.2))
    with pytest.raises(GankitError, match=r"nope.wav: no such file"):
        gankit.api.vocode(run.dir, tmp_path / "nope.wav", tmp_path / "o.wav")
    with pytest.raises(GankitError, match=r"--out \S+o.mp3: a WAV file is written"):
        gankit.api.vocode(run.dir, src, tmp_path / "o.mp3")
    (tmp_path / "o.wav").write_bytes(b"keep")
    with pytest.raises(GankitError, match=r"already exists; choose another path or pass --overwrite"):
        gankit.api.vocode(run.dir, src, tmp_path / "o.wav")
    assert (tmp_path / "o.wav").read_bytes() == b"keep"


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@needs_espeak
def test_speak_says_text_and_a_digit_honestly(run, tmp_path, capsys):
    assert main(["speak", str(run.dir), "hello there", "--out", str(tmp_path / "s.wav"), "--voice", "en-us+m3"]) == 0
    out = capsys.readouterr().out
    # the fixture took one mel step and no adversarial one: it is not called a GAN
    assert ("eSpeak NG makes the speech (words, timing, pitch); a HiFi-GAN vocoder trained on spectral losses only "
            "(no adversarial steps) only turns its mel spectrogram into the waveform") in out
    with wave.open(str(tmp_path / "s.wav")) as w:
        assert w.getframerate() == RATE and w.getnframes() > 0.3 * RATE
    r = gankit.api.speak(run.dir, None, tmp_path / "d.wav", digit="7")
    assert r["text"] == "seven"


@needs_espeak
@pytest.mark.parametrize("text, kw, words", [
    ("", {}, r"^speak: the text is empty"),
    ("  ", {}, r"^speak: the text is empty"),
    ("hi", {"voice": "nope"}, r"^--voice 'nope': espeak-ng refused it"),
    (None, {"digit": "12"}, r"^--digit '12': expected 0 to 9"),
    ("hi", {"digit": "3"}, r"^speak: give the text or --digit, not both"),
])
def test_speak_refuses_bad_input_in_one_line(run, tmp_path, text, kw, words):
    with pytest.raises(GankitError, match=words) as e:
        gankit.api.speak(run.dir, text, tmp_path / "s.wav", **kw)
    assert "\n" not in str(e.value) and not (tmp_path / "s.wav").exists()


@needs_espeak
def test_serve_panel_speaks_and_says_who_made_the_speech(run):
    pytest.importorskip("starlette")
    from gankit.tasks.vocoder.serve import panels

    panel = panels(gankit.api.load(run.dir), 16)["speak"]
    r = panel.handler(gankit.api.load(run.dir), {"text": "two", "voice": "en-us"}, {})
    assert r.audio[:4] == b"RIFF" and r.image.shape[0] >= 2 * 80 and "eSpeak NG made the speech" in r.notes[0]


def test_the_model_card_of_a_run_without_adversarial_steps_does_not_call_it_a_gan(run):
    from gankit.card import model_card

    card = model_card(gankit.api.load(run.dir), run.dir)
    front = card.split("---")[1]
    assert "- gan\n" not in front and "- vocoder\n" in front
    assert "A network for the `vocoder` task trained with gankit on its non-adversarial losses only (no adversarial " \
           "step: they begin after step 1) (hifigan, vocoder), exported at step 1" in card and "A GAN" not in card


def test_speak_refuses_an_audio_run_saying_why():
    from types import SimpleNamespace

    from gankit.tasks.vocoder.infer import speak

    words = (r"^r: an audio run \(WaveGAN/SpecGAN\) re-synthesises no speech, so it cannot say 'seven' here; "
             r"a digit-conditional one says a digit itself \(gankit speak RUN --digit 7")
    with pytest.raises(GankitError, match=words):
        speak(SimpleNamespace(task="audio", dir="r"), None, "x.wav", digit=7)


# -- export -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_onnx_graph_matches_pytorch(run):
    from gankit.export_onnx import onnx_models

    (m,) = onnx_models(gankit.api.load(run.dir), "tiny")
    assert m.max_diff <= 1e-4 and m.dynamic == ["batch", "length (any)"] and m.checked[-1] == "batch 3, length 13"
    assert "waveforms in [-1, 1] at 16000 Hz" in "\n".join(m.graph.notes)
