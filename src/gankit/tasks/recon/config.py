"""The reconstruction task's config section (`recon:`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import ranged
from gankit.errors import GankitError


@dataclass(frozen=True)
class ReconConfig:
    """The reconstruction task (task: recon): the measurements of each training image are simulated
    every step (`gankit.tasks.recon.physics`), the classical reconstruction made from them (FBP for
    CT, the zero-filled inverse FFT for MRI), and a U-Net G (recon.g_arch) predicts the correction to
    it, or a cascade G (recon.g_arch: cascade) refines it block by block with the measurements
    inside (`gankit.tasks.recon.cascade`); a conditional PatchGAN D judges (input, image) pairs. Images are data.source's (phantoms,
    phantoms:test, shepp-logan or a folder). G's width is model.g_width, D's model.d_width; the
    adversarial loss is train.loss."""

    modality: Literal["ct", "mri"] = "ct"
    size: int = ranged(64, lambda v: 16 <= v <= 512, "16 to 512")  # image side in pixels
    # CT: projections over [0, 180) degrees (180 = the full set; 30, 60: sparse view)
    views: int = ranged(30, lambda v: 2 <= v <= 720, "2 to 720")
    # CT low dose: incident photons per ray (Poisson counts; null: noiseless line integrals)
    photons: float | None = ranged(None, lambda v: v is None or v > 0, "a number > 0, or null")
    filter: Literal["ramp", "hann"] = "ramp"  # CT: FBP's filter (the classical input G corrects)
    accel: int = ranged(4, lambda v: 2 <= v <= 16, "2 to 16")  # MRI: N / sampled columns
    # MRI: fully sampled centre, as a fraction of the columns (null: fastMRI's 0.32 / accel: 8% at 4x, 4% at 8x)
    center_fraction: float | None = ranged(None, lambda v: v is None or 0 < v < 1, "a number in (0, 1), or null")
    mask: Literal["random", "equispaced"] = "random"  # MRI: how the other columns are chosen
    # MRI: complex Gaussian k-space noise on the sampled columns, E|n|^2 = noise^2 (null: noiseless);
    # the FFT is orthonormal, so this is also the noise's std per pixel in image units ([0, 1])
    noise: float | None = ranged(None, lambda v: v is None or v > 0, "a number > 0, or null")
    mask_seed: int = 0  # MRI: the run's one sampling mask (training, evaluation, --simulate)
    # MRI: replace the sampled k-space columns of G's output by the measured ones (training and inference)
    data_consistency: bool = True
    residual: bool = True  # G predicts the correction to the classical reconstruction
    # G's network: pix2pix's U-Net (4x4 stride-2 convs, decoder dropout, tanh) or FBPConvNet's
    # (Jin et al. 2017: two 3x3 convs per level, full resolution included; max-pool; no dropout), or
    # the cascade: small residual CNNs with the physics between them (MRI: Schlemper et al. 2017's
    # data-consistency layers; CT: Adler & Oktem 2017's learned gradient, FBP of the residual)
    g_arch: Literal["pix2pix", "fbpconvnet", "cascade"] = "pix2pix"
    cascades: int = ranged(5, lambda v: 1 <= v <= 20, "1 to 20")  # cascade: K blocks (CNN + physics)
    cascade_depth: int = ranged(5, lambda v: 2 <= v <= 10, "2 to 10")  # cascade: 3x3 convs per block
    norm: Literal["batch", "instance", "none"] = "batch"  # the U-Nets' norm layers (the cascade has none)
    d_layers: int | None = ranged(None, lambda v: v is None or 1 <= v <= 6, "1 to 6, or null")
    gan: float = ranged(1.0, lambda v: v >= 0, "a number >= 0")  # weight of G's adversarial term (0: L1 only)
    l1: float = ranged(100.0, lambda v: v >= 0, "a number >= 0")  # weight of L1 to the true image
    grid_examples: int = ranged(6, lambda v: 1 <= v <= 64, "1 to 64")  # held-out images in every grid

    def centre(self) -> float:
        return 0.32 / self.accel if self.center_fraction is None else self.center_fraction


SECTIONS = {"recon": ReconConfig}


def check(cfg, origin: str) -> None:
    """The MRI mask can be made at this size: a centre of at least one column, within N / accel;
    the cascade is residual and (MRI) data-consistent by construction."""
    r = cfg.recon
    if r.g_arch == "cascade" and not r.residual:
        raise GankitError(f"{origin}: recon.residual = false with recon.g_arch = cascade: every cascade block adds "
                          "a correction to its input; expected recon.residual = true (or another g_arch)")
    if r.g_arch == "cascade" and r.modality == "mri" and not r.data_consistency:
        raise GankitError(f"{origin}: recon.data_consistency = false with recon.g_arch = cascade: the cascade's "
                          "blocks end on data-consistency steps; expected true (or another g_arch)")
    low, total = round(r.size * r.centre()), round(r.size / r.accel)
    if not 1 <= low <= total:
        raise GankitError(f"{origin}: recon.center_fraction = {r.centre():g} gives a centre of {low} columns at "
                          f"recon.size = {r.size}, recon.accel = {r.accel}; expected 1 to {total} columns")
