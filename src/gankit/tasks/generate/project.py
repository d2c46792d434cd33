"""Projection of a real image into a generation run's latent space (`gankit project`): the StyleGAN2
projector (Karras et al. 2020, "Analyzing and improving the image quality of StyleGAN", section 5),
on every generator gankit trains, through the search core it shares with repair by inversion
(`gankit.tasks.generate.search`: the latent spaces, restarts and the projector's schedule).

    x_hat, latent, info = project_image(run, x)          uint8 (C, H, W) in, reconstruction out
    project_file(run, "digit.png", "proj/")              projected.png, target.png, latent.npz, project.json

The loss, per image, with x the target and G(v) the reconstruction, both in [-1, 1]:

    pixel    = mean (G(v) - x)^2                          MSE over pixels and channels: what PSNR scores
    features = sum over the feature net's 3 stages l of   LPIPS' form (activations unit-normalised over
               mean_hw |n(f_l(G(v))) - n(f_l(x))|^2        channels, squared distance, spatial mean) with
                                                           equal weights instead of learned ones
    loss     = pixel + feature_weight * features

The paper uses LPIPS on VGG16 features, whose weights cannot be fetched offline. The features term
uses gankit's bundled MNIST classifier (`gankit.metrics.featurenet`), so it is on by default
(`FEATURE_WEIGHT`) only for 1-channel images of at least 16 px, the net's input; otherwise, and with
feature_weight 0, the loss is the pixels alone.

Defaults: the paper's 1000 steps at peak lr 0.1 and its schedule (lr warm-up over 5% of the steps,
cosine decay over the last 25%, noise on the latent decaying to 0 by 75%). Spaces: w for a stylegan2
run (one w for every style input, starting at w_avg: one restart), z for every other generator
(there is no mean image to start from, so 4 restarts from the prior, the best kept).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from gankit.data import from_model, to_model
from gankit.errors import GankitError, warn
from gankit.media.apply import AtomicDir
from gankit.media.images import conform, read_image, write_image
from gankit.tasks.generate.search import SPACES, LatentSpace, search, stylegan2_schedule

# The features term's default weight (1-channel runs). On two MNIST test digits with a trained
# dcgan run, 300 steps: PSNR 27.7 / 20.2 dB with pixels alone, 29.0 / 21.9 at 0.1, 28.9 / 20.0 at
# 0.3, 26.6 / 19.1 at 1 (a small trial: the term helps the search out of poor basins, then the
# pixels decide).
FEATURE_WEIGHT = 0.1
Z_RESTARTS = 4  # default restarts in z (in w: 1, from w_avg, as the paper)
CURVE_POINTS = 100  # project.json keeps the loss curve at most this many points


@dataclass(frozen=True)
class ProjectSettings:
    steps: int = 1000  # the paper's
    lr: float = 0.1  # the paper's peak learning rate
    restarts: int | None = None  # None: 1 in w / w+, Z_RESTARTS in z
    space: str = "auto"  # auto: w for a stylegan2 run, z otherwise; or z, w, w+
    feature_weight: float | None = None  # None: FEATURE_WEIGHT on 1-channel images >= 16 px, else 0
    seed: int = 0  # starting latents and the search noise

    def check(self) -> None:
        if self.steps < 1:
            raise GankitError(f"--steps {self.steps}: expected a number of steps >= 1")
        if self.restarts is not None and self.restarts < 1:
            raise GankitError(f"--restarts {self.restarts}: expected a number of restarts >= 1")
        if not self.lr > 0:
            raise GankitError(f"--lr {self.lr:g}: expected a learning rate > 0")
        if self.space not in ("auto", *SPACES):
            raise GankitError(f"--space {self.space!r}: choose one of auto, {', '.join(SPACES)}")
        if self.feature_weight is not None and not self.feature_weight >= 0:
            raise GankitError(f"--feature-weight {self.feature_weight:g}: expected a weight >= 0 (0: pixels only)")


class _Features(nn.Module):
    """The feature network's activations at the end of each of its 3 stages, unit-normalised over
    channels: [(B, c_l, H_l, W_l)] for images in [-1, 1]."""

    def __init__(self, device: torch.device):
        super().__init__()
        from gankit.metrics.featurenet import bundled_featurenet_path, load_featurenet

        self.net = load_featurenet(bundled_featurenet_path())[0].to(device).eval()
        self.name = bundled_featurenet_path().name

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for layer in self.net.body:
            if isinstance(layer, (nn.MaxPool2d, nn.AdaptiveAvgPool2d)):  # a stage ends before each pool
                out.append(x * torch.rsqrt(x.square().sum(1, keepdim=True) + 1e-10))
            if isinstance(layer, nn.AdaptiveAvgPool2d):
                break
            x = layer(x)
        return out


def check_projectable(run, label: int | None) -> None:
    """Refuse, in one line, a run (or class choice) that projection cannot work with."""
    run.need("generate", "gankit project")
    if run.data_meta.get("kind") != "image":
        raise GankitError(f"{run.dir}: a 2-D toy run; projection fits images")
    if run.conditional and label is None:
        names = ", ".join((run.data_meta.get("classes") or [])[:20])
        raise GankitError(f"{run.dir}: a conditional run; projection needs the image's class: pass --class K "
                          f"(0..{run.n_classes - 1}: {names})")
    run.labels(1, label)  # an unconditional run given a class, or a class out of range: one line


def fit_image(img: np.ndarray, shape: tuple[int, int, int], resize: bool, where: str,
              log: Callable[[str], None] = warn) -> Tensor:
    """uint8 (H, W, C) -> uint8 (C, H, W) of the run's `shape`: refused if it differs, unless
    `resize` (then converted and resized as `gankit.media.images.conform` does, with one line saying so)."""
    c, h, w = shape
    h0, w0, c0 = img.shape
    if (c0, h0, w0) != (c, h, w) and not resize:
        def kind(n: int) -> str:
            return "grey" if n == 1 else "RGB"

        raise GankitError(f"{where} is {w0}x{h0} {kind(c0)}; this run generates {w}x{h} {kind(c)}: "
                          "pass --resize to fit it")
    x, note = conform(img, shape, False, where)
    if note is not None:
        log(note)
    return torch.from_numpy(np.array(x))


def project_image(run, x: Tensor, s: ProjectSettings = ProjectSettings(), label: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> tuple[Tensor, dict[str, np.ndarray], dict]:
    """Project uint8 (C, H, W) `x` (the run's image shape): (uint8 (C, H, W) reconstruction,
    latent arrays for latent.npz, info: the space, losses and PSNR; see the module docstring)."""
    check_projectable(run, label)
    s.check()
    shape = tuple(run.data_meta["shape"])
    if x.dtype != torch.uint8 or tuple(x.shape) != shape:
        raise GankitError(f"projection takes a uint8 image of the run's shape {shape} (C, H, W); got {x.dtype} "
                          f"{tuple(x.shape)}")
    dev = run.device
    space_kind = ("w" if run.styles else "z") if s.space == "auto" else s.space
    R = s.restarts or (Z_RESTARTS if space_kind == "z" else 1)
    y = None if label is None else torch.full((R,), label)
    space = LatentSpace(run, space_kind, y)
    c, h, w = shape
    fw = s.feature_weight if s.feature_weight is not None else (FEATURE_WEIGHT if c == 1 and min(h, w) >= 16 else 0.0)
    if fw > 0 and (c != 1 or min(h, w) < 16):
        raise GankitError(f"--feature-weight {fw:g}: the features term uses the bundled MNIST network, which "
                          f"reads 1-channel images of >= 16 px; this run makes {w}x{h} with {c} channels: use 0")
    target = to_model(x[None].to(dev), "image")  # (1, C, H, W) in [-1, 1]
    feats = _Features(dev) if fw > 0 else None
    with torch.no_grad():
        target_f = feats(target) if feats is not None else []

    def loss(img: Tensor) -> Tensor:  # (R,): the restart is picked by the loss it optimises
        total = (img - target).pow(2).mean((1, 2, 3))
        if feats is not None:
            for a, b in zip(feats(img), target_f):
                total = total + fw * (a - b).pow(2).sum(1).mean((1, 2))
        return total

    found = search(space, lambda img, v: loss(img), loss, 1, R, s.steps, stylegan2_schedule(s.lr), s.seed,
                   frozen_too=(feats,), progress=progress)
    recon = from_model(found.images[0], "image").cpu()  # (C, H, W) uint8
    mse = float((recon.double() - x.double()).pow(2).mean())
    psnr = 10 * math.log10(255.0 ** 2 / max(mse, 1e-10))  # identical images: capped at 148 dB
    best = int(found.best[0])
    curve = found.curve[:, 0].cpu()
    every = max(1, math.ceil(len(curve) / CURVE_POINTS))
    v = found.latent[0].cpu().numpy().astype(np.float32)
    key = {"z": "z", "w": "w", "w+": "ws"}[space_kind]
    latent = {key: v, "space": np.array(space_kind)}
    if label is not None:
        latent["label"] = np.array(label, dtype=np.int64)
    info = {
        "space": space_kind, "steps": s.steps, "restarts": R, "chosen_restart": best, "lr": s.lr, "seed": s.seed,
        "schedule": "StyleGAN2 projector: lr warm-up 5% of the steps, cosine decay over the last 25%, "
                    "noise on the latent 0.05 x its spread decaying quadratically to 0 at 75%",
        "noise_inputs": "const (not optimised)" if run.styles else None,
        "loss": {"pixel": "mean squared error in [-1, 1]", "feature_weight": fw,
                 "features": None if feats is None else f"{feats.name}: 3 stages, unit-normalised, squared distance"},
        "loss_start": float(found.start[0, best]), "loss_end": float(found.end[0, best]),
        "loss_curve": [round(float(c_), 6) for c_ in curve[::every]], "loss_curve_every": every,
        "psnr": round(psnr, 4), "label": label,
    }
    return recon, latent, info


def check_out(out: str | Path, overwrite: bool) -> Path:
    """Refuse an existing non-empty output folder (before any work) unless `overwrite`."""
    out = Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise GankitError(f"--out {out}: already exists; choose a new folder, remove it, or pass --overwrite")
    return out


def project_file(run, image: str | Path, out: str | Path, s: ProjectSettings = ProjectSettings(),
                 label: int | None = None, resize: bool = False, overwrite: bool = False,
                 command: str | None = None, log: Callable[[str], None] = warn) -> dict:
    """Project the image file `image` and write `out`/ (whole or not at all): projected.png (the
    reconstruction), target.png (the target as fitted), latent.npz (z, w or ws, its `space`, and
    `label`), project.json (run, step, settings, losses, PSNR). Returns the record plus `out`."""
    from gankit.version import __version__

    check_projectable(run, label)
    s.check()
    out = check_out(out, overwrite)
    image = Path(image)
    x = fit_image(read_image(image), tuple(run.data_meta["shape"]), resize, str(image), log)
    recon, latent, info = project_image(run, x, s, label)
    record = {"run": str(run.dir), "checkpoint": None if run.checkpoint is None else str(run.checkpoint),
              "step": run.step, "preset": run.config.preset, "arch": run.config.model.arch, "ema": run.ema,
              "image": str(image), **info, "gankit_version": __version__, "command": command}

    def hwc(t: Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.permute(1, 2, 0).numpy())

    with AtomicDir(out, overwrite=overwrite) as tmp:
        write_image(hwc(recon), tmp / "projected.png")
        write_image(hwc(x), tmp / "target.png")
        with open(tmp / "latent.npz", "wb") as f:
            np.savez(f, **latent)
        (tmp / "project.json").write_text(json.dumps(record, indent=2) + "\n")
    return {**record, "out": str(out)}
