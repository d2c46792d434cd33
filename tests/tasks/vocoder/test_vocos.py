"""Vocos (vocoder.g_arch: vocos) at tiny sizes: its inverse STFT equals torch.istft and the mel's
own overlap-add, G returns frames x hop samples, the multi-resolution STFT loss against its
formula, a run trains (mel and GAN steps), resumes exactly, vocodes and exports to ONNX, and bad
settings are refused in one line."""

from __future__ import annotations

import math
import wave

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.tasks.vocoder.mel import MelSpec, overlap_add
from gankit.tasks.vocoder.phases import stft_loss
from gankit.tasks.vocoder.vocos import ISTFT, Vocos
from gankit.training.checkpoint import load_checkpoint

from .test_vocoder import TINY, _tone, _wav

VOCOS = ["vocoder.g_arch=vocos", "vocoder.vocos_dim=16", "vocoder.vocos_layers=2", "vocoder.vocos_mlp=32",
         "vocoder.vocos_n_fft=512"]


def _spectrum(n_fft: int, frames: int, seed: int = 0) -> torch.Tensor:
    X = torch.randn(2, n_fft // 2 + 1, frames, dtype=torch.complex64, generator=torch.Generator().manual_seed(seed))
    X[:, 0].imag = 0  # a real signal's DC and Nyquist bins are real (irfft ignores their imaginary parts)
    X[:, -1].imag = 0
    return X


@pytest.mark.parametrize("n_fft, hop", [(1024, 256), (512, 128), (256, 64)])
def test_istft_basis_equals_torch_istft(n_fft, hop):
    X = _spectrum(n_fft, 17)
    want = torch.istft(X, n_fft, hop, n_fft, torch.hann_window(n_fft), center=True)  # cuts n_fft / 2 each end
    got = ISTFT(n_fft, hop, trim=n_fft // 2)(torch.cat([X.real, X.imag], 1))[:, 0]
    assert got.shape == want.shape == (2, 16 * hop)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_istft_same_framing_inverts_the_mel_framing():
    """The default trim, (n_fft - hop) / 2, is mel.py's reflect padding: frames x hop samples,
    equal to the mel's overlap-add of the same spectrum, and the inverse of the mel's STFT."""
    s = MelSpec()
    X = _spectrum(1024, 9, seed=1)
    got = ISTFT(1024, 256)(torch.cat([X.real, X.imag], 1))[:, 0]
    torch.testing.assert_close(got, overlap_add(X, s, 9 * 256), atol=1e-5, rtol=0)
    x = torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    xp = torch.nn.functional.pad(x[:, None], (s.pad, s.pad), mode="reflect")[:, 0]
    S = torch.stft(xp, 1024, 256, 1024, window=torch.hann_window(1024), center=False, return_complex=True)
    torch.testing.assert_close(ISTFT(1024, 256)(torch.cat([S.real, S.imag], 1))[:, 0], x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_fft, hop, frames", [(1024, 256, 7), (512, 128, 1), (384, 128, 5)])
def test_vocos_returns_frames_times_hop_samples(n_fft, hop, frames):
    G = Vocos(20, 16, 2, 32, n_fft, hop)
    with torch.no_grad():
        y = G(torch.randn(3, 20, frames))
    assert y.shape == (3, 1, frames * hop) and torch.isfinite(y).all()
    assert [b.gamma[0].item() for b in G.blocks] == [0.5, 0.5]  # layer scale starts at 1 / layers


def test_vocos_magnitude_is_clipped_at_100():
    G = Vocos(4, 8, 1, 8, 64, 16)
    with torch.no_grad():
        G.head.bias[:33] = 50.0  # log-magnitudes far past log 100
        G.head.weight.zero_()
        S = G.spectrum(torch.zeros(1, 4, 3))
    mag = torch.sqrt(S[:, :33] ** 2 + S[:, 33:] ** 2)
    torch.testing.assert_close(mag, torch.full_like(mag, 100.0))


def test_stft_loss_matches_its_formula():
    y = torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(0))
    assert float(stft_loss(y, y)) == 0.0
    # y_hat = 2 y: SC = || |S| - 2 |S| || / || |S| || = 1 and MAG = log 2 at every resolution
    torch.testing.assert_close(stft_loss(y, 2 * y), torch.tensor(1 + math.log(2)), rtol=1e-3, atol=0)
    assert float(stft_loss(y, 2.02 * y)) > float(stft_loss(y, 2 * y)) + 0.01


@pytest.mark.parametrize("extra, words", [
    (["vocoder.vocos_n_fft=384"],
     r"vocoder.vocos_n_fft 384 with vocoder.hop 256: expected an n_fft >= 2 x hop \(512\)"),
    (["vocoder.vocos_n_fft=513"], r"vocoder.vocos_n_fft 513 with vocoder.hop 256: .* differs from the hop by an even"),
    (["vocoder.g_arch=wavenet"], r"vocoder.g_arch"),
    (["vocoder.vocos_layers=0"], r"vocoder.vocos_layers = 0 is out of range; expected 1 to 32"),
    (["vocoder.stft_weight=-1"], r"vocoder.stft_weight = -1.0 is out of range; expected a number >= 0"),
])
def test_bad_vocos_settings_are_refused_in_one_line(extra, words):
    with pytest.raises(GankitError, match=words) as e:
        load_config("vocos-cpu", overrides=extra)
    assert "\n" not in str(e.value)


def test_vocos_ignores_the_hifigan_upsampling_and_hifigan_keeps_its_rule():
    cfg = load_config("vocos-cpu", overrides=["vocoder.hop=128", "vocoder.vocos_n_fft=512", "vocoder.segment=8192"])
    assert cfg.vocoder.g_arch == "vocos" and cfg.vocoder.hop == 128
    with pytest.raises(GankitError, match=r"multiplies to 256; it must be vocoder.hop \(128\)"):
        load_config("hifigan-cpu", overrides=["vocoder.hop=128"])


# -- a tiny run ------------------------------------------------------------------------------------


def _cfg(folder, *extra):
    return load_config("vocos-cpu", overrides=[*TINY, *VOCOS, f"data.source={folder}", *extra])


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    """One mel step with the STFT loss on: the commands need a run, not a good one."""
    cfg = _cfg(folder, "train.steps=1", "vocoder.stft_weight=1")
    return gankit.train(cfg, str(tmp_path_factory.mktemp("voc") / "r"))


def test_a_vocos_run_trains_and_vocodes(run, tmp_path):
    rows = [r for r in (run.dir / "metrics.jsonl").read_text().splitlines() if '"step"' in r]
    assert '"stft"' in rows[0]
    assert isinstance(run.nets["G"], Vocos) and gankit.tasks.get_task("vocoder").card(run.config, {}).tags[0] == "vocos"
    src = tmp_path / "in.wav"
    _wav(src, _tone(300, 0.3))
    assert main(["vocode", str(run.dir), str(src), "--out", str(tmp_path / "out.wav")]) == 0
    with wave.open(str(tmp_path / "out.wav")) as w:
        assert w.getframerate() == 16_000 and w.getnframes() == int(0.3 * 16_000)


@pytest.mark.slow
def test_a_vocos_run_trains_gan_steps_and_resumes_exactly(folder, tmp_path):
    whole = gankit.train(_cfg(folder, "train.steps=3"), str(tmp_path / "whole"))  # 1 mel step, 2 GAN steps
    rows = [r for r in (whole.dir / "metrics.jsonl").read_text().splitlines() if '"step"' in r]
    assert '"loss_d"' not in rows[0] and '"loss_d"' in rows[-1]
    gankit.train(_cfg(folder, "train.steps=2"), str(tmp_path / "part"))
    resumed = gankit.api.resume(str(tmp_path / "part"), ["train.steps=3"])
    a = load_checkpoint(whole.dir / "checkpoints" / "last.pt")["nets"]
    b = load_checkpoint(resumed.dir / "checkpoints" / "last.pt")["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


@pytest.mark.slow
def test_vocos_onnx_graph_matches_pytorch_at_any_length(run):
    from gankit.export_onnx import onnx_models

    (m,) = onnx_models(gankit.api.load(run.dir), "tiny")
    assert m.max_diff <= 1e-4 and m.dynamic == ["batch", "length (any)"] and m.checked[-1] == "batch 3, length 13"


def test_benchmark_label_names_the_architecture():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[3] / "benchmarks" / "vocoder.py"
    spec = importlib.util.spec_from_file_location("bench_vocoder", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    want = "gankit Vocos (vocos-cpu, 9 steps)"
    assert mod.label("gankit", {"preset": "vocos-cpu", "steps": 9, "arch": "vocos"}) == want
    assert mod.label("gankit", {"preset": "hifigan-cpu", "steps": 9}) == "gankit HiFi-GAN (hifigan-cpu, 9 steps)"
    assert mod.label("griffin_lim_32", {}) == "Griffin-Lim, 32 iterations (same mel)"
