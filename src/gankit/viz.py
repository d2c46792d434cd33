"""Pictures: sample grids, toy-data scatter plots, loss plots, and the training animation.

Plots use matplotlib's object API (`Figure`), never pyplot, so nothing depends on a display or on
global state. Every file appears whole or not at all (`gankit.disk.atomic`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from gankit import disk

# The longest side of a grid written during training, shown in the report or served: larger cells
# are shrunk to fit (64 samples at 1024 px would be an 8,194 px PNG of ~100 MB; the report shows
# ~500 px). Full-size samples come from `gankit sample`, which writes its grids uncapped.
GRID_MAX_SIDE = 2048


def fit_cells(images: torch.Tensor, nrow: int, pad: int, max_side: int) -> torch.Tensor:
    """uint8 (N, C, H, W) shrunk by one factor (box filter: each output pixel the mean of the input
    pixels it covers) so that a grid of `nrow` per row has no side above `max_side`; unchanged when
    it fits already."""
    n, _, h, w = images.shape
    rows = math.ceil(n / nrow)
    # the largest cell that fits: nrow * (cell + pad) + pad <= max_side, and rows likewise
    f = min(((max_side - pad) // nrow - pad) / w, ((max_side - pad) // rows - pad) / h)
    if f >= 1:
        return images
    size = (max(1, int(h * f)), max(1, int(w * f)))  # one factor for both sides: the aspect kept
    small = torch.nn.functional.interpolate(images.float(), size=size, mode="area")  # (N, C, h', w')
    return small.round().clamp(0, 255).to(torch.uint8)


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2,
              max_side: int | None = None) -> np.ndarray:
    """uint8 (N, C, H, W) -> one uint8 (H', W', C) image, `nrow` images per row (default: square);
    with `max_side`, cells shrunk so that no side of the grid is longer (`fit_cells`)."""
    x = images.detach().cpu()
    n = x.shape[0]
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    if max_side is not None:
        x = fit_cells(x, nrow, pad, max_side)
    _, c, h, w = x.shape
    rows = math.ceil(n / nrow)
    grid = torch.zeros((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid.permute(1, 2, 0).numpy()


def text_image(lines: list[str], width_chars: int = 72, size: int = 14) -> torch.Tensor:
    """uint8 (3, H, W): `lines` drawn black on white, one per row (longer ones cut with an
    ellipsis), in Pillow's bundled font: how a text run's samples appear in grids and reports."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    step = size + 6
    shown = [ln if len(ln) <= width_chars else ln[:width_chars - 1] + "\u2026" for ln in lines] or [""]
    w = int(max(font.getlength("M" * width_chars), 64)) + 16
    im = Image.new("RGB", (w, step * len(shown) + 12), "white")
    draw = ImageDraw.Draw(im)
    for i, ln in enumerate(shown):
        draw.text((8, 6 + i * step), ln, fill=(20, 20, 20), font=font)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)


def save_image(array: np.ndarray, path: str | Path, upscale: int = 1) -> Path:
    """Save an (H, W, C) uint8 array as PNG; `upscale` enlarges small images (nearest neighbour)."""
    a = array[..., 0] if array.shape[-1] == 1 else array
    im = Image.fromarray(a)
    if upscale > 1:
        im = im.resize((im.width * upscale, im.height * upscale), Image.NEAREST)
    path = Path(path)
    with disk.atomic(path) as tmp:
        im.save(tmp)  # the format by the suffix, which tmp keeps
    return path


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None,
              max_side: int | None = GRID_MAX_SIDE) -> Path:
    """The grid of uint8 (N, C, H, W) `images` as a PNG, no side above `max_side` (None: full size)."""
    grid = make_grid(images, nrow, max_side=max_side)
    upscale = max(1, 512 // max(grid.shape[:2]))  # small grids (MNIST) are hard to see at 1:1
    return save_image(grid, path, upscale=min(upscale, 4))


def save_scatter(points: torch.Tensor, path: str | Path, real: torch.Tensor | None = None,
                 title: str = "") -> Path:
    """2-D samples over (optionally) real points, for the toy distributions."""
    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if real is not None:
        r = real.detach().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=2, c="0.75", label="real")
    p = points.detach().cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=2, c="tab:blue", label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    ax.set_title(title)
    fig.tight_layout()
    return _savefig(fig, path)


