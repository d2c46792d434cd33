"""`gankit serve`: the JSON API over tiny runs of every task (Starlette's TestClient), the model off
the event loop under one lock (a real server in a thread), and `serve()` itself in a subprocess:
the URL printed, the page served, Ctrl-C and SIGTERM ending it with status 0 and no traceback."""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.media.video import VideoWriter
from gankit.viz import make_grid

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

with warnings.catch_warnings():  # this Starlette prefers httpx2 for its TestClient; httpx works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient  # noqa: E402

from gankit.apps.serve import EXTRA, make_app, serve  # noqa: E402
from gankit.apps.serve import models  # noqa: E402
from gankit.tasks.audio import serve as audio_serve  # noqa: E402
from gankit.tasks.text.infer import sample_text  # noqa: E402
from gankit.apps.serve.server import Background, is_loopback, warn_if_public  # noqa: E402

GEN = ["data.source=fake:1x28x28:64", "model.g_width=4", "model.d_width=4", "model.z_dim=8", "train.batch=8",
       "log.progress=false", "device=cpu", "log.grid_n=4", "train.steps=2"]
TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu", "log.every=2",
        "log.grid_every=1000", "train.steps=2"]
TOY = ["model.g_hidden=[4]", "model.d_hidden=[4]", "model.z_dim=4", "train.batch=8", "train.steps=2",
       "log.progress=false", "device=cpu"]


