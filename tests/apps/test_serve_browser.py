"""The `gankit serve` page in a real browser (Debian's chromium through Playwright; skipped where
either is missing): a conditional generate run's sample grid, seeds, class picker, latent slider
and downloads, an inpaint run's upload, mask painting and error box, an audio run's player and a
text run's lines, with no page errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.config import load_config

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from gankit.apps.serve import make_app  # noqa: E402
from gankit.apps.serve.server import Background  # noqa: E402

GEN = ["data.source=fake:1x28x28:64", "model.g_width=4", "model.d_width=4", "model.z_dim=8", "train.batch=8",
       "log.progress=false", "device=cpu", "log.grid_n=4", "train.steps=2"]
TINY = ["model.g_width=4", "model.d_width=4", "train.batch=4", "log.progress=false", "device=cpu", "log.every=2",
        "log.grid_every=1000", "inpaint.grid_examples=2", "train.steps=2"]


@pytest.fixture(scope="module")
def cgan_url(tmp_path_factory):
    run = gankit.train(load_config("cgan", overrides=GEN), str(tmp_path_factory.mktemp("cgan") / "run"))
    with Background(make_app(run)) as url:
        yield url


@pytest.fixture(scope="module")
def inpaint_url(tmp_path_factory):
    run = gankit.train(load_config("inpaint", overrides=TINY), str(tmp_path_factory.mktemp("inp") / "run"))
    with Background(make_app(run)) as url:
        yield url


@pytest.fixture(scope="module")
def audio_url(tmp_path_factory):
    import torch

    from gankit.tasks.audio.infer import write_wav

    root = tmp_path_factory.mktemp("audio")
    t = torch.arange(8000) / 16000
    for freq in (220, 440, 660, 880):  # four 0.5 s tones
        write_wav(root / f"{freq}.wav", 0.5 * torch.sin(2 * torch.pi * freq * t))
    cfg = load_config("wavegan", overrides=["model.g_width=2", "model.d_width=2", "model.z_dim=4", "train.batch=4",
                                            "train.n_critic=1", "train.steps=2", "log.progress=false", "device=cpu",
                                            "log.grid_every=1000", "audio.grid_clips=2", "audio.griffin_lim=2",
                                            f"data.source={root}"])
    with Background(make_app(gankit.train(cfg, str(root / "run")))) as url:
        yield url


@pytest.fixture(scope="module")
def text_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "lines.txt").write_text("".join(f"line {w} of {k}\n" for k in range(4) for w in
                                            ("one", "two", "three", "four", "five")), encoding="utf-8")
    cfg = load_config("text-mle", overrides=["text.hidden=16", "text.emb=8", "text.max_len=24", "train.batch=8",
                                             "train.steps=2", "log.progress=false", "device=cpu",
                                             "log.grid_every=1000", "text.grid_lines=2",
                                             f"data.source={root / 'lines.txt'}"])
    with Background(make_app(gankit.train(cfg, str(root / "run")))) as url:
        yield url


def _src(page, sel: str) -> str:
    return page.eval_on_selector(sel, "el => el.getAttribute('src') || ''")


def _changes(page, sel: str, old: str) -> str:
    """Wait until `sel`'s src is a PNG other than `old`; the new src. (Predicates are functions,
    not expression strings: the page's CSP forbids the eval Playwright polls those with.)"""
    page.wait_for_function("([sel, old]) => { const s = document.querySelector(sel).getAttribute('src') || '';"
                           " return s.startsWith('data:image/png') && s !== old; }", arg=[sel, old])
    return _src(page, sel)


def _decode(src: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def _unexpected(errors: list[str]) -> list[str]:
    # Chromium logs every 4xx answer as "Failed to load resource": those 400s are the point
    return [e for e in errors if "Failed to load resource" not in e]


def test_generate_page_samples_walks_and_downloads(page, cgan_url, tmp_path):
    page.goto(cgan_url)
    first = _changes(page, "#samples", "")  # the page opens with a grid
    page.wait_for_function("() => document.querySelector('#interp').src.startsWith('data:')")
    assert "cgan" in page.text_content("#run-info") and page.is_visible("#class")
    page.fill("#seed", "5")
    page.click("#sample-btn")
    five = _changes(page, "#samples", first)
    page.fill("#seed", "6")
    page.click("#sample-btn")
    six = _changes(page, "#samples", five)
    page.fill("#seed", "5")
    page.click("#sample-btn")
    assert _changes(page, "#samples", six) == five  # the same seed, the same grid
    page.select_option("#class", "3")
    assert _changes(page, "#samples", five) != five

    walk = _src(page, "#interp")
    page.fill("#interp-slider", "0.9")
    assert _changes(page, "#interp", walk) != walk and page.text_content("#interp-t") == "0.90"

    link = page.locator("#panel-sample .download")
    assert link.get_attribute("href") == _src(page, "#samples")
    with page.expect_download() as dl:
        link.click()
    assert dl.value.suggested_filename == "cgan-step2-seed5-class3-n16.png"

    page.fill("#n", "1000")
    page.click("#sample-btn")
    page.wait_for_selector("#error", state="visible")
    assert "n: 1000 is out of range; expected a whole number 1..64" in page.text_content("#error")
    assert page.eval_on_selector("#error", "el => getComputedStyle(el).color") == "rgb(179, 38, 30)"  # red
    page.fill("#n", "4")
    page.click("#sample-btn")
    page.wait_for_selector("#error", state="hidden")  # cleared by the next success
    assert _decode(_src(page, "#samples")).shape == (2 * 30 + 2, 2 * 30 + 2)

    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert _unexpected(page.errors) == []


def test_inpaint_page_paints_a_hole_and_repairs_it(page, inpaint_url, tmp_path):
    x = np.tile(np.linspace(0, 255, 28, dtype=np.uint8), (28, 1))  # a grey ramp, 28x28
    Image.fromarray(x).save(tmp_path / "ramp.png")
    page.goto(inpaint_url)
    page.wait_for_selector("#panel-upload", state="visible")
    assert page.is_disabled("#run-btn")
    page.set_input_files("#upload", str(tmp_path / "ramp.png"))
    page.wait_for_function("() => document.querySelector('#mask-canvas').width === 28")
    page.locator("#mask-canvas").scroll_into_view_if_needed()  # page.mouse works in viewport coordinates
    box = page.locator("#mask-canvas").bounding_box()
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])  # noqa: E731
    page.mouse.move(*at(0.3, 0.3))
    page.mouse.down()
    page.mouse.move(*at(0.7, 0.6), steps=8)
    page.mouse.up()
    page.click("#run-btn")
    page.wait_for_selector("#output-img", state="visible")
    out = _decode(_changes(page, "#output-img", ""))
    assert _src(page, "#output-img") != _src(page, "#input-img")
    assert out.shape == x.shape
    # the stroke ran from (8.4, 8.4) to (19.6, 16.8) image pixels with a 4-px brush (28 / 8, rounded):
    # only pixels within its reach may change, and some of them must
    changed = out != x
    near = np.zeros_like(changed)
    near[5:21, 5:23] = True
    assert changed.any() and not changed[~near].any()
    assert page.locator("#panel-upload .download").get_attribute("download") == "inpaint-step2-repaired.png"

    (tmp_path / "words.png").write_text("these are words, not pixels")
    page.set_input_files("#upload", str(tmp_path / "words.png"))
    page.click("#run-btn")
    page.wait_for_selector("#error", state="visible")
    assert "upload 'image' (words.png): not an image" in page.text_content("#error")

    shot = tmp_path / "serve-inpaint.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert _unexpected(page.errors) == []


