"""The generation task's `gankit serve` panels: a sample grid (or a 2-D scatter), a latent walk,
InfoGAN code sliders, and repair by inversion for unconditional runs.
Found by `gankit serve` through the registry (`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

import numpy as np
import torch

from gankit.apps.serve.models import (
    INVERT_RESTARTS, INVERT_STEPS, MAX_POINTS, MAX_SEED, chw, Field, Float, Floats, hole_mask, hwc,
    Int, Panel, Result, stem,
)
from gankit.run import Run
from gankit.tasks.generate.sampling import slerp
from gankit.viz import GRID_MAX_SIDE, make_grid


def sample_grid(run: Run, p: dict, images: dict) -> Result:
    x = run.sample(p["n"], p["seed"], p.get("class"))  # uint8 (n, C, H, W)
    label = "" if p.get("class") is None else f"-class{p['class']}"
    return Result(make_grid(x, max_side=GRID_MAX_SIDE), f"{stem(run)}-seed{p['seed']}{label}-n{p['n']}.png")


def sample_points(run: Run, p: dict, images: dict) -> Result:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pts = run.sample(p["n"], p["seed"]).numpy()  # float (n, 2)
    fig = Figure(figsize=(5, 5), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(pts[:, 0], pts[:, 1], s=3, c="tab:blue")
    ax.set_aspect("equal")
    ax.set_title(f"{p['n']} generated points, seed {p['seed']}")
    fig.tight_layout()
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[:, :, :3].copy()  # (500, 500, 3)
    return Result(rgb, f"{stem(run)}-seed{p['seed']}-n{p['n']}-points.png")


def _label(run: Run, p: dict, seed: int) -> torch.Tensor | None:
    # "any" class: the one `seed` draws, so a walk or a code sweep keeps one class throughout
    return run.labels(1, p.get("class"), seed) if run.conditional else None


def interpolate_latent(run: Run, p: dict, images: dict) -> Result:
    a, b = run.latents(1, p["seed_a"]), run.latents(1, p["seed_b"])  # (1, in_dim)
    z = slerp(a, b, torch.tensor([[p["t"]]], device=a.device))  # as Sampling.interpolate walks
    x = run.generate(z, _label(run, p, p["seed_a"]))
    return Result(hwc(x[0]), f"{stem(run)}-seed{p['seed_a']}-to-{p['seed_b']}-t{p['t']:.2f}.png")


def infogan_codes(run: Run, p: dict, images: dict) -> Result:
    m = run.config.model
    z = run.latents(1, p["seed"], p["cat"] if m.info_cat else None)  # [z, one_hot(cat), cont]
    if m.info_cont:
        z[:, -m.info_cont:] = torch.tensor([p["cont"]], dtype=z.dtype, device=z.device)
    x = run.generate(z, _label(run, p, p["seed"]))
    cont = "_".join(f"{c:+.2f}" for c in p.get("cont", []))
    return Result(hwc(x[0]), f"{stem(run)}-seed{p['seed']}-cat{p.get('cat', 0)}-cont{cont}.png")


def repair_invert(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.generate.invert import InvertSettings
    from gankit.tasks.inpaint.infer import repair_images

    notes: list[str] = []
    x = chw(images["image"], tuple(run.data_meta["shape"]), notes)  # inversion needs G's size
    hole = hole_mask(images["mask"], tuple(x.shape[1:]), notes)
    prior = "d" if "D" in run.nets else "norm"  # an exported generator has no D
    settings = InvertSettings(restarts=p["restarts"], steps=p["steps"], prior=prior)
    with torch.enable_grad():  # inversion is a gradient search over z (the app turns gradients off)
        y, _ = repair_images(run, x[None], hole[None], "invert", settings)
    return Result(hwc(y[0]), f"{stem(run)}-repaired.png", notes)


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    m = run.config.model
    seed = Int(0, MAX_SEED, 0)
    if run.data_meta.get("kind") == "points":
        return {"sample": Panel("Sample", "a 2-D toy run: sampling shows a scatter of generated points",
                                {"n": Int(1, MAX_POINTS, min(1000, MAX_POINTS)), "seed": seed}, sample_points)}
    cls = {"class": Int(0, run.n_classes - 1, None)} if run.conditional else {}  # None: any class
    panels = {
        "sample": Panel("Sample", "a grid of new samples; the same seed gives the same grid",
                        {"n": Int(1, max_samples, min(16, max_samples)), "seed": seed, **cls}, sample_grid),
        "interp": Panel("Interpolate", "a walk (spherical) from seed A's latent to seed B's"
                        + (", in one class" if run.conditional else ""),
                        {"seed_a": Int(0, MAX_SEED, 0), "seed_b": Int(0, MAX_SEED, 1), "t": Float(0.0, 1.0, 0.5),
                         **cls}, interpolate_latent),
    }
    if m.info_cat or m.info_cont:
        codes: dict[str, Field] = {"seed": seed}
        if m.info_cat:
            codes["cat"] = Int(0, m.info_cat - 1, 0)
        if m.info_cont:
            codes["cont"] = Floats(m.info_cont, -1.0, 1.0)
        panels["codes"] = Panel("InfoGAN codes", f"one sample with its codes set: {m.info_cat}-way categorical, "
                                f"{m.info_cont} continuous in [-1, 1]", {**codes, **cls}, infogan_codes)
    if not run.conditional:  # inversion needs an unconditional generator
        c, h, w = run.data_meta["shape"]
        panels["repair"] = Panel(
            "Repair (inversion)", f"upload an image and paint its hole; it is fitted to {w}x{h} and the hole is "
            "filled from the generator's best matching sample (Yeh et al. 2017)",
            {"steps": Int(1, 1000, INVERT_STEPS), "restarts": Int(1, 16, INVERT_RESTARTS)}, repair_invert,
            uploads=("image", "mask"), extra={"mask": True, "shape": [c, h, w]})
    return panels