def plot_losses(metrics_path: str | Path, out: str | Path) -> Path | None:
    """loss.png: losses, D(x) and D(G(z)), D's accuracy on real and fake (and ADA's p and r_t), against step."""
    rows = [r for r in read_jsonl(metrics_path) if not r.get("eval")]
    if not rows:
        return None
    step = [r["step"] for r in rows]
    fig = Figure(figsize=(9, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.plot(step, [r.get("loss_d", float("nan")) for r in rows], label="loss_D")
    ax1.plot(step, [r.get("loss_g", float("nan")) for r in rows], label="loss_G")  # absent in D-only phases
    for key, label in (("l1", "L1 (G vs target)"), ("cycle", "cycle L1"), ("nll", "NLL (nats/token)")):
        if any(key in r for r in rows):  # translation runs; text runs' MLE phase
            ax1.plot(step, [r.get(key, float("nan")) for r in rows], label=label, linestyle=":")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    for key, label in (("acc_real", "D accuracy on real"), ("acc_fake", "D accuracy on fake"),
                       ("d_real", "D(x)"), ("d_fake", "D(G(z))"),
                       ("ada_p", "ADA p"), ("ada_rt", "ADA r_t (target 0.6)")):  # ADA runs: p and its heuristic
        if not any(key in r for r in rows):
            continue
        style = "--" if key.startswith("d_") else ":" if key.startswith("ada_") else "-"
        ax2.plot(step, [r.get(key, float("nan")) for r in rows], label=label, linestyle=style)
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_xlabel("step")
    if ax2.lines:  # tasks without a D in some phases log no D scalars there
        ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return _savefig(fig, out)


EVAL_PLOTS = (("fid", "FID (lower is better)"), ("kid", "KID"), ("is", "classifier IS"),
              ("precision", "precision"), ("recall", "recall"), ("density", "density"),
              ("coverage", "coverage"), ("class_kl", "class KL"), ("stacked_modes", "stacked modes"),
              ("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("nll", "held-out NLL (nats/token)"),
              ("bleu4", "BLEU-4"), ("self_bleu4", "self-BLEU-4"), ("valid", "valid SMILES"), ("label_acc", "label accuracy"),
              ("fid_ab", "FID A->B"), ("fid_ba", "FID B->A"), ("label_acc_ab", "label accuracy A->B"),
              ("label_acc_ba", "label accuracy B->A"), ("psnr_y", "PSNR on Y (dB)"), ("ssim_y", "SSIM on Y"))


def plot_metrics(metrics_path: str | Path, out: str | Path) -> Path | None:
    """metrics.png: each evaluation metric against step, one panel each."""
    rows = [r for r in read_jsonl(metrics_path) if r.get("eval")]
    keys = [(k, t) for k, t in EVAL_PLOTS if any(k in r for r in rows)]
    if not keys:
        return None
    fig = Figure(figsize=(5 * min(3, len(keys)), 3.2 * math.ceil(len(keys) / 3)), dpi=100)
    FigureCanvasAgg(fig)
    for i, (k, title) in enumerate(keys):
        ax = fig.add_subplot(math.ceil(len(keys) / 3), min(3, len(keys)), i + 1)
        pts = [(r["step"], r[k]) for r in rows if k in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _savefig(fig, out)


def make_gif(frames: list[Path], out: str | Path, ms_per_frame: int = 300) -> Path | None:
    """Assemble PNG frames (in order) into an animated GIF that holds on the last frame."""
    if not frames:
        return None
    ims = [Image.open(p).convert("RGB") for p in frames]
    durations = [ms_per_frame] * (len(ims) - 1) + [2000]
    with disk.atomic(out) as tmp:
        ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=durations, loop=0)
    return Path(out)


def _savefig(fig: Figure, path: str | Path) -> Path:
    """`fig` at `path`, whole or not at all; the format by the suffix (PNG without one)."""
    path = Path(path)
    with disk.atomic(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:].lower() or "png")
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash; the rest is still good
    return rows
