"""What every report page shares: the CSS, the script, the document shell, images as data URIs,
number formatting and which way a metric is better.

Pages are one self-contained file: no fonts, scripts or images are fetched from anywhere, so a
report opens offline, from an email attachment or a CI artifact alike.
"""

from __future__ import annotations

import base64
import json
import struct
from html import escape
from pathlib import Path

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#dfe3ea; --bg:#f6f7f9; --card:#fff; --accent:#2f6fde;
        --warn-bg:#fff6e0; --warn-line:#f0c36d; --miss-bg:#eef3fc; --miss-line:#a9c1ec; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg); line-height:1.45;
       font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1180px; margin:0 auto; padding:18px 22px 60px; }
header.top { background:var(--card); border-bottom:1px solid var(--line); }
header.top .in { max-width:1180px; margin:0 auto; padding:16px 22px 10px; }
h1 { margin:0 0 4px; font-size:22px; font-weight:650; }
h1 .task { font-size:13px; font-weight:600; color:#fff; background:var(--accent); border-radius:10px;
           padding:2px 9px; margin-left:8px; vertical-align:3px; }
h2 { font-size:16px; margin:0 0 10px; font-weight:650; }
h3 { font-size:14px; margin:14px 0 6px; }
.meta { color:var(--muted); display:flex; flex-wrap:wrap; gap:4px 18px; }
.meta b { color:var(--fg); font-weight:600; }
nav { display:flex; flex-wrap:wrap; gap:2px 14px; padding:8px 0 0; font-size:13px; }
nav a { color:var(--accent); text-decoration:none; }
nav a:hover { text-decoration:underline; }
.bar { height:6px; background:var(--line); border-radius:3px; overflow:hidden; width:160px;
       display:inline-block; vertical-align:middle; margin-left:6px; }
.bar i { display:block; height:100%; background:var(--accent); }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px;
          margin:14px 0; }
