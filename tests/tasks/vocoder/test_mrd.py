"""UnivNet's multi-resolution spectrogram discriminator (vocoder.discriminators: mpd+mrd) at tiny
sizes: its magnitude frames against a hand-made STFT, its sub-discriminators' shapes and feature
lists, one adversarial step that moves MPD and MRD (and builds no MSD), its settings refused in
one line; and the line `gankit speak` / `vocode` print says a GAN only for a run that took
adversarial steps."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.tasks.vocoder.infer import adversarial_steps, honest_line, what_vocodes
from gankit.tasks.vocoder.nets import MRD_RESOLUTIONS, MultiResolutionD, magnitude
from gankit.training.engine import Engine

from .test_vocoder import TINY, _tone, _wav


@pytest.mark.parametrize("n_fft, hop, win", [(512, 128, 512), (256, 64, 160)])
def test_magnitude_frames_are_hann_windowed_slices_around_each_hop(n_fft, hop, win):
    """Frame k covers samples k hop - (n_fft - hop) / 2 ... + n_fft (reflect-padded at the ends):
    |rfft| of that slice times a Hann window of `win` centred in n_fft; T / hop frames."""
    x = torch.randn(1, 1, 2048, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    S = magnitude(x, n_fft, hop, win)
    assert S.shape == (1, 1, 2048 // hop, n_fft // 2 + 1)
    w = torch.zeros(n_fft, dtype=torch.float64)
    w[(n_fft - win) // 2:(n_fft - win) // 2 + win] = torch.hann_window(win, dtype=torch.float64)
    for k in (3, 7):  # interior frames: no padding reaches them
        start = k * hop - (n_fft - hop) // 2
        want = torch.fft.rfft(x[0, 0, start:start + n_fft] * w).abs()
        torch.testing.assert_close(S[0, 0, k], want, atol=1e-4, rtol=1e-6)  # the sqrt's 1e-9 at near-zero bins


def test_mrd_has_three_resolutions_and_halves_the_frequency_axis():
    x = torch.randn(2, 1, 4096)
    mrd = MultiResolutionD(3)
    outs = mrd(x)
    assert [s.resolution for s in mrd.subs] == list(MRD_RESOLUTIONS) and len(outs) == 3
    for (n_fft, hop, _), (logits, feats) in zip(MRD_RESOLUTIONS, outs):
        bins, frames = n_fft // 2 + 1, 4096 // hop
        assert len(feats) == 6 and feats[0].shape == (2, 3, frames, bins)  # 5 convs + the logit map
        assert feats[3].shape == (2, 3, frames, -(-bins // 8)) and feats[-1].shape[1] == 1  # stride 2 three times
        assert logits.shape == (2, frames * -(-bins // 8))


def _cfg(folder, *extra):
    return load_config("hifigan-cpu", overrides=[*TINY, f"data.source={folder}", "vocoder.gan_start=0",
                                                 "vocoder.discriminators=mpd+mrd", *extra])


@pytest.mark.slow  # ~4 s on a shared CPU
def test_one_adversarial_step_moves_mpd_and_mrd(tmp_path):
    for i, f in enumerate((220, 440)):
        _wav(tmp_path / f"{i}.wav", _tone(f))
    cfg = _cfg(tmp_path, "vocoder.mrd_width=2")
    task = gankit.tasks.get_task("vocoder")
    e = Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode="eager")
    assert set(e.st.nets) == {"G", "MPD", "MRD"} and e.st.nets["MRD"].subs[0].convs[0].out_channels == 2
    w0 = {n: [p.detach().clone() for p in m.parameters()] for n, m in e.st.nets.items()}
    e.step(0)
    for n, m in e.st.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(w0[n], m.parameters())), f"{n} did not move"
    acc = dict(zip(task.stat_names, e.st.acc.tolist()))
    assert acc["gan_steps"] == 1.0 and acc["loss_d"] > 0 and acc["fm"] > 0


@pytest.mark.parametrize("extra, words", [
    (["vocoder.discriminators=mpd+mrd+msd"], r"vocoder.discriminators = 'mpd\+mrd\+msd'; choose one of: mpd\+msd, mpd\+mrd"),
    (["vocoder.mrd_width=0"], r"vocoder.mrd_width = 0 is out of range; expected 1 to 512, or null"),
])
def test_bad_discriminator_settings_are_refused_in_one_line(extra, words):
    with pytest.raises(GankitError, match=words) as e:
        load_config("vocos-cpu", overrides=extra)
    assert "\n" not in str(e.value)


def test_old_configs_keep_mpd_and_msd():
    cfg = load_config("hifigan-cpu")
    assert cfg.vocoder.discriminators == "mpd+msd" and cfg.vocoder.mrd_width is None


# -- what the commands say made the waveform -----------------------------------------------------------


def _run(step, gan_start, init=None):
    cfg = load_config("vocos-cpu", overrides=[f"vocoder.gan_start={gan_start}", f"train.steps={max(step, 1)}"]
                      + ([f"train.init={init}"] if init else []))
    return SimpleNamespace(step=step, config=cfg)


def test_a_run_without_adversarial_steps_is_not_called_a_gan():
    r = _run(7000, 7000, init="/runs/stage1")
    assert adversarial_steps(r) == 0
    assert what_vocodes(r) == ("a Vocos vocoder trained on spectral losses only (no adversarial steps; started "
                               "from the weights of /runs/stage1)")
    assert "GAN" not in honest_line(r)


def test_a_run_past_gan_start_is_a_gan_vocoder_with_its_count():
    assert what_vocodes(_run(1500, 0)) == "a GAN vocoder (Vocos, 1,500 adversarial steps of 1,500)"
    assert what_vocodes(_run(1500, 0, init="/s2")) == ("a GAN vocoder (Vocos, 1,500 adversarial steps of 1,500; "
                                                       "started from the weights of /s2)")
    assert what_vocodes(_run(6001, 6000)) == "a GAN vocoder (Vocos, 1 adversarial step of 6,001)"
    assert honest_line(_run(3, 1)).startswith("eSpeak NG makes the speech (words, timing, pitch); a GAN vocoder")
