"""The digit-conditional audio GAN (model.conditional): G's output follows the label, the
projection D is its formula, AC-GAN's D (model.d_head: acgan) is the plain critic with a linear
classifier of the classes on the same features, whose cross-entropy one step adds to D's loss and
trains, a plain network is what it was, and on a tiny run trained on a
folder of tones named after the ten digits `gankit sample --class` and `gankit speak --digit`
write one-second clips, while a digit asked of an unconditional run, a class out of range and
text given to an audio run are refused in one line."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.data.speech import CLIP, DIGITS, RATE
from gankit.errors import GankitError
from gankit.models.audio import SpecGANDiscriminator, SpecGANGenerator, WaveGANDiscriminator, WaveGANGenerator
from gankit.training.engine import Engine

TINY = ["model.g_width=2", "model.d_width=2", "model.z_dim=4", "train.batch=4", "train.n_critic=1",
        "log.progress=false", "device=cpu", "log.every=1", "log.grid_every=1000", "audio.grid_clips=2",
        "audio.griffin_lim=2", "train.steps=1"]


@pytest.mark.parametrize("G", [SpecGANGenerator(4, 4, n_classes=10), WaveGANGenerator(4, 8, n_classes=10)],
                         ids=["specgan", "wavegan"])
def test_conditional_generator_output_depends_on_the_label(G):
    torch.manual_seed(0)
    z = torch.randn(1, 4).expand(2, 4)  # the same z twice
    x = G(z, torch.tensor([3, 7]))
    assert not torch.allclose(x[0], x[1], atol=1e-4)
    torch.testing.assert_close(G(z[:1], torch.tensor([7])), x[1:])
    with pytest.raises(ValueError, match="without labels"):
        G(z)


def test_projection_discriminator_is_linear_head_plus_embedding_dot_features():
    torch.manual_seed(0)
    D = SpecGANDiscriminator(2, n_classes=10)
    x, y = torch.randn(3, 1, 128, 128), torch.tensor([0, 4, 9])
    h = x
    for conv in D.convs:
        h = torch.nn.functional.leaky_relu(conv(h), 0.2)
    h = h.flatten(1)
    want = h @ D.fc.weight[0] + D.fc.bias[0] + (D.embed.weight[y] * h).sum(1)  # w^T h + b + embed(y)^T h
    torch.testing.assert_close(D(x, y), want)
    assert not torch.allclose(D(x, y), D(x, (y + 1) % 10))


@pytest.mark.parametrize("make, x", [(lambda **k: SpecGANDiscriminator(2, **k), (3, 1, 128, 128)),
                                     (lambda **k: WaveGANDiscriminator(2, shuffle=0, **k), (3, 1, 16384))],
                         ids=["specgan", "wavegan"])
def test_acgan_discriminator_is_the_plain_critic_plus_a_linear_classifier_on_its_features(make, x):
    torch.manual_seed(0)
    plain = make()
    torch.manual_seed(0)
    D = make(aux_classes=10)
    assert D.embed is None and D.aux_fc.weight.shape == (10, D.fc.in_features)  # 10 logits over the F features
    for k, v in plain.state_dict().items():  # the classifier is made last: the rest starts as a plain D
        torch.testing.assert_close(D.state_dict()[k], v, rtol=0, atol=0)
    x, y = torch.randn(*x), torch.tensor([0, 4, 9])
    h = D.features(x)  # (B, F)
    a = D.aux(h)
    assert a.shape == (3, 10)
    torch.testing.assert_close(a, h @ D.aux_fc.weight.T + D.aux_fc.bias)
    torch.testing.assert_close(D(x, y), plain(x))  # the critic ignores the label
    torch.testing.assert_close(D(x, y), h @ D.fc.weight[0] + D.fc.bias[0])
    with pytest.raises(ValueError, match="no auxiliary classifier"):
        plain.aux(h)


def _tones(root):
    """Four class folders of one quarter-second tone each (train.batch 4)."""
    t = np.arange(RATE // 4) / RATE
    for k, word in enumerate(DIGITS[:4]):
        (root / word).mkdir(parents=True)
        with wave.open(str(root / word / "a.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((0.5 * np.sin(2 * np.pi * (200 + 80 * k) * t) * 32767).astype(np.int16).tobytes())
    return root


def test_acgan_step_adds_the_cross_entropy_to_d_loss_and_trains_the_classifier(tmp_path):
    """One step (one critic update, one G update) from the same start with reg.aux_weight 1 and 0:
    the critic's loss differs by exactly the logged cross-entropy, and the classifier moves with the
    weight 1 and not at 0 (no gradient reaches it). G's term is checked by hand in test_losses.py
    (Adam's first step is ~lr x sign(grad), which the term does not flip at this size)."""
    src = _tones(tmp_path / "tones")
    got = {}
    for w in (1.0, 0.0):
        cfg = load_config("specgan-acgan-cpu", overrides=[*TINY, f"data.source={src}", f"reg.aux_weight={w}"])
        task = gankit.tasks.get_task("audio")
        e = Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode="eager")
        D = e.st.nets["D"]
        aux0 = D.aux_fc.weight.detach().clone()
        e.step(0)
        got[w] = (dict(zip(task.stat_names, e.st.acc.tolist())), D.aux_fc.weight.detach(), aux0)
    (s1, aux1, start1), (s0, aux_w0, start0) = got[1.0], got[0.0]
    torch.testing.assert_close(start1, start0, rtol=0, atol=0)  # the same start
    assert s1["aux_d"] > 0.1 and s1["aux_d"] == pytest.approx(s0["aux_d"], rel=1e-6)  # before D's update: the same
    assert s1["loss_d"] - s0["loss_d"] == pytest.approx(s1["aux_d"], rel=1e-4)  # D's loss carries 1 x CE
    assert not torch.equal(aux1, start1) and torch.equal(aux_w0, start0)


