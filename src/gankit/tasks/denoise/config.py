"""The denoising task's config section (`denoise:`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from gankit.config import ranged
from gankit.errors import GankitError


@dataclass(frozen=True)
class DenoiseConfig:
    """The denoising task (task: denoise): a U-Net G maps a noisy image to the clean one (pix2pix's
    G, predicting the correction to its input when `residual`); a conditional PatchGAN D judges
    (noisy, clean) against (noisy, G's output) pairs. The images are those of the inpaint task's
    sources (MNIST digits, photo crops, a folder's crops: `gankit.data.inpaint`); the noise is
    drawn afresh every step. G's width is model.g_width, D's model.d_width; the adversarial loss is
    train.loss (ns: pix2pix's cGAN loss)."""

    # the noise model (gankit.tasks.denoise.noise): gaussian:S (std S on the 0-255 scale),
    # gaussian:A-B (S uniform in [A, B] per image: one model for a range of levels, "blind"),
    # poisson:P (photon counts with P expected at white: x ~ Poisson(P x / 255) 255 / P)
    noise: str = "gaussian:25"
    # held-out noise levels `gankit eval` and eval.every score (null: the training noise; a range
    # is scored at its two ends and its middle)
    eval_noise: tuple[str, ...] | None = None
    patch: int | None = None  # crop side for photos and folders (None: 64); MNIST uses whole 28 px digits
    residual: bool = True  # G predicts the correction to the noisy image (DnCNN's residual learning)
    norm: Literal["batch", "instance", "none"] = "batch"  # G's norm layers
    d_layers: int | None = ranged(None, lambda v: v is None or 1 <= v <= 6, "1 to 6, or null")
    gan: float = ranged(1.0, lambda v: v >= 0, "a number >= 0")  # weight of G's adversarial term (0: L1 only)
    l1: float = ranged(100.0, lambda v: v >= 0, "a number >= 0")  # weight of L1 to the clean image
    grid_examples: int = ranged(8, lambda v: 1 <= v <= 64, "1 to 64")  # held-out images in every grid


SECTIONS = {"denoise": DenoiseConfig}


NOISE_FORMS = "gaussian:S, gaussian:A-B (stds on the 0-255 scale, 0 < S <= 255) or poisson:P (photons at white, P > 0)"


class Noise(NamedTuple):
    """A parsed noise spec: kind "gaussian" with std in [lo, hi] (0-255 scale; lo == hi: fixed),
    or kind "poisson" with lo == hi == the expected photon count at white."""

    kind: str
    lo: float
    hi: float

    def __str__(self) -> str:
        if self.kind == "poisson":
            return f"poisson:{self.lo:g}"
        return f"gaussian:{self.lo:g}" if self.lo == self.hi else f"gaussian:{self.lo:g}-{self.hi:g}"

    def levels(self) -> list[Noise]:
        """The fixed levels a held-out evaluation scores this spec at: itself, or a range's ends and middle."""
        if self.lo == self.hi:
            return [self]
        return [Noise(self.kind, v, v) for v in (self.lo, (self.lo + self.hi) / 2, self.hi)]


def parse_noise(spec: str) -> Noise:
    """'gaussian:25' / 'gaussian:5-50' / 'poisson:30' -> Noise; a one-line GankitError otherwise."""
    kind, _, arg = str(spec).partition(":")
    try:
        lo, _, hi = arg.partition("-")
        lo_v, hi_v = float(lo), float(hi or lo)
    except ValueError:
        raise GankitError(f"{spec!r}: expected {NOISE_FORMS}") from None
    if kind == "gaussian" and 0 < lo_v <= hi_v <= 255:
        return Noise(kind, lo_v, hi_v)
    if kind == "poisson" and not hi and lo_v > 0:
        return Noise(kind, lo_v, lo_v)
    raise GankitError(f"{spec!r}: expected {NOISE_FORMS}")


def check(cfg, origin: str) -> None:
    """The noise specs parse (one line naming the key and the accepted forms otherwise)."""
    d = cfg.denoise
    for key, spec in [("noise", d.noise), *(("eval_noise", s) for s in d.eval_noise or ())]:
        try:
            parse_noise(spec)
        except GankitError as e:
            raise GankitError(f"{origin}: denoise.{key}: {e}") from None
