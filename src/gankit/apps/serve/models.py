"""What a `gankit serve` page can do with a loaded run, task by task: its panels.

A panel is one action on the page (sample a grid, walk between two latents, set InfoGAN codes,
run an uploaded image through the model). It declares the fields it accepts, each with its range
(so the app refuses a bad request in one line and the page sets its inputs' limits), the images
it takes, and a handler `(run, params, images) -> Result`. A task's panels live in its folder
(`gankit/tasks/<task>/serve.py`, a function `panels(run, max_samples)`), found through the registry
by `panels_of`; a task without that file has no page. This module holds what they share.

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
from gankit.media.images import conform
from gankit.run import Run

MAX_SEED = 2**31 - 1  # seeds the page's number boxes hold exactly
MAX_PIXELS = 4096 * 4096  # per uploaded image, and per super-resolved output
MAX_POINTS = 10_000  # a 2-D toy run's scatter
INVERT_STEPS, INVERT_RESTARTS = 100, 4  # the page's defaults: ~3 s on a CPU for MNIST (the CLI: 300, 8)


# -- the fields a panel accepts ----------------------------------------------------------------
# `parse(name, value, form)`: JSON values must have the right type; form values (uploads' forms)
# are text and are converted. A default of None means the field may be null or absent.


def _label(label: str | None) -> dict:
    return {} if label is None else {"label": label}


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int
    default: int | None
    label: str | None = None  # an upload panel's own number: the page shows it as an input with this label

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
        return {"type": "int", "min": self.lo, "max": self.hi, "default": self.default} | _label(self.label)


@dataclass(frozen=True)
class Float:
    lo: float
    hi: float
    default: float
    label: str | None = None  # as Int's

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
        return {"type": "float", "min": self.lo, "max": self.hi, "default": self.default} | _label(self.label)


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


def stem(run: Run) -> str:
    return f"{run.config.preset or run.task}-step{run.step}"


def hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy()  # (C, H, W) -> (H, W, C)


def chw(img: np.ndarray, shape: tuple[int, int, int], notes: list[str], where: str = "upload") -> torch.Tensor:
    """An upload as the run takes it: uint8 (C, H, W) = shape, resized/converted with a note."""
    x, note = conform(img, shape, False, where)
    if note:
        notes.append(note)
    return torch.from_numpy(np.array(x))


def hole_mask(mask: np.ndarray, size: tuple[int, int], notes: list[str]) -> torch.Tensor:
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


def panels_of(run: Run, max_samples: int) -> dict[str, Panel] | None:
    """The panels of `run`'s page, in the page's order (from its task's serve.py); None: no page."""
    from gankit.tasks import task_part

    serve = task_part(run.task, "serve")
    return None if serve is None else serve.panels(run, max_samples)
