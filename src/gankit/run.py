"""`Run`: a trained GAN on disk, loaded for use. Sampling, latents, interpolation.

A run directory is what `gankit.training` writes (see `gankit.training.artifacts`); `Run.load` reads
its config and the generator from ``checkpoints/last.pt`` (``weights_only=True``).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import torch

from gankit.config import RunConfig, from_dict
from gankit.data import from_model
from gankit.errors import GankitError, warn
from gankit.models import build_models
from gankit.models.latent import draw_latent


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
                 step: int, device: torch.device, ema: bool = False):
        self.dir, self.config, self.G, self.data_meta = directory, config, G, data_meta
        self.step, self.device, self.ema = step, device, ema
        self.checkpoint: Path | None = None  # the file it was loaded from
        self.interrupted: str | None = None  # the signal that ended training early, if any
        classes = data_meta.get("classes") or []
        self.n_classes = len(classes) if config.model.conditional else 0

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> Run:
        """Load a run directory (its ``checkpoints/last.pt``) or one checkpoint file: the EMA
        generator when the run kept one, unless `ema` is False."""
        from gankit.training.checkpoint import CheckpointStore, load_checkpoint  # training imports us

        path = Path(path)
        if path.suffix == ".safetensors":  # a generator shared by `gankit export`
            from gankit.export import load_exported

            run = load_exported(path, device=device)
            if not ema and run.ema:
                raise GankitError(f"{path} holds the EMA generator only; export with --no-ema for the raw one")
            return run
        device = resolve_device(device) if isinstance(device, str) else device
        if path.is_file():
            ckpt_path, run_dir = path, path.parent.parent
            ckpt = load_checkpoint(ckpt_path, map_location=device)
        elif path.is_dir():
            run_dir = path
            ckpt, ckpt_path = CheckpointStore(path / "checkpoints", warn=warn).load_latest(device)
        else:
            raise GankitError(f"run directory {path} does not exist")
        cfg = from_dict(ckpt["config"], origin=str(ckpt_path))
        classes = ckpt["data"].get("classes") or []
        G, _ = build_models(cfg.model, tuple(ckpt["data"]["shape"]), len(classes))
        use_ema = ema and "ema" in ckpt
        G.load_state_dict(ckpt["ema"]["G"] if use_ema else ckpt["G"])
        G.to(device).eval()
        run = cls(run_dir, cfg, G, ckpt["data"], int(ckpt["step"]), device, ema=use_ema)
        run.checkpoint = ckpt_path
        return run

    def discriminator(self) -> torch.nn.Module:
        """The run's D at the loaded checkpoint, in eval mode (for D-accuracy evaluation)."""
        from gankit.training.checkpoint import load_checkpoint

        if self.checkpoint is None:
            raise GankitError(f"{self.dir}: an exported generator has no discriminator; evaluate the run itself")
        ckpt = load_checkpoint(self.checkpoint, map_location=self.device)
        classes = self.data_meta.get("classes") or []
        _, D = build_models(self.config.model, tuple(self.data_meta["shape"]), len(classes))
        D.load_state_dict(ckpt["D"])
        return D.to(self.device).eval()



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
    @property
    def conditional(self) -> bool:
        return self.n_classes > 0

    def latents(self, n: int, seed: int | None = None, code: int | None = None) -> torch.Tensor:
        """n generator inputs, (n, G.in_dim): z ~ N(0, I) plus InfoGAN codes (categorical code
        fixed to `code` when given). The same seed gives the same latents on any device."""
        g = torch.Generator().manual_seed(secrets.randbits(63) if seed is None else seed)
        cfg = self.config.model
        c_cat = None
        if code is not None:
            if not cfg.info_cat:
                raise GankitError("--code needs an InfoGAN run (model.info_cat > 0)")
            if not 0 <= code < cfg.info_cat:
                raise GankitError(f"code {code} is out of range; this run's codes are 0..{cfg.info_cat - 1}")
            c_cat = torch.full((n,), code)
        return draw_latent(cfg, n, g, "cpu", c_cat=c_cat).z_in.to(self.device)

    def labels(self, n: int, label: int | None = None, seed: int | None = None) -> torch.Tensor | None:
        """Class labels for a conditional run: all `label`, or uniform at random; None otherwise."""
        if not self.conditional:
            if label is not None:
                raise GankitError("--class needs a conditional run (model.conditional: true)")
            return None
        if label is None:
            g = torch.Generator().manual_seed((secrets.randbits(63) if seed is None else seed) + 1)
            return torch.randint(self.n_classes, (n,), generator=g)
        if not 0 <= label < self.n_classes:
            names = self.data_meta.get("classes") or []
            raise GankitError(f"class {label} is out of range; this run has classes 0..{self.n_classes - 1} "
                              f"({', '.join(names[:20])})")
        return torch.full((n,), label)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, batch: int = 1024) -> torch.Tensor:
        """G(z, y) in storage form: uint8 (N, C, H, W) images, or float (N, 2) toy points."""
        kind, scale = self.data_meta["kind"], self.data_meta["scale"]
        parts = []
        for i in range(0, len(z), batch):
            yb = None if y is None else y[i:i + batch].to(self.device)
            parts.append(from_model(self.G(z[i:i + batch].to(self.device), yb), kind, scale).cpu())
        return torch.cat(parts) if parts else torch.empty(0)

    def sample(self, n: int, seed: int | None = None, label: int | None = None,
               code: int | None = None) -> torch.Tensor:
        """n samples: uint8 (N, C, H, W) for image runs (float (N, 2) for toy 2-D runs).

        `label` picks the class of a conditional run (default: uniform over classes); `code` the
        categorical code of an InfoGAN run."""
        if n < 1:
            raise GankitError(f"number of samples must be >= 1, got {n}")
        return self.generate(self.latents(n, seed, code), self.labels(n, label, seed))

    def sample_by_class(self, per_class: int, seed: int | None = None) -> torch.Tensor:
        """A conditional run's classes in order, `per_class` samples each: (n_classes * per_class, ...)."""
        if not self.conditional:
            raise GankitError("a class-by-row grid needs a conditional run (model.conditional: true)")
        y = torch.arange(self.n_classes).repeat_interleave(per_class)
        return self.generate(self.latents(len(y), seed), y)

    def interpolate(self, pairs: int = 8, steps: int = 10, seed: int | None = None) -> torch.Tensor:
        """Spherical interpolations between `pairs` random latent pairs: (pairs*steps, C, H, W),
        one pair per row of `steps` images (a conditional run keeps one random class per row)."""
        z = self.latents(2 * pairs, seed)
        a, b = z[:pairs], z[pairs:]
        t = torch.linspace(0, 1, steps, device=z.device)
        path = slerp(a[:, None], b[:, None], t[None, :, None])  # (pairs, steps, in_dim)
        y = self.labels(pairs, seed=seed)
        y = None if y is None else y.repeat_interleave(steps)
        return self.generate(path.reshape(pairs * steps, -1), y)


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