def test_plain_networks_have_no_embedding():
    """n_classes 0: the networks as they were (their stored values: tests/tasks/audio/test_values.py)."""
    for net in (SpecGANGenerator(4, 2), SpecGANDiscriminator(2), WaveGANGenerator(4, 2), WaveGANDiscriminator(2)):
        assert net.embed is None and not any("embed" in k for k in net.state_dict())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny conditional SpecGAN and an unconditional one, 1 step each on ten tones named by digit."""
    root = tmp_path_factory.mktemp("digits")
    t = np.arange(RATE // 4) / RATE
    for k, word in enumerate(DIGITS):
        (root / "tones" / word).mkdir(parents=True)
        with wave.open(str(root / "tones" / word / "a.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((0.5 * np.sin(2 * np.pi * (200 + 80 * k) * t) * 32767).astype(np.int16).tobytes())
    src = f"data.source={root / 'tones'}"
    cond = gankit.train(load_config("specgan-cond-cpu", overrides=[*TINY, src]), str(root / "cond"))
    plain = gankit.train(load_config("specgan-cpu", overrides=[*TINY, src]), str(root / "plain"))
    return cond.dir, plain.dir


def _frames(path) -> tuple[int, int]:
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnframes()


def _samples(path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


@pytest.mark.slow
def test_sample_class_and_speak_digit_write_one_second_clips(runs, tmp_path, capsys):
    cond, _ = runs
    assert main(["sample", str(cond), "--n", "2", "--seed", "1", "--class", "7", "--wav", str(tmp_path / "c")]) == 0
    assert "class 7 (three)" in capsys.readouterr().out  # the folder's classes sort by name: 7 is 'three'
    assert [_frames(p) for p in sorted((tmp_path / "c").glob("*.wav"))] == [(RATE, CLIP)] * 2
    assert main(["speak", str(cond), "--digit", "7", "--seed", "1", "--out", str(tmp_path / "seven.wav")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("said 'seven' (1.02 s; the run's specgan G made its log spectrogram, made sound by "
                          "Griffin-Lim (2 iterations) from noise and the digit's label; no text, no eSpeak NG")
    assert "classifier" not in out  # tones: the spoken-digit classifier does not know these classes
    assert _frames(tmp_path / "seven.wav") == (RATE, CLIP)
    # 'seven' is the run's class 'seven' (index 5 of the sorted folder names): the same clip as --class 5
    r = gankit.api.say_digit(cond, "seven", tmp_path / "s2.wav", seed=1)
    assert r["class"] == 5 and r["heard"] is None
    assert main(["sample", str(cond), "--n", "1", "--seed", "1", "--class", "5", "--wav", str(tmp_path / "k")]) == 0
    assert (tmp_path / "k" / "000000.wav").read_bytes() == (tmp_path / "s2.wav").read_bytes()
    pytest.importorskip("starlette")
    from gankit.tasks.audio.serve import panels

    run = gankit.api.load(cond)
    panel = panels(run, 16)["sample"]
    assert panel.fields["class"].values == ("each in turn", *sorted(DIGITS))
    r = panel.handler(run, {"n": 1, "seed": 1, "class": "seven"}, {})  # the page's class: the same clip again
    with wave.open(io.BytesIO(r.audio)) as w:
        assert w.readframes(CLIP) == _samples(tmp_path / "s2.wav")


@pytest.mark.slow
@pytest.mark.parametrize("argv, words", [
    (["sample", "{cond}", "--class", "11", "--wav", "{tmp}/x"],
     "--class 11 is out of range; this run has classes 0..9"),
    (["sample", "{plain}", "--class", "3", "--wav", "{tmp}/x"], "--class 3: {plain} is an unconditional audio run"),
    (["speak", "{plain}", "--digit", "7", "--out", "{tmp}/x.wav"], "--digit 7: {plain} is an unconditional audio run"),
    (["speak", "{cond}", "--digit", "12", "--out", "{tmp}/x.wav"], "--digit '12': expected 0 to 9"),
    (["speak", "{cond}", "hello", "--out", "{tmp}/x.wav"], "speak 'hello': {cond} is an audio run, which says one "
                                                             "digit"),
    (["speak", "{cond}", "--digit", "7", "--out", "{tmp}/x.mp3"], "--out {tmp}/x.mp3: a WAV file is written"),
])
def test_bad_digit_class_or_text_is_one_line(runs, tmp_path, capsys, argv, words):
    cond, plain = runs
    fill = {"cond": cond, "plain": plain, "tmp": tmp_path}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words.format(**fill) in err and "\n" not in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.wav").exists()


def test_conditional_audio_config_needs_a_projection_or_acgan_head():
    assert load_config("specgan-cond-cpu", overrides=["model.d_head=acgan"]).model.d_head == "acgan"
    assert load_config("specgan-acgan-cpu").model.d_head == "acgan"
    for preset, sets, words in [
            ("specgan-cond-cpu", ["model.d_head=plain"], r"model.d_head = 'plain': a conditional audio run's D is the "
                                                         r"projection discriminator or AC-GAN's critic \+ classifier"),
            ("specgan-cpu", ["model.d_head=projection"], r"model.d_head = 'projection' needs model.conditional: true"),
            ("specgan-cpu", ["model.d_head=acgan"], r"model.d_head = 'acgan' needs model.conditional: true"),
            ("specgan-acgan-cpu", ["model.conditional=false"], r"model.d_head = 'acgan' needs model.conditional: true"),
            ("specgan-acgan-cpu", ["reg.aux_weight=-1"], r"reg.aux_weight = -1.0 is out of range"),
            ("specgan-cond-cpu", ["audio.aux_fakes=false"], r"audio.aux_fakes = false applies to AC-GAN's classifier, "
                                                            r"which model.d_head = 'projection' has not")]:
        with pytest.raises(GankitError, match=words) as e:
            load_config(preset, overrides=sets)
        assert "\n" not in str(e.value)


def test_acgan_on_unlabelled_clips_is_refused_in_one_line(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    with wave.open(str(root / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.zeros(RATE // 4, np.int16).tobytes())
    cfg = load_config("specgan-acgan-cpu", overrides=[*TINY, f"data.source={root}"])
    task = gankit.tasks.get_task("audio")
    with pytest.raises(GankitError, match=r"^model.conditional: .* has no labels; a conditional audio GAN needs") as e:
        task.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"))
    assert "\n" not in str(e.value)


def test_labels_refuse_a_class_out_of_range_or_an_unconditional_run_in_one_line():
    """The checks behind --class and --digit, without a trained run (the CLI's are the slow tests)."""
    from types import SimpleNamespace

    from gankit.tasks.audio.infer import digit_class, labels

    cond = SimpleNamespace(conditional=True, n_classes=10, dir="r", data_meta={"classes": list(DIGITS)})
    plain = SimpleNamespace(conditional=False, n_classes=0, dir="p", data_meta={"classes": list(DIGITS)})
    assert labels(cond, 12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1] and labels(plain, 3) is None
    assert labels(cond, 2, 7).tolist() == [7, 7] and digit_class(cond, "7") == (7, "seven")
    assert digit_class(cond, "Seven") == (7, "seven")
    for call, words in [(lambda: labels(cond, 1, 11), r"^--class 11 is out of range; this run has classes 0\.\.9 "),
                        (lambda: labels(cond, 1, -1), r"^--class -1 is out of range"),
                        (lambda: labels(plain, 1, 3), r"^--class 3: p is an unconditional audio run"),
                        (lambda: digit_class(plain, 7), r"^--digit 7: p is an unconditional audio run"),
                        (lambda: digit_class(cond, "ten"), r"^--digit 'ten': expected 0 to 9")]:
        with pytest.raises(GankitError, match=words) as e:
            call()
        assert "\n" not in str(e.value)
    other = SimpleNamespace(conditional=True, n_classes=2, dir="o", data_meta={"classes": ["cat", "dog"]})
    with pytest.raises(GankitError, match=r"^--digit 7: o's classes are cat, dog, not the ten digits"):
        digit_class(other, 7)