def _paired_folder(root, n=12, size=16):
    g = np.random.default_rng(0)
    for sub in ("A", "B"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        a = (g.random((size, size)) * 255).astype(np.uint8)
        Image.fromarray(a).save(root / "A" / f"{i:03d}.png")
        Image.fromarray(255 - a).save(root / "B" / f"{i:03d}.png")
    return root


def _clip(path, n=14, side=16, fps=24):
    with VideoWriter(path, fps) as w:
        for i in range(n):
            f = np.zeros((side, side, 3), np.uint8)
            f[4:10, i % (side - 6):i % (side - 6) + 6] = 255
            w.write(f)
    return path


AUDIO = ["model.g_width=2", "model.d_width=2", "model.z_dim=4", "train.batch=4", "train.n_critic=1",
         "train.steps=2", "log.progress=false", "device=cpu", "log.grid_every=1000", "audio.grid_clips=2"]
TEXT = ["text.hidden=16", "text.emb=8", "text.max_len=24", "train.batch=8", "train.steps=2", "log.progress=false",
        "device=cpu", "log.grid_every=1000", "text.grid_lines=2", "model.conditional=true"]


def _tones(root):
    """Four 0.5 s tones in two class folders (written by the audio task's own WAV writer)."""
    from gankit.tasks.audio.infer import write_wav

    t = torch.arange(8000) / 16000
    for k, freq in enumerate((220, 440, 660, 880)):
        write_wav(root / ("low" if k < 2 else "high") / f"{freq}.wav", 0.5 * torch.sin(2 * torch.pi * freq * t))
    return root


def _corpus(root):
    root.mkdir(parents=True)
    animals = ["the cat sat", "a dog ran far", "cats like milk", "dogs dig holes", "the cow is slow", "birds fly",
               "a fox hid", "the hen ate", "owls hoot", "the pig ran", "mice hide", "the ox pulls"]
    weather = ["rain falls down", "the sun is warm", "snow is cold", "fog is thick", "the wind blew", "hail hits",
               "it is hot", "the sky is grey", "storms pass", "dew forms", "ice melts", "the cloud is low"]
    (root / "animals.txt").write_text("\n".join(animals) + "\n", encoding="utf-8")
    (root / "weather.txt").write_text("\n".join(weather) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 2-step run of each page: trained once for the module (~15 s on 2 cores)."""
    root = tmp_path_factory.mktemp("serve")
    cfgs = {
        "dcgan": load_config("dcgan", overrides=GEN),
        "cgan": load_config("cgan", overrides=GEN),
        "infogan": load_config("infogan", overrides=GEN),
        "toy": load_config("toy-mlp", overrides=TOY),
        "pix2pix": load_config("pix2pix", overrides=[*TINY, "translate.grid_examples=4",
                                                     f"data.source={_paired_folder(root / 'pairs')}"]),
        "cyclegan": load_config("cyclegan", overrides=[*TINY, "translate.grid_examples=4", "translate.g_blocks=1",
                                                       "translate.pool=3", "data.source=mnist2mnistm"]),
        "superres": load_config("srresnet", overrides=[*TINY, "superres.g_blocks=1", "data.source=mnist",
                                                       "superres.patch=28"]),
        "inpaint": load_config("inpaint", overrides=[*TINY, "inpaint.grid_examples=2"]),
        "interpolate": load_config("frame-interp", overrides=[*TINY, "interpolate.grid_examples=2",
                                                              f"data.source={_clip(root / 'a.mp4')}"]),
        "wavegan": load_config("wavegan", overrides=[*AUDIO, f"data.source={_tones(root / 'tones')}"]),
        "text": load_config("text-mle", overrides=[*TEXT, f"data.source={_corpus(root / 'corpus')}"]),
    }
    return {name: gankit.train(cfg, str(root / name)) for name, cfg in cfgs.items()}


@pytest.fixture(scope="module")
def clients(runs):
    # addressed to localhost, as a browser on this machine does (TestClient's own "testserver" is refused)
    return {name: TestClient(make_app(run), base_url="http://localhost") for name, run in runs.items()}


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _noise(h, w, c=3, seed=0) -> np.ndarray:
    a = np.random.default_rng(seed).integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)
    return a


def _image(resp) -> np.ndarray:
    """The PNG a panel answered with, as an array (and its size checked against the reply)."""
    assert resp.status_code == 200, resp.text
    d = resp.json()
    head, data = d["image"].split(",", 1)
    assert head == "data:image/png;base64" and d["filename"].endswith(".png")
    a = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
    assert a.shape[:2] == (d["height"], d["width"])
    return a


def _image_of(resp) -> np.ndarray:
    """The spectrogram grid beside an audio answer (its download is the WAV, not the PNG)."""
    assert resp.status_code == 200, resp.text
    d = resp.json()
    a = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["image"].split(",", 1)[1]))))
    assert a.shape[:2] == (d["height"], d["width"])
    return a


def _bytes(resp) -> bytes:
    assert resp.status_code == 200, resp.text
    return base64.b64decode(resp.json()["image"].split(",", 1)[1])


def _refused(resp, *parts, status=400) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    msg = resp.json()["error"]
    assert "\n" not in msg and "Traceback" not in msg
    for p in parts:
        assert p in msg, (p, msg)
    return msg


# -- what each run's page offers ------------------------------------------------------------------

@pytest.mark.parametrize("name, panels", [
    ("dcgan", ["sample", "interp", "repair"]), ("cgan", ["sample", "interp"]),
    ("infogan", ["sample", "interp", "codes", "repair"]), ("toy", ["sample"]), ("pix2pix", ["translate"]),
    ("cyclegan", ["translate"]), ("superres", ["superres"]), ("inpaint", ["repair"]), ("interpolate", ["frames"]),
    ("wavegan", ["sample"]), ("text", ["lines"]),
])
def test_info_lists_the_panels_of_each_task(clients, runs, name, panels):
    info = clients[name].get("/api/info").json()
    assert [p["name"] for p in info["panels"]] == panels
    assert info["task"] == runs[name].task and info["step"] == 2 and info["preset"] == runs[name].config.preset
    assert info["limits"]["max_samples"] == 64 and info["limits"]["max_upload_mb"] == 10
    by_name = {p["name"]: p for p in info["panels"]}
    if name == "cgan":
        assert info["conditional"] and info["classes"] == [str(i) for i in range(10)]
        assert by_name["sample"]["fields"]["class"] == {"type": "int", "min": 0, "max": 9, "default": None}
    if name == "infogan":
        assert "info_cat" not in info  # the codes panel's fields carry the codes' sizes
        assert by_name["codes"]["fields"]["cont"]["n"] == 2 and by_name["codes"]["fields"]["cat"]["max"] == 9
    if name == "cyclegan":
        assert by_name["translate"]["shapes"] == {"AtoB": [1, 28, 28], "BtoA": [3, 28, 28]}
    if name == "toy":
        assert info["kind"] == "points" and "2-D toy run" in by_name["sample"]["about"]
        assert "scatter" in by_name["sample"]["about"] and by_name["sample"]["fields"]["n"]["max"] == 10_000
    if name in ("inpaint", "dcgan"):
        assert by_name["repair"]["uploads"] == ["image", "mask"]
    if name == "wavegan":
        assert info["kind"] == "audio" and "16 kHz" in by_name["sample"]["about"]
        assert by_name["sample"]["fields"]["n"]["max"] == audio_serve.GRID_CLIPS
    if name == "text":
        fields = by_name["lines"]["fields"]
        assert info["kind"] == "text" and by_name["lines"]["topics"] == ["animals", "weather"]
        assert fields["topic"] == {"type": "int", "min": 0, "max": 1, "default": None}
        assert fields["temperature"]["default"] == runs["text"].config.text.temperature
        assert fields["prefix"] == {"type": "str", "max_len": 24 * 8, "default": ""}


def test_the_page_and_its_files_are_served(clients):
    page = clients["cgan"].get("/")
    assert page.status_code == 200 and 'id="sample-btn"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "same-origin"  # its POSTs always name their origin
    for f, kind in (("app.js", "javascript"), ("app.css", "css")):
        r = clients["cgan"].get(f"/static/{f}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    # nothing on the page comes from elsewhere
    for f in ("/", "/static/app.js", "/static/app.css"):
        assert "http://" not in clients["cgan"].get(f).text and "https://" not in clients["cgan"].get(f).text


def test_a_task_without_a_page_says_so(runs, monkeypatch):
    import gankit.tasks

    real = gankit.tasks.task_part
    # a task folder without serve.py: the registry finds no such part
    monkeypatch.setattr(gankit.tasks, "task_part", lambda name, part: None if part == "serve" else real(name, part))
    run = gankit.load(runs["dcgan"].dir)
    c = TestClient(make_app(run), base_url="http://localhost")
    info = c.get("/api/info").json()
    assert info["panels"] == [] and "no page for 'generate' runs" in info["message"]
    _refused(c.post("/api/sample", json={}), "no panel 'sample'", status=404)


# -- audio and text runs ------------------------------------------------------------------------

def test_audio_sample_is_the_clips_as_a_wav_and_their_spectrograms(clients, runs):
    import wave

    from gankit.data.speech import CLIP, RATE
    from gankit.tasks.audio.infer import sample_audio

    c = clients["wavegan"]
    r = c.post("/api/sample", json={"n": 3, "seed": 5})
    grid = _image_of(r)
    assert grid.shape[:2] == (128 + 4, 3 * 130 + 2)  # one row of three 128 x 128 spectrograms
    d = r.json()
    head, data = d["audio"].split(",", 1)
    assert head == "data:audio/wav;base64" and d["filename"].endswith("-seed5-n3.wav")
    with wave.open(io.BytesIO(base64.b64decode(data))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(3, CLIP + RATE // 4)
    want = (sample_audio(runs["wavegan"], 3, 5).clamp(-1, 1) * 32767).round().to(torch.int16).numpy()
    np.testing.assert_array_equal(pcm[:, :CLIP], want)  # each clip, then 0.25 s of silence
    assert not pcm[:, CLIP:].any()
    assert c.post("/api/sample", json={"n": 3, "seed": 5}).json()["audio"] == d["audio"]
    assert c.post("/api/sample", json={"n": 3, "seed": 6}).json()["audio"] != d["audio"]
    _refused(c.post("/api/sample", json={"n": audio_serve.GRID_CLIPS + 1}), "n:", f"1..{audio_serve.GRID_CLIPS}")


def test_text_lines_are_the_runs_own_and_checked(clients, runs):
    c, run = clients["text"], runs["text"]
    r = c.post("/api/lines", json={"n": 4, "seed": 2, "temperature": 0.7, "topic": 1, "prefix": "the "})
    assert r.status_code == 200, r.text
    d = r.json()
    assert "image" not in d and d["filename"].endswith("-seed2-t0.7.txt")
    assert d["text"] == sample_text(run, 4, 0.7, 2, 1, "the ") and all(ln.startswith("the ") for ln in d["text"])
    assert c.post("/api/lines", json={"n": 3, "seed": 9}).json()["text"] == sample_text(run, 3, run.config.text.temperature, 9)
    msg = _refused(c.post("/api/lines", json={"prefix": "the Z"}), "prefix:", "'Z'", "vocabulary")
    assert "--" not in msg  # the page's field, not the CLI's flag
    _refused(c.post("/api/lines", json={"temperature": 0}), "temperature:", "[0.05, 5]")
    _refused(c.post("/api/lines", json={"topic": 2}), "topic:", "0..1")
    _refused(c.post("/api/lines", json={"prefix": 3}), "prefix:", "not text")
    _refused(c.post("/api/lines", json={"prefix": "x" * 500}), "prefix:", "at most 192")


# -- generate runs ------------------------------------------------------------------------------

def test_sample_is_a_grid_of_the_right_size_and_seeded(clients, runs):
    c = clients["dcgan"]
    a = _image(c.post("/api/sample", json={"n": 6, "seed": 3}))
    assert a.shape == (2 * 30 + 2, 3 * 30 + 2)  # 2 rows of 3 28-px images, 2-px gaps: make_grid
    want = make_grid(runs["dcgan"].sample(6, 3))[:, :, 0]
    np.testing.assert_array_equal(a, want)
    same = _bytes(c.post("/api/sample", json={"n": 6, "seed": 3}))
    assert same == _bytes(c.post("/api/sample", json={"n": 6, "seed": 3}))
    assert same != _bytes(c.post("/api/sample", json={"n": 6, "seed": 4}))
    assert _image(c.post("/api/sample", json={})).shape == (4 * 30 + 2, 4 * 30 + 2)  # default n 16


def test_the_class_picker_is_respected(clients, runs):
    c, run = clients["cgan"], runs["cgan"]
    three = _image(c.post("/api/sample", json={"n": 4, "seed": 1, "class": 3}))
    np.testing.assert_array_equal(three, make_grid(run.sample(4, 1, label=3))[:, :, 0])
    assert not np.array_equal(three, _image(c.post("/api/sample", json={"n": 4, "seed": 1, "class": 4})))
    anyc = _image(c.post("/api/sample", json={"n": 4, "seed": 1, "class": None}))
    np.testing.assert_array_equal(anyc, make_grid(run.sample(4, 1))[:, :, 0])
    # the walk keeps the chosen class at both ends
    end = _image(c.post("/api/interp", json={"seed_a": 2, "seed_b": 5, "t": 1.0, "class": 7}))
    np.testing.assert_array_equal(end, run.generate(run.latents(1, 5), torch.tensor([7]))[0, 0].numpy())


def test_interpolation_runs_from_seed_a_to_seed_b(clients, runs):
    c, run = clients["dcgan"], runs["dcgan"]
    ends = [run.generate(run.latents(1, s))[0, 0].numpy() for s in (2, 5)]
    got = [_image(c.post("/api/interp", json={"seed_a": 2, "seed_b": 5, "t": t})) for t in (0, 0.5, 1)]
    np.testing.assert_array_equal(got[0], ends[0])
    np.testing.assert_array_equal(got[2], ends[1])
    assert not np.array_equal(got[1], ends[0]) and not np.array_equal(got[1], ends[1])


def test_infogan_codes_set_the_generators_input(clients, runs, monkeypatch):
    """G's input is [z of the seed (8), one_hot(cat) (10), cont (2)]: checked on the input itself,
    since a 2-step InfoGAN's images barely depend on it."""
    run, seen = runs["infogan"], []
    original = run.generate

    def spy(z, y=None):
        seen.append(z.clone())
        return original(z, y)

    monkeypatch.setattr(run, "generate", spy)
    c = clients["infogan"]
    got = _image(c.post("/api/codes", json={"seed": 4, "cat": 5, "cont": [0.25, -1.0]}))
    z = seen[-1]
    assert z.shape == (1, 20)
    torch.testing.assert_close(z[0, :8], run.latents(1, 4)[0, :8])
    torch.testing.assert_close(z[0, 8:18], torch.eye(10)[5])
    torch.testing.assert_close(z[0, 18:], torch.tensor([0.25, -1.0]))
    np.testing.assert_array_equal(got, original(z)[0, 0].numpy())
    _image(c.post("/api/codes", json={"seed": 4, "cat": 0, "cont": [0.25, -1.0]}))
    torch.testing.assert_close(seen[-1][0, 8:18], torch.eye(10)[0])
    _refused(c.post("/api/codes", json={"cont": [0.0]}), "cont", "list of 2 numbers in [-1, 1]")
    _refused(c.post("/api/codes", json={"cont": [0.0, 1.5]}), "cont[1]: 1.5 is out of range")
    _refused(c.post("/api/codes", json={"cat": 10}), "cat: 10 is out of range; expected a whole number 0..9")


def test_a_toy_run_samples_a_scatter(clients):
    a = _image(clients["toy"].post("/api/sample", json={"n": 200, "seed": 0}))
    assert a.shape == (500, 500, 3) and len(np.unique(a.reshape(-1, 3), axis=0)) > 10


@pytest.mark.parametrize("body, parts", [
    ({"n": 1, "colour": 3}, ["unknown field 'colour'", "accepts: n, seed, class"]),
    ({"n": 65}, ["n: 65 is out of range", "1..64"]),
    ({"n": 0}, ["n: 0 is out of range"]),
    ({"n": 2.5}, ["n: 2.5 is not a whole number"]),
    ({"n": True}, ["n: True is not a whole number"]),
    ({"seed": -1}, ["seed: -1 is out of range", "0..2147483647"]),
    ({"seed": "7"}, ["seed: '7' is not a whole number"]),
    ({"class": 10}, ["class: 10 is out of range", "0..9"]),
])
def test_bad_fields_are_refused_in_one_line(clients, body, parts):
    _refused(clients["cgan"].post("/api/sample", json=body), *parts)


def test_bad_bodies_are_refused_in_one_line(clients):
    c = clients["cgan"]
    _refused(c.post("/api/interp", json={"t": 1.5}), "t: 1.5 is out of range", "[0, 1]")
    _refused(c.post("/api/interp", json={"t": "half"}), "t: 'half' is not a number")
    _refused(c.post("/api/sample", content=b"{nope", headers={"content-type": "application/json"}), "not valid JSON")
    _refused(c.post("/api/sample", content=b"[1, 2]", headers={"content-type": "application/json"}), "JSON object")
    _refused(c.post("/api/sample", content=b"n=3", headers={"content-type": "text/plain"}), "application/json")
    _refused(c.post("/api/sample", content=b"{}" + b" " * 70_000, headers={"content-type": "application/json"}),
             "over the limit")
    _refused(c.post("/api/sample", json={}, headers={"origin": "http://elsewhere.example"}), "refused")
    _refused(c.post("/api/sample", json={}, headers={"origin": "null"}), "Origin: null", "open the page at")
    _refused(c.post("/api/zoom", json={}), "no panel 'zoom'", "offers: sample, interp", status=404)
    _refused(c.get("/api/sample"), "GET /api/sample is not accepted", status=405)
    _refused(c.get("/nothing-here"), "no such page", status=404)


def test_an_error_inside_the_model_is_one_line_500(runs, clients, monkeypatch, capfd):
    def broken(*a, **k):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(runs["dcgan"], "sample", broken)
    msg = _refused(clients["dcgan"].post("/api/sample", json={}), "RuntimeError: boom second line", status=500)
    assert "sample failed" in msg
    err = capfd.readouterr().err.strip().splitlines()
    assert err == ["gankit serve: error: POST /api/sample failed: RuntimeError: boom second line"]


# -- uploads ------------------------------------------------------------------------------------

def test_translate_fits_the_upload_to_the_run_and_picks_directions(clients):
    r = clients["pix2pix"].post("/api/translate", files={"image": ("a.png", _png(_noise(20, 24)), "image/png")})
    assert _image(r).shape == (16, 16)  # grey 16x16: what this pix2pix run takes and makes
    assert any("resized 24x20 to 16x16" in n for n in r.json()["notes"])
    c = clients["cyclegan"]
    grey = ("g.png", _png(_noise(28, 28, c=1)), "image/png")
    assert _image(c.post("/api/translate", files={"image": grey}, data={"direction": "AtoB"})).shape == (28, 28, 3)
    assert _image(c.post("/api/translate", files={"image": grey}, data={"direction": "BtoA"})).shape == (28, 28)
    _refused(c.post("/api/translate", files={"image": grey}, data={"direction": "up"}), "choose one of: AtoB, BtoA")
    _refused(clients["pix2pix"].post("/api/translate", files={"image": grey}, data={"direction": "BtoA"}),
             "choose one of: AtoB")


def test_superres_upscales_and_caps_its_output(clients, monkeypatch):
    c = clients["superres"]
    up = c.post("/api/superres", files={"image": ("s.png", _png(_noise(20, 24, c=1)), "image/png")})
    assert _image(up).shape == (80, 96)
    monkeypatch.setattr(models, "MAX_PIXELS", 4000)  # 20x24 x4 = 7680 pixels out
    _refused(c.post("/api/superres", files={"image": ("s.png", _png(_noise(20, 24, c=1)), "image/png")}),
             "96x80 = 7680 pixels", "at most 4000")


def _hole_mask(h, w, box):
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 255
    return m


def test_inpaint_changes_only_the_painted_hole(clients):
    x = _noise(30, 22, c=1, seed=1)
    m = _hole_mask(30, 22, (8, 20, 5, 15))
    y = _image(clients["inpaint"].post("/api/repair", files={"image": ("x.png", _png(x), "image/png"),
                                                             "mask": ("m.png", _png(m), "image/png")}))
    assert y.shape == x.shape  # the learned inpainter keeps the upload's size
    known = m == 0
    np.testing.assert_array_equal(y[known], x[known])  # every known pixel is the input's own byte
    assert (y[~known] != x[~known]).mean() > 0.5


def test_inversion_repairs_an_unconditional_run_at_its_size(clients):
    x = _noise(40, 40, c=1, seed=2)
    m = _hole_mask(40, 40, (10, 30, 10, 30))
    r = clients["dcgan"].post("/api/repair", files={"image": ("x.png", _png(x), "image/png"),
                                                    "mask": ("m.png", _png(m), "image/png")},
                              data={"steps": "3", "restarts": "1"})
    y = _image(r)
    assert y.shape == (28, 28)  # fitted to G's size
    assert any("resized 40x40 to 28x28" in n for n in r.json()["notes"])
    _refused(clients["dcgan"].post("/api/repair", files={"image": ("x.png", _png(x), "image/png"),
                                                         "mask": ("m.png", _png(m), "image/png")},
                                   data={"steps": "many"}), "steps: 'many' is not a whole number")


def test_masks_are_fitted_or_refused(clients):
    c = clients["inpaint"]
    x = ("x.png", _png(_noise(32, 32, c=1)), "image/png")
    small = _hole_mask(16, 16, (4, 10, 4, 10))
    r = c.post("/api/repair", files={"image": x, "mask": ("m.png", _png(small), "image/png")})
    assert _image(r).shape == (32, 32) and any("mask: resized 16x16 to 32x32" in n for n in r.json()["notes"])
    empty = ("m.png", _png(np.zeros((32, 32), np.uint8)), "image/png")
    _refused(c.post("/api/repair", files={"image": x, "mask": empty}), "no hole painted")
    _refused(c.post("/api/repair", files={"image": x}), "missing upload 'mask'")
    _refused(c.post("/api/repair", files={"image": x, "mask": empty, "other": empty}),
             "unknown upload 'other'", "accepts: image, mask")
    _refused(c.post("/api/repair", files={"image": x, "mask": empty}, data={"colour": "red"}),
             "unknown field 'colour'", "accepts: image, mask")


def test_interpolate_predicts_the_middle_frame(clients):
    c = clients["interpolate"]
    a, b = _noise(16, 16, seed=3), _noise(16, 16, seed=4)
    r = c.post("/api/frames", files={"prev": ("a.png", _png(a), "image/png"), "next": ("b.png", _png(b), "image/png")})
    assert _image(r).shape == (16, 16, 3)
    _refused(c.post("/api/frames", files={"prev": ("a.png", _png(a), "image/png"),
                                          "next": ("b.png", _png(_noise(8, 8)), "image/png")}), "differ in size")


def test_bad_uploads_are_refused_in_one_line(runs, clients):
    c = clients["superres"]
    _refused(c.post("/api/superres", files={"image": ("notes.png", b"these are words, not pixels", "image/png")}),
             "upload 'image' (notes.png): not an image", "accepted: PNG, JPEG")
    _refused(c.post("/api/superres", files={"image": ("cut.png", _png(_noise(64, 64))[:200], "image/png")}),
             "upload 'image' (cut.png)")
    _refused(c.post("/api/superres", files={"image": ("e.png", b"", "image/png")}), "empty file")
    huge = _png(np.zeros((4097, 4097), np.uint8))  # compresses to a few KB: the pixel count is what is refused
    _refused(c.post("/api/superres", files={"image": ("h.png", huge, "image/png")}), "4097x4097", "at most 16777216")
    _refused(c.post("/api/superres", json={}), "multipart form with image")
    small = TestClient(make_app(runs["superres"], max_upload_mb=0.01), base_url="http://localhost")
    big = _png(_noise(100, 100))  # ~30 KB of noise
    _refused(small.post("/api/superres", files={"image": ("b.png", big, "image/png")}), "over the limit of 0.01 MB")
    body = b"".join([b"--xx\r\nContent-Disposition: form-data; name=\"image\"; filename=\"b.png\"\r\n",
                     b"Content-Type: image/png\r\n\r\n", big, b"\r\n--xx--\r\n"])

    def chunks():  # no Content-Length: the bytes read are counted instead
        for i in range(0, len(body), 4096):
            yield body[i:i + 4096]

    r = small.post("/api/superres", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xx"})
    _refused(r, "over the limit of 0.01 MB")


# -- the model off the event loop, one call at a time -------------------------------------------

def test_a_slow_model_call_blocks_neither_the_page_nor_info(runs, monkeypatch):
    run = runs["dcgan"]
    inside, release = threading.Semaphore(0), threading.Event()
    state = {"now": 0, "most": 0}
    original = run.sample

    def slow(*a, **k):
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        inside.release()
        release.wait(20)
        state["now"] -= 1
        return original(*a, **k)

    monkeypatch.setattr(run, "sample", slow)
    with Background(make_app(run)) as url:
        answers = []

        def sample():
            answers.append(httpx.post(url + "api/sample", json={"n": 2}, timeout=30).status_code)

        workers = [threading.Thread(target=sample) for _ in range(2)]
        try:
            for w in workers:
                w.start()
            assert inside.acquire(timeout=20)  # one sample request is inside the model now
            t0 = time.monotonic()
            assert httpx.get(url + "api/info", timeout=5).status_code == 200
            assert httpx.get(url, timeout=5).status_code == 200
            assert time.monotonic() - t0 < 3
            assert not inside.acquire(timeout=0.5)  # the second request waits for the lock
        finally:
            release.set()
            for w in workers:
                w.join(30)
        assert answers == [200, 200] and state["most"] == 1


# -- the Host allowlist (DNS rebinding) --------------------------------------------------------

def test_a_rebound_name_is_refused_and_the_origin_is_checked_against_the_list(runs):
    """A page at evil.example whose name now resolves to 127.0.0.1 sends Host and Origin that agree
    with each other (issue 29 measured a 200): the Host allowlist refuses it, every route alike."""
    c = TestClient(make_app(runs["dcgan"]), base_url="http://localhost:8000")  # served on port 8000
    rebound = {"host": "evil.example:8000", "origin": "http://evil.example:8000"}
    msg = _refused(c.post("/api/sample", json={"n": 2}, headers=rebound), "Host 'evil.example:8000' refused")
    assert msg.endswith("addressed to localhost, 127.0.0.1, ::1 only (gankit serve --allow-host NAME adds a name)")
    for path in ("/", "/api/info", "/static/app.js"):
        _refused(c.get(path, headers={"host": "evil.example:8000"}), "refused")
    _refused(c.get("/api/info", headers={"host": "localhost.evil.example"}), "refused")
    _refused(c.get("/api/info", headers={"host": "local host"}), "Host 'local host' refused")
    # this machine's names, with or without the port; a POST from its own page or from no page (curl)
    for host in ("localhost:8000", "LOCALHOST", "127.0.0.1:8000", "[::1]:8000"):
        assert c.get("/api/info", headers={"host": host}).status_code == 200, host
    assert c.post("/api/sample", json={"n": 2}, headers={"origin": "http://localhost:8000"}).status_code == 200
    assert c.post("/api/sample", json={"n": 2}, headers={"host": "127.0.0.1:8000",
                                                         "origin": "http://localhost:8000"}).status_code == 200
    assert c.post("/api/sample", json={"n": 2}).status_code == 200
    # a port forwarded to this one (ssh -L 9000:localhost:8000): the browser's port is in Host and Origin
    assert c.post("/api/sample", json={"n": 2}, headers={"host": "localhost:9000",
                                                         "origin": "http://localhost:9000"}).status_code == 200
    # the Origin is held against the list, not against Host: another name, another local port, https
    for origin in ("http://evil.example:8000", "http://localhost:3000", "https://localhost:8000",
                   "http://localhost:port"):
        _refused(c.post("/api/sample", json={"n": 2}, headers={"origin": origin}), f"a request from {origin} refused")


def test_allow_host_extends_the_list(runs):
    from gankit.apps.serve.hosts import allowed_hosts

    c = TestClient(make_app(runs["dcgan"], hosts=["gpu-box.lan", "192.168.1.4"]), base_url="http://gpu-box.lan:8000")
    assert c.post("/api/sample", json={"n": 2}, headers={"origin": "http://gpu-box.lan:8000"}).status_code == 200
    assert c.get("/api/info", headers={"host": "192.168.1.4:8000"}).status_code == 200
    _refused(c.get("/api/info", headers={"host": "evil.example:8000"}), "addressed to localhost, 127.0.0.1, ::1, "
             "gpu-box.lan, 192.168.1.4 only")
    # what `gankit serve --host H --allow-host N` answers: a wildcard names no machine
    assert allowed_hosts("0.0.0.0", ["MyBox.", "[FE80::1]"]) == ("localhost", "127.0.0.1", "::1", "mybox", "fe80::1")
    assert allowed_hosts("::") == allowed_hosts("127.0.0.1") == allowed_hosts("[::1]") == ("localhost", "127.0.0.1", "::1")
    assert allowed_hosts("192.168.1.4") == ("localhost", "127.0.0.1", "::1", "192.168.1.4")
    for bad in ("http://mybox", "mybox:8000", "*", "my box", ""):
        with pytest.raises(GankitError, match="^" + re.escape(f"--allow-host {bad!r}: expected a host name or address")):
            allowed_hosts("127.0.0.1", [bad])


def test_the_allow_host_flag_is_checked_before_anything_loads(runs, capsys):
    from gankit.cli import main

    assert main(["serve", str(runs["dcgan"].dir), "--allow-host", "box.lan", "--allow-host", "http://box.lan"]) == 2
    err = capsys.readouterr().err
    assert "--allow-host 'http://box.lan': expected a host name or address" in err and len(err.splitlines()) == 1


def test_a_served_socket_refuses_a_rebound_name(runs):
    """The same through uvicorn on a real port: the served port comes from the socket."""
    with Background(make_app(runs["dcgan"])) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        own = {"origin": f"http://127.0.0.1:{port}"}
        assert httpx.post(url + "api/sample", json={"n": 2}, headers=own, timeout=30).status_code == 200
        rebound = {"host": f"evil.example:{port}", "origin": f"http://evil.example:{port}"}
        _refused(httpx.post(url + "api/sample", json={"n": 2}, headers=rebound, timeout=30), "refused")
        _refused(httpx.post(url + "api/sample", json={"n": 2}, headers={"origin": f"http://127.0.0.1:{port + 1}"},
                            timeout=30), "refused")


# -- serve() itself ---------------------------------------------------------------------------

def _start(run_dir, **kwargs):
    code = f"from gankit.apps.serve import serve; serve({str(run_dir)!r}, **{kwargs!r})"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_serve_prints_its_url_and_stops_cleanly_on_ctrl_c_and_sigterm(runs):
    procs = {signal.SIGINT: _start(runs["cgan"].dir, host="0.0.0.0"), signal.SIGTERM: _start(runs["cgan"].dir)}
    try:
        for sig, p in procs.items():
            line = p.stdout.readline()
            assert line.startswith("gankit serve: http://") and line.rstrip().endswith("/ (Ctrl-C to stop)"), line
            port = int(line.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            assert port > 0
            page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
            assert page.status_code == 200 and 'id="samples"' in page.text
            assert httpx.post(f"http://127.0.0.1:{port}/api/sample", json={"n": 2}, timeout=30).status_code == 200
            p.send_signal(sig)
        for sig, p in procs.items():
            out, err = p.communicate(timeout=15)
            assert p.returncode == 0, (sig, err)
            assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
            public = "warning: listening on 0.0.0.0, not loopback: anyone who can reach this machine"
            assert (public in err) == (sig == signal.SIGINT), err
            if sig == signal.SIGINT:  # what it answers, said in the same line
                assert "; it answers requests addressed to localhost, 127.0.0.1, ::1 only (--allow-host NAME" in err
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()


def test_a_port_in_use_is_one_line(runs):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = held.getsockname()[1]
    try:
        with pytest.raises(GankitError) as e:
            serve(runs["cgan"].dir, port=port, on_ready=lambda url: pytest.fail("served on a port in use"))
        assert str(e.value) == (f"port {port} on 127.0.0.1 is in use: pick another with --port, "
                                "or --port 0 for a free one")
    finally:
        held.close()
    with pytest.raises(GankitError, match="--port 70000: expected 0..65535"):
        serve(runs["cgan"].dir, port=70000)


def test_a_bad_run_directory_is_the_loaders_one_line(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        serve(tmp_path / "nope")


def test_only_loopback_hosts_are_quiet(capsys):
    assert all(map(is_loopback, ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org"]))
    warn_if_public("127.0.0.1")
    assert capsys.readouterr().err == ""
    warn_if_public("192.168.1.4")
    assert "anyone who can reach this machine" in capsys.readouterr().err


def test_without_the_extra_it_says_how_to_install(monkeypatch, runs):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(GankitError) as e:
        serve(runs["cgan"].dir)
    assert str(e.value) == EXTRA == "gankit serve needs the serve extra: pip install 'gankit[serve]'"


def test_importing_the_package_needs_neither_torch_nor_the_extra():
    code = ("import sys, gankit.apps.serve\n"
            "bad = [m for m in ('torch', 'starlette', 'uvicorn') if m in sys.modules]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