def test_audio_page_plays_the_clips_it_drew(page, audio_url):
    page.goto(audio_url)
    first = _changes(page, "#samples", "")  # the page opens with spectrograms and their clips
    assert "audio clips" in page.text_content("#run-info") and not page.is_visible("#panel-interp")
    page.wait_for_function("() => document.querySelector('#sample-audio').readyState >= 1")
    n = int(page.input_value("#n"))
    # n clips of 16,384 samples at 16 kHz, each followed by 0.25 s of silence
    assert abs(page.eval_on_selector("#sample-audio", "el => el.duration") - n * (16384 / 16000 + 0.25)) < 0.01
    link = page.locator("#panel-sample .download")
    assert link.get_attribute("href") == _src(page, "#sample-audio") and link.inner_text() == "Download WAV"
    old = _src(page, "#sample-audio")
    page.fill("#seed", "3")
    page.click("#sample-btn")
    _changes(page, "#samples", first)
    assert _src(page, "#sample-audio") != old and page.is_visible("#sample-audio")
    assert _unexpected(page.errors) == []


def test_text_page_samples_lines_and_shows_errors(page, text_url):
    page.goto(text_url)
    page.wait_for_function("() => !document.querySelector('#lines').hidden")
    lines = page.text_content("#lines").split("\n")
    assert len(lines) == int(page.input_value("#lines-n")) and not page.is_visible("#topic-label")
    page.fill("#prefix", "line ")
    page.click("#lines-btn")
    page.wait_for_function("() => document.querySelector('#lines').textContent.split('\\n')"
                           ".every((l) => l.startsWith('line '))")
    link = page.locator("#panel-lines .download")
    assert link.inner_text() == "Download TXT" and link.get_attribute("download").endswith(".txt")
    page.fill("#prefix", "line Q")
    page.click("#lines-btn")
    page.wait_for_selector("#error", state="visible")
    assert "prefix: 'Q' not in the run's char vocabulary" in page.text_content("#error")
    assert _unexpected(page.errors) == []


@pytest.fixture(scope="module")
def recon_url():
    """An untrained recon-ct run at 32 px (the page, not the network, is under test)."""
    from pathlib import Path

    import torch

    from gankit.run import Run
    from gankit.tasks import get_task

    cfg = load_config("recon-ct", overrides=["model.g_width=4", "recon.size=32", "device=cpu"])
    torch.manual_seed(0)
    nets = {k: v.eval() for k, v in get_task("recon").inference_nets(cfg, {}).items()}
    meta = {"name": "phantoms", "shape": [1, 32, 32], "channels": 1, "count": 2000}
    run = Run.for_task("recon")(directory=Path("."), config=cfg, nets=nets, data_meta=meta, step=0,
                                device=torch.device("cpu"), ema=False, task="recon")
    with Background(make_app(run)) as url:
        yield url


def test_a_panels_labelled_number_is_drawn_from_its_description_and_sent(page, recon_url, tmp_path):
    """recon's "CT views" comes from the panel's field (Int with a label), not from app.js."""
    x = np.zeros((32, 32), np.uint8)
    x[8:24, 10:22] = 200
    Image.fromarray(x).save(tmp_path / "slice.png")
    page.goto(recon_url)
    page.wait_for_selector("#panel-upload", state="visible")
    views = page.locator("#own-fields input")
    assert views.count() == 1 and "CT views" in page.text_content("#own-fields")
    assert views.input_value() == "30" and views.get_attribute("max") == "720"
    views.fill("12")
    page.set_input_files("#upload", str(tmp_path / "slice.png"))
    page.click("#run-btn")
    page.wait_for_selector("#output-img", state="visible")
    page.wait_for_function("() => document.querySelector('#notes').textContent.includes('data-consistency')")
    assert "12 views" in page.text_content("#notes")
    assert not _unexpected(page.errors)
