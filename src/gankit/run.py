"""`Run`: a trained GAN on disk, loaded for use. Sampling, latents, interpolation.

A run directory is what `gankit.training` writes (see `gankit.training.artifacts`); `Run.load` reads
its config and the generator from ``checkpoints/last.pt`` (``weights_only=True``).
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path

import torch

from gankit.config import RunConfig, from_dict
from gankit.data import from_model
from gankit.errors import GankitError
from gankit.models import build_models


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cuda' without a GPU is the user's error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GankitError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise GankitError(f"device {name!r}; choose one of: auto, cpu, cuda")
    return torch.device(name)


class Run:
    """A trained generator with its config and data description."""

    def __init__(self, directory: Path, config: RunConfig, G: torch.nn.Module, data_meta: dict,
                 step: int, device: torch.device):
        self.dir, self.config, self.G, self.data_meta = directory, config, G, data_meta
        self.step, self.device = step, device

    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu") -> Run:
        from gankit.training.checkpoint import load_checkpoint  # the training package imports us

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise GankitError(f"run directory {run_dir} does not exist")
        device = resolve_device(device) if isinstance(device, str) else device
        ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt", map_location=device)
        cfg = from_dict(ckpt["config"], origin=str(run_dir / "checkpoints" / "last.pt"))
        G, _ = build_models(cfg.model, tuple(ckpt["data"]["shape"]))
        G.load_state_dict(ckpt["G"])
        G.to(device).eval()
        return cls(run_dir, cfg, G, ckpt["data"], int(ckpt["step"]), device)

    # -- paths ------------------------------------------------------------------------------
    @property
    def samples_dir(self) -> Path:
        return self.dir / "samples"

    @property
    def loss_plot(self) -> Path:
        return self.dir / "loss.png"

    @property
    def animation(self) -> Path:
        return self.dir / "progress.gif"

    @property
    def last_grid(self) -> Path | None:
        grids = sorted(self.samples_dir.glob("step_*.png"))
        return grids[-1] if grids else None

    # -- sampling ---------------------------------------------------------------------------
    def latents(self, n: int, seed: int | None = None) -> torch.Tensor:
        """n latent vectors z ~ N(0, I), (n, z_dim); the same seed gives the same z on any device."""
        g = torch.Generator().manual_seed(secrets.randbits(63) if seed is None else seed)
        return torch.randn(n, self.config.model.z_dim, generator=g).to(self.device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        """G(z) in storage form: uint8 (N, C, H, W) images, or float (N, 2) toy points."""
        kind, scale = self.data_meta["kind"], self.data_meta["scale"]
        parts = [from_model(self.G(zb.to(self.device)), kind, scale).cpu() for zb in z.split(batch)]
        return torch.cat(parts) if parts else torch.empty(0)

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """n samples: uint8 (N, C, H, W) for image runs (float (N, 2) for toy 2-D runs)."""
        if n < 1:
            raise GankitError(f"number of samples must be >= 1, got {n}")
        return self.generate(self.latents(n, seed))

    def interpolate(self, pairs: int = 8, steps: int = 10, seed: int | None = None) -> torch.Tensor:
        """Spherical interpolations between `pairs` random latent pairs: (pairs*steps, C, H, W),
        one pair per row of `steps` images."""
        z = self.latents(2 * pairs, seed)
        a, b = z[:pairs], z[pairs:]
        t = torch.linspace(0, 1, steps, device=z.device)
        path = slerp(a[:, None], b[:, None], t[None, :, None])  # (pairs, steps, z_dim)
        return self.generate(path.reshape(pairs * steps, -1))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation between a and b (last dim), falling back to linear when
    they are (nearly) parallel. Broadcasts over leading dims."""
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    cos = ((a * b).sum(-1, keepdim=True) / (na * nb).clamp_min(1e-12)).clamp(-1, 1)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    lin = (1 - t) * a + t * b
    sph = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so.clamp_min(1e-12)
    return torch.where(so.abs() < 1e-6, lin, sph)
