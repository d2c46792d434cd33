"""What a `gankit serve` page can do with a loaded run, task by task: its panels.

A panel is one action on the page (sample a grid, walk between two latents, set InfoGAN codes,
run an uploaded image through the model). It declares the fields it accepts, each with its range
(so the app refuses a bad request in one line and the page sets its inputs' limits), the images
it takes, and a handler `(run, params, images) -> Result`. `PAGES` maps a task name to the
function that lists a run's panels; a task missing from it has no page.

Handlers get fields already checked and images already decoded (uint8 (H, W, C) arrays, at most
`MAX_PIXELS` each); the app runs them one at a time, with gradients off
(`gankit.apps.serve.app`). They stay in storage form (uint8) throughout, as the CLI commands do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from gankit.errors import GankitError
from gankit.media import NoteOnce, conform
from gankit.run import Run, slerp
from gankit.viz import make_grid

MAX_SEED = 2**31 - 1  # seeds the page's number boxes hold exactly
MAX_PIXELS = 4096 * 4096  # per uploaded image, and per super-resolved output
MAX_POINTS = 10_000  # a 2-D toy run's scatter
INVERT_STEPS, INVERT_RESTARTS = 100, 4  # the page's defaults: ~3 s on a CPU for MNIST (the CLI: 300, 8)


# -- the fields a panel accepts ----------------------------------------------------------------
# `parse(name, value, form)`: JSON values must have the right type; form values (uploads' forms)
# are text and are converted. A default of None means the field may be null or absent.


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int
    default: int | None

    def parse(self, name: str, v: object, form: bool = False) -> int | None:
        want = f"expected a whole number {self.lo}..{self.hi}"
        if v is None or (form and v == ""):
            if self.default is None:
                return None
            raise GankitError(f"{name}: null; {want}")
        if form:
            try:
                v = int(str(v))
            except ValueError:
                raise GankitError(f"{name}: {v!r} is not a whole number; {want}") from None
        if isinstance(v, bool) or not isinstance(v, int):
            raise GankitError(f"{name}: {v!r} is not a whole number; {want}")
        if not self.lo <= v <= self.hi:
            raise GankitError(f"{name}: {v} is out of range; {want}")
        return v

    def describe(self) -> dict:
        return {"type": "int", "min": self.lo, "max": self.hi, "default": self.default}


@dataclass(frozen=True)
class Float:
    lo: float
    hi: float
    default: float

    def parse(self, name: str, v: object, form: bool = False) -> float:
        want = f"expected a number in [{self.lo:g}, {self.hi:g}]"
        if form and isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise GankitError(f"{name}: {v!r} is not a number; {want}") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise GankitError(f"{name}: {v!r} is not a number; {want}")
        if not self.lo <= v <= self.hi:
            raise GankitError(f"{name}: {v:g} is out of range; {want}")
        return float(v)

    def describe(self) -> dict:
        return {"type": "float", "min": self.lo, "max": self.hi, "default": self.default}


@dataclass(frozen=True)
class Floats:
    n: int
    lo: float
    hi: float

    def parse(self, name: str, v: object, form: bool = False) -> list[float]:
        want = f"expected a list of {self.n} numbers in [{self.lo:g}, {self.hi:g}]"
        if not isinstance(v, list) or len(v) != self.n:
            raise GankitError(f"{name}: {v!r}; {want}")
        item = Float(self.lo, self.hi, 0.0)
        return [item.parse(f"{name}[{i}]", x) for i, x in enumerate(v)]

    @property
    def default(self) -> list[float]:
        return [0.0] * self.n

    def describe(self) -> dict:
        return {"type": "floats", "n": self.n, "min": self.lo, "max": self.hi, "default": self.default}


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]
    default: str

    def parse(self, name: str, v: object, form: bool = False) -> str:
        if v not in self.values:
            raise GankitError(f"{name}: {v!r}; choose one of: {', '.join(self.values)}")
        return v  # type: ignore[return-value]

    def describe(self) -> dict:
        return {"type": "choice", "values": list(self.values), "default": self.default}


@dataclass(frozen=True)
class Str:
    max_len: int
    default: str = ""

    def parse(self, name: str, v: object, form: bool = False) -> str:
        if v is None:
            return self.default
        if not isinstance(v, str):
            raise GankitError(f"{name}: {v!r} is not text; expected a string of at most {self.max_len} characters")
        if len(v) > self.max_len:
            raise GankitError(f"{name}: {len(v)} characters; at most {self.max_len} accepted")
        return v

    def describe(self) -> dict:
        return {"type": "str", "max_len": self.max_len, "default": self.default}


Field = Int | Float | Floats | Choice | Str


# -- panels -------------------------------------------------------------------------------------


@dataclass
class Result:
    image: np.ndarray | None  # uint8 (H, W, C), C = 1 or 3; None for a text answer
    filename: str  # what the page's download link saves it as (the image, the WAV, or the .txt)
    notes: list[str] = field(default_factory=list)  # conversions made on the way (resized, ...)
    audio: bytes | None = None  # a WAV file: an audio run's clips, played by the page
    text: list[str] | None = None  # a text run's lines


Handler = Callable[[Run, dict, dict[str, np.ndarray]], Result]


@dataclass(frozen=True)
class Panel:
    title: str
    about: str  # one line the page shows above the panel
    fields: dict[str, Field]
    handler: Handler
    uploads: tuple[str, ...] = ()  # image uploads, all required; () takes a JSON body
    extra: dict = field(default_factory=dict)  # what the page needs to draw it (shapes, scale, ...)

    def describe(self, name: str) -> dict:
        return {"name": name, "title": self.title, "about": self.about, "uploads": list(self.uploads),
                "fields": {k: f.describe() for k, f in self.fields.items()}, **self.extra}


def _stem(run: Run) -> str:
    return f"{run.config.preset or run.task}-step{run.step}"


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)


def _chw(img: np.ndarray, shape: tuple[int, int, int], notes: list[str], where: str = "upload") -> torch.Tensor:
    """An upload as the run takes it: uint8 (C, H, W) = shape, resized/converted with a note."""
    x, note = conform(img, shape, False, where)
    if note:
        notes.append(note)
    return torch.from_numpy(np.array(x))


def _hole(mask: np.ndarray, size: tuple[int, int], notes: list[str]) -> torch.Tensor:
    """bool (1, H, W), True = missing: the painted mask (white = hole), fitted to `size`."""
    grey = mask.astype(np.float32).mean(2)  # (h, w)
    hole = grey >= 128
    if hole.shape != size:  # the page paints at the upload's size; inversion works at G's
        h, w = size
        img = Image.fromarray(hole.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)
        notes.append(f"mask: resized {hole.shape[1]}x{hole.shape[0]} to {w}x{h} with the image")
        hole = np.asarray(img) >= 128
    if not hole.any():
        raise GankitError("mask: no hole painted; paint the missing part (white) on the image first")
    if hole.all():
        raise GankitError("mask: covers the whole image; leave some known pixels to repair from")
    return torch.from_numpy(hole)[None]


# -- generate: sampling, latent walks, InfoGAN codes, repair by inversion ------------------------


def sample_grid(run: Run, p: dict, images: dict) -> Result:
    x = run.sample(p["n"], p["seed"], p.get("class"))  # uint8 (n, C, H, W)
    label = "" if p.get("class") is None else f"-class{p['class']}"
    return Result(make_grid(x), f"{_stem(run)}-seed{p['seed']}{label}-n{p['n']}.png")


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
    return Result(rgb, f"{_stem(run)}-seed{p['seed']}-n{p['n']}-points.png")


def _label(run: Run, p: dict, seed: int) -> torch.Tensor | None:
    # "any" class: the one `seed` draws, so a walk or a code sweep keeps one class throughout
    return run.labels(1, p.get("class"), seed) if run.conditional else None


def interpolate_latent(run: Run, p: dict, images: dict) -> Result:
    a, b = run.latents(1, p["seed_a"]), run.latents(1, p["seed_b"])  # (1, in_dim)
    z = slerp(a, b, torch.tensor([[p["t"]]], device=a.device))  # as Run.interpolate walks
    x = run.generate(z, _label(run, p, p["seed_a"]))
    return Result(_hwc(x[0]), f"{_stem(run)}-seed{p['seed_a']}-to-{p['seed_b']}-t{p['t']:.2f}.png")


def infogan_codes(run: Run, p: dict, images: dict) -> Result:
    m = run.config.model
    z = run.latents(1, p["seed"], p["cat"] if m.info_cat else None)  # [z, one_hot(cat), cont]
    if m.info_cont:
        z[:, -m.info_cont:] = torch.tensor([p["cont"]], dtype=z.dtype, device=z.device)
    x = run.generate(z, _label(run, p, p["seed"]))
    cont = "_".join(f"{c:+.2f}" for c in p.get("cont", []))
    return Result(_hwc(x[0]), f"{_stem(run)}-seed{p['seed']}-cat{p.get('cat', 0)}-cont{cont}.png")


def repair_invert(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.generate.invert import InvertSettings
    from gankit.tasks.inpaint.infer import repair_images

    notes: list[str] = []
    x = _chw(images["image"], tuple(run.data_meta["shape"]), notes)  # inversion needs G's size
    hole = _hole(images["mask"], tuple(x.shape[1:]), notes)
    prior = "d" if "D" in run.nets else "norm"  # an exported generator has no D
    settings = InvertSettings(restarts=p["restarts"], steps=p["steps"], prior=prior)
    with torch.enable_grad():  # inversion is a gradient search over z (the app turns gradients off)
        y, _ = repair_images(run, x[None], hole[None], "invert", settings)
    return Result(_hwc(y[0]), f"{_stem(run)}-repaired.png", notes)


def generate_panels(run: Run, max_samples: int) -> dict[str, Panel]:
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


# -- translate, superres, inpaint, interpolate: uploads ------------------------------------------


def translate(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.translate.infer import generator, translate_images

    notes: list[str] = []
    _, shape, direction = generator(run, p["direction"])
    x = _chw(images["image"], shape, notes)  # resized/converted to what G was trained on
    y = translate_images(run, x[None], direction)[0]
    return Result(_hwc(y), f"{_stem(run)}-{direction}.png", notes)


def translate_panels(run: Run, max_samples: int) -> dict[str, Panel]:
    from gankit.tasks.translate.infer import DIRECTIONS, generator

    t = run.config.translate
    directions = DIRECTIONS if t.method == "cyclegan" else (t.direction,)
    shapes = {d: list(generator(run, d)[1]) for d in directions}
    return {"translate": Panel(
        "Translate", f"{t.method}: an uploaded image, resized to the size the run was trained on, translated "
        + " or ".join(directions), {"direction": Choice(directions, directions[0])}, translate,
        uploads=("image",), extra={"shapes": shapes})}


def superres(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.superres.infer import check_scale, upscale_image

    s = check_scale(run, None)
    img = images["image"]
    h, w = img.shape[:2]
    if h * w * s * s > MAX_PIXELS:
        side = int(math.isqrt(MAX_PIXELS // (s * s)))
        raise GankitError(f"upload: {w}x{h} x{s} would be {w * s}x{h * s} = {w * h * s * s} pixels; at most "
                          f"{MAX_PIXELS} come out, so send at most {MAX_PIXELS // (s * s)} pixels "
                          f"(about {side}x{side})")
    notes: list[str] = []
    y = upscale_image(run, img, where="upload", notes=NoteOnce(notes.append))  # tiled: memory stays bounded
    return Result(y, f"{_stem(run)}-x{s}.png", notes)


def superres_panels(run: Run, max_samples: int) -> dict[str, Panel]:
    s = run.config.superres.scale
    return {"superres": Panel("Super-resolution", f"an uploaded image of any size, upscaled x{s} tile by tile",
                              {}, superres, uploads=("image",), extra={"scale": s})}


def repair_learned(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.inpaint.infer import repair_images

    notes: list[str] = []
    img = images["image"]
    x = _chw(img, (run.data_meta["channels"], *img.shape[:2]), notes)  # any size: channels only
    hole = _hole(images["mask"], tuple(x.shape[1:]), notes)
    try:
        y, _ = repair_images(run, x[None], hole[None], "learned")
    except GankitError as e:  # the U-Net's padding refuses images too small for its depth
        raise GankitError(f"upload: {e}") from None
    return Result(_hwc(y[0]), f"{_stem(run)}-repaired.png", notes)


def inpaint_panels(run: Run, max_samples: int) -> dict[str, Panel]:
    return {"repair": Panel("Repair", "upload an image and paint its hole; the inpainter fills it, every other "
                            "pixel is kept", {}, repair_learned, uploads=("image", "mask"), extra={"mask": True})}


def middle_frame(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.interpolate.infer import middle_frame as predict_middle

    notes: list[str] = []
    m = predict_middle(run, images["prev"], images["next"], log=notes.append)
    return Result(np.ascontiguousarray(m), f"{_stem(run)}-middle.png", notes)


def interpolate_panels(run: Run, max_samples: int) -> dict[str, Panel]:
    return {"frames": Panel("Middle frame", "two consecutive frames uploaded; the run predicts the frame between "
                            "them", {}, middle_frame, uploads=("prev", "next"))}


# -- audio and text: clips and lines from noise -----------------------------------------------


GRID_CLIPS = 16  # the most clips one audio request makes (16 s of audio, SpecGAN's Griffin-Lim included)


def sample_clips(run: Run, p: dict, images: dict) -> Result:
    """n clips: their spectrograms as the grid, and one WAV of them in that order, 0.25 s apart."""
    from gankit.data.speech import spectrogram_images
    from gankit.tasks.audio.infer import joined, sample_audio, wav_bytes

    clips = sample_audio(run, p["n"], p["seed"])  # float (n, T) in [-1, 1]
    meta = run.data_meta
    mu, sigma = torch.tensor(meta["spec_mu"]), torch.tensor(meta["spec_sigma"])
    grid = make_grid(spectrogram_images(clips, mu, sigma), nrow=min(p["n"], 8))
    return Result(grid, f"{_stem(run)}-seed{p['seed']}-n{p['n']}.wav", audio=wav_bytes(joined(clips)))


def audio_panels(run: Run, max_samples: int) -> dict[str, Panel]:
    n = min(max_samples, GRID_CLIPS)
    rate = run.data_meta.get("rate", 16_000)
    return {"sample": Panel("Sample", f"new clips ({rate // 1000} kHz), played one after another; the grid shows "
                            "their spectrograms in the same order", {"n": Int(1, n, min(8, n)),
                                                                      "seed": Int(0, MAX_SEED, 0)}, sample_clips)}


def sample_lines(run: Run, p: dict, images: dict) -> Result:
    lines = run.lines(p["n"], p["temperature"], p["seed"], p.get("topic"), p["prefix"] or None)
    return Result(None, f"{_stem(run)}-seed{p['seed']}-t{p['temperature']:g}.txt", text=lines)


def text_panels(run: Run, max_samples: int) -> dict[str, Panel]:
    what = "SMILES strings" if run.config.text.kind == "smiles" else "lines"
    fields: dict[str, Field] = {"n": Int(1, max_samples, min(10, max_samples)), "seed": Int(0, MAX_SEED, 0),
                                "temperature": Float(0.05, 5.0, run.config.text.temperature),
                                "prefix": Str(run.config.text.max_len * 8)}
    topics = list(run.data_meta.get("classes") or []) if run.G.topic is not None else []
    if topics:
        fields["topic"] = Int(0, len(topics) - 1, None)  # None: any topic
    return {"lines": Panel("Sample", f"new {what} at a softmax temperature (lower: safer, higher: more varied), "
                           "optionally starting with a prefix", fields, sample_lines, extra={"topics": topics})}


# A task name -> the panels of its runs' page (in the page's order).
PAGES: dict[str, Callable[[Run, int], dict[str, Panel]]] = {
    "generate": generate_panels,
    "translate": translate_panels,
    "superres": superres_panels,
    "inpaint": inpaint_panels,
    "interpolate": interpolate_panels,
    "audio": audio_panels,
    "text": text_panels,
}