section.warn { background:var(--warn-bg); border-color:var(--warn-line); }
section.miss { background:var(--miss-bg); border-color:var(--miss-line); }
section.ok h2 { margin:0; font-weight:500; color:var(--muted); font-size:14px; }
section ul { margin:4px 0; padding-left:20px; }
.prominent { border:2px solid var(--accent); }
.muted, .note { color:var(--muted); }
.plots { display:grid; grid-template-columns:repeat(auto-fill, minmax(340px, 1fr)); gap:12px; }
figure.plot { margin:0; border:1px solid var(--line); border-radius:6px; padding:8px 8px 2px; }
figure.plot figcaption { font-size:13px; display:flex; flex-wrap:wrap; gap:2px 10px; align-items:baseline; }
figure.plot svg { width:100%; height:auto; display:block; }
.keys { display:flex; flex-wrap:wrap; gap:2px 10px; color:var(--muted); font-size:12px; }
.key i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; vertical-align:-1px; }
.key .last { color:var(--fg); font-variant-numeric:tabular-nums; }
svg .area { fill:#fff; stroke:#c9ced8; }
svg .grid { stroke:#eceff3; }
svg text { font-size:11px; fill:#5b6475; font-family:inherit; }
svg .ytick { text-anchor:end; } svg .xtick, svg .xlabel, svg .empty { text-anchor:middle; }
svg .note { fill:#a15c00; font-size:10px; }
svg .line { fill:none; stroke-width:1.6; stroke-linejoin:round; }
table { border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:4px 12px 4px 0; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:12px; }
td.num, th.num { text-align:right; white-space:nowrap; }
#compare-table td:first-child { white-space:nowrap; }
td.best { font-weight:700; }
.best-so-far { color:var(--muted); font-size:11px; }
.scroll { overflow-x:auto; }
code, pre, .mono { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
pre { background:#f3f5f8; border:1px solid var(--line); border-radius:6px; padding:10px; overflow:auto;
      max-height:520px; margin:6px 0; white-space:pre-wrap; word-break:break-word; }
pre .warn { background:var(--warn-bg); color:#7a4a00; display:inline-block; width:100%; }
details > summary { cursor:pointer; color:var(--accent); margin:4px 0; }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; margin:6px 0; }
dl.kv dt { color:var(--muted); } dl.kv dd { margin:0; word-break:break-word; }
img.pix { image-rendering:pixelated; max-width:100%; height:auto; border:1px solid var(--line); background:#fff; }
.slider { display:flex; align-items:center; gap:12px; margin:4px 0 10px; }
.slider input[type=range] { flex:1; max-width:640px; }
.slider button { font:inherit; padding:3px 12px; border:1px solid var(--line); border-radius:5px;
                 background:#fff; cursor:pointer; }
#step-label { font-variant-numeric:tabular-nums; min-width:150px; font-weight:600; }
.sw { display:inline-block; width:12px; height:12px; border-radius:2px; margin-right:6px; vertical-align:-1px; }
"""

# The samples slider: the frames live in a JSON block; moving the slider (or playing) swaps the
# <img>'s src among them. The last frame's URI is the <img>'s own src, not repeated in the JSON.
# An audio run's frames also carry their clips: `audio` (a data URI; the last frame's is the
# <audio>'s own src) or, when not embedded, `wav` (the file's name, shown instead of a player).
SCRIPT = """
(function () {
  var data = document.getElementById('frames');
  if (!data) return;
  var frames = JSON.parse(data.textContent);
  var slider = document.getElementById('step-slider');
  var img = document.getElementById('step-image');
  var label = document.getElementById('step-label');
  var play = document.getElementById('play');
  var audio = document.getElementById('step-audio');
  var away = document.getElementById('step-audio-note');
  frames[frames.length - 1].src = frames[frames.length - 1].src || img.getAttribute('src');
  if (audio) frames[frames.length - 1].audio = audio.getAttribute('src');
  function show(i) {
    var f = frames[i];
    img.setAttribute('src', f.src);
    label.textContent = 'step ' + f.step + ' (' + (i + 1) + ' of ' + frames.length + ')';
    if (!audio) return;
    if (f.audio) {
      if (audio.getAttribute('src') !== f.audio) { audio.pause(); audio.setAttribute('src', f.audio); }
      audio.hidden = false; away.hidden = true;
    } else {
      audio.pause(); audio.hidden = true; away.hidden = false;
      away.textContent = f.wav ? 'the clips of step ' + f.step + ' are not embedded (page size): ' + f.wav
                               : 'no clips were written at step ' + f.step;
    }
  }
  slider.addEventListener('input', function () { show(Number(slider.value)); });
  var timer = null;
  function stop() { clearInterval(timer); timer = null; play.textContent = '\\u25b6 play'; }
  play.addEventListener('click', function () {
    if (timer) { stop(); return; }
    if (Number(slider.value) >= frames.length - 1) slider.value = 0;
    play.textContent = '\\u275a\\u275a pause';
    show(Number(slider.value));
    timer = setInterval(function () {
      var i = Number(slider.value) + 1;
      if (i >= frames.length) { stop(); return; }
      slider.value = i; show(i);
    }, 400);
  });
})();
"""


def document(title: str, header: str, body: str) -> str:
    """The whole page: `header` and `body` are HTML already escaped by their makers."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="gankit.report"><title>{escape(title)}</title>'
            f'<style>{CSS}</style></head><body><header class="top"><div class="in">{header}</div></header>'
            f'<main>{body}</main><script>{SCRIPT}</script></body></html>\n')


def json_script(element_id: str, value: object) -> str:
    """`value` as a JSON data block; "</" is escaped so no string in it can end the element."""
    text = json.dumps(value, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


# -- images ---------------------------------------------------------------------------------------

_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".wav": "audio/wav"}


def data_uri(data: bytes, suffix: str) -> str:
    return f"data:{_MIME.get(suffix.lower(), 'application/octet-stream')};base64,{base64.b64encode(data).decode()}"


def image_width(data: bytes) -> int | None:
    """Pixel width from a PNG or GIF header (None for anything else), without decoding the image."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">I", data[16:20])[0]
    if data[:4] == b"GIF8" and len(data) >= 10:
        return struct.unpack("<H", data[6:8])[0]
    return None


def img_tag(path: Path, alt: str, element_id: str = "", target: int = 560) -> str:
    """An <img> of `path` inline. Small images (28-pixel digits) are shown enlarged by a whole
    factor, pixelated, up to about `target` pixels wide."""
    data = path.read_bytes()
    w = image_width(data)
    size = f' width="{w * max(1, min(4, target // w))}"' if w else ""
    ident = f' id="{element_id}"' if element_id else ""
    return f'<img class="pix"{ident}{size} alt="{escape(alt)}" src="{data_uri(data, path.suffix)}">'


# -- numbers and metrics ----------------------------------------------------------------------------

def num(v: object) -> str:
    """A table cell's number: integers as they are, floats to 4 significant digits."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return escape(str(v))
    if isinstance(v, int):
        return str(v)
    return f"{v:.4g}"


def size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


LOWER_BETTER = ("fid", "kid", "lpips", "kl", "class_kl", "stacked_kl", "mse", "mae", "l1")
HIGHER_BETTER = ("is", "psnr", "ssim", "label_acc", "acc", "precision", "recall", "density", "coverage",
                 "stacked_modes")


def better(metric: str) -> str | None:
    """"lower" or "higher" for the metrics whose direction is known (by the name's last part:
    "box/psnr" is a PSNR), None for the others (a spread, a baseline, an unknown scalar)."""
    name = metric.rsplit("/", 1)[-1]
    if name.endswith(("_std", "_bicubic")):
        return None
    if name in LOWER_BETTER:
        return "lower"
    if name in HIGHER_BETTER or name.startswith(("psnr", "ssim")):
        return "higher"
    return None
