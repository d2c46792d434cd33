"""The report pages in a real browser (Chromium): the samples slider swaps the grid and its step,
the play button walks the grids, collapsibles open, and neither page logs an error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gankit.report import compare_reports, write_report

# tests/ is no package (pytest runs with --import-mode=importlib): the run builder is loaded by path.
_spec = importlib.util.spec_from_file_location("report_runs", Path(__file__).with_name("test_report.py"))
_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_runs)
make_run = _runs.make_run


def _slide_to(page, i: int) -> None:
    page.evaluate("i => { const s = document.querySelector('#step-slider'); s.value = i; "
                  "s.dispatchEvent(new Event('input', {bubbles: true})); }", i)


def test_report_page_slider_and_collapsibles(page, tmp_path):
    report = write_report(make_run(tmp_path))
    page.goto(report.as_uri())
    slider = page.locator("#step-slider")
    assert slider.count() == 1 and slider.get_attribute("max") == "6"
    img = page.locator("#step-image")
    last_src = img.get_attribute("src")
    assert page.locator("#step-label").inner_text() == "step 600 (7 of 7)"
    assert page.evaluate("document.querySelector('#step-image').naturalWidth") > 0

    _slide_to(page, 2)
    assert img.get_attribute("src") != last_src and img.get_attribute("src").startswith("data:image/png;base64,")
    assert page.locator("#step-label").inner_text() == "step 200 (3 of 7)"
    slider.fill("6")  # back to the last grid: the src it started with (kept only in the <img>)
    assert img.get_attribute("src") == last_src and page.locator("#step-label").inner_text() == "step 600 (7 of 7)"

    page.locator("#play").click()  # at the end, play starts over from the first grid
    page.wait_for_function("document.querySelector('#step-label').textContent.startsWith('step 100 ')",
                           timeout=3000)
    page.locator("#play").click()  # pause

    log = page.locator("#train-log")
    assert log.get_attribute("open") is None and not page.locator("#train-log pre").is_visible()
    page.locator("#train-log > summary").click()
    assert log.get_attribute("open") is not None and page.locator("#train-log pre").is_visible()
    assert "rolled back to step 250" in page.locator("#train-log pre").inner_text()
    page.locator("#config > summary").click()
    assert "inpaint-mnist" in page.locator("#config pre").inner_text()
    assert page.errors == []

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_compare_page_loads(page, tmp_path):
    runs = [make_run(tmp_path, "a"), make_run(tmp_path, "b", loss_shift=0.3, evals=False)]
    page.goto(compare_reports(runs, tmp_path / "compare.html").as_uri())
    assert page.locator("#compare-table tr").count() == 3
    assert page.locator("figure.plot svg").count() >= 6
    assert page.errors == []


def _tone(path: Path, hz: float, seconds: float = 0.3, rate: int = 16_000) -> None:
    import wave

    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(2 * np.pi * hz * t) * 20000).astype("<i2").tobytes())


def test_report_plays_an_audio_runs_clips(page, tmp_path):
    """An audio run's grids have their clips beside them: the page's player follows the slider,
    and the browser decodes the inlined WAV (its duration is the file's)."""
    run = make_run(tmp_path)
    for step in (0, 100, 300, 600):  # steps 200, 400 and 500 wrote no clips
        _tone(run / "samples" / f"step_{step:06d}.wav", 200 + step)
    page.goto(write_report(run).as_uri())
    audio = page.locator("#step-audio")
    last = audio.get_attribute("src")
    assert last.startswith("data:audio/wav;base64,") and audio.is_visible()
    page.evaluate("document.querySelector('#step-audio').load()")
    page.wait_for_function("document.querySelector('#step-audio').readyState >= 1", timeout=5000)
    assert abs(page.evaluate("document.querySelector('#step-audio').duration") - 0.3) < 0.01

    _slide_to(page, 1)  # step 100: its own clips
    assert audio.is_visible() and audio.get_attribute("src") not in (last, None)
    _slide_to(page, 2)  # step 200: none written
    assert not audio.is_visible()
    assert page.locator("#step-audio-note").inner_text() == "no clips were written at step 200"
    _slide_to(page, 6)
    assert audio.get_attribute("src") == last and audio.is_visible() and not page.locator("#step-audio-note").is_visible()
    assert page.errors == []
