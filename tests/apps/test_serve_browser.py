"""The `gankit serve` page in a real browser (Debian's chromium through Playwright; skipped where
either is missing): a conditional generate run's sample grid, seeds, class picker, latent slider
and downloads, and an inpaint run's upload, mask painting and error box, with no page errors."""

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
