"""What a loaded generation run can do: sample, walk between latents, truncate, mix styles.

`Sampling` is the generation task's contribution to `gankit.run.Run` (`Task.run_methods`): a run
loaded from a generation checkpoint is a `Run` with these methods, so `run.sample(64)`,
`run.interpolate(...)` and `run.style_mix(...)` work on it and on nothing else. They read the
run's `config`, `data_meta`, `device`, `G` and `n_classes`, which every Run has.
"""

from __future__ import annotations

import math
import secrets

import torch

from gankit.data import from_model
from gankit.errors import GankitError
from gankit.models.latent import check_truncation, draw_latent, has_styles, truncate_z, truncation_method

# Images per generator call unless told (`batch`): about this many output pixels, at most 1024
# images: 1024 up to 64 px, 64 at 256 px, 4 at 1024 px, so sampling fits in memory at any size.
GEN_PIXELS = 2 ** 22
MAX_GEN_BATCH = 1024


class Sampling:
    """Methods of a loaded generation run (mixed into `gankit.run.Run` by `Run.for_task`)."""

    @property
    def styles(self) -> bool:
        """Whether the generator takes style inputs (StyleGAN2's `mapping` + `synthesis`)."""
        return has_styles(self.G)

    @property
    def truncation(self) -> str:
        """How `truncate=psi` acts on this run's generator, in words: in w for stylegan2, in z otherwise."""
        return truncation_method(self.G)

    def latents(self, n: int, seed: int | None = None, code: int | None = None,
                truncate: float | None = None) -> torch.Tensor:
        """n generator inputs, (n, G.in_dim): z ~ N(0, I) plus InfoGAN codes (categorical code
        fixed to `code` when given). The same seed gives the same latents on any device.

        `truncate` psi in (0, 1] scales the noise part: z <- psi * z (truncation in z; codes kept).
        A stylegan2 run truncates in w, which z cannot express: give it to `generate` or `sample`
        instead (and never to both, or z is truncated twice)."""
        check_truncation(truncate)
        if truncate is not None and self.styles:
            raise GankitError("a stylegan2 run truncates in w, after its mapping network: pass truncate to "
                              "Run.generate or Run.sample, not to Run.latents")
        g = torch.Generator().manual_seed(secrets.randbits(63) if seed is None else seed)
        cfg = self.config.model
        c_cat = None
        if code is not None:
            if not cfg.info_cat:
                raise GankitError("--code needs an InfoGAN run (model.info_cat > 0)")
            if not 0 <= code < cfg.info_cat:
                raise GankitError(f"code {code} is out of range; this run's codes are 0..{cfg.info_cat - 1}")
            c_cat = torch.full((n,), code)
        z = draw_latent(cfg, n, g, "cpu", c_cat=c_cat).z_in
        return truncate_z(z, truncate, cfg.z_dim).to(self.device)

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

    def gen_batch(self, batch: int | None = None) -> int:
        """Images per generator call: `batch`, or GEN_PIXELS' worth of this run's images."""
        if batch is None:
            pixels = math.prod(self.data_meta["shape"][1:]) if self.data_meta["kind"] == "image" else 1
            return max(1, min(MAX_GEN_BATCH, GEN_PIXELS // pixels))
        if batch < 1:
            raise GankitError(f"--batch {batch}: expected a number of samples per generator call >= 1")
        return batch

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, batch: int | None = None,
                 truncate: float | None = None) -> torch.Tensor:
        """G(z, y) in storage form: uint8 (N, C, H, W) images, or float (N, 2) toy points.

        `truncate` psi in (0, 1]: the truncation trick, in w for a stylegan2 run (G's own psi:
        w <- w_avg + psi (w - w_avg)), in z for every other generator (z <- psi z, by scaling;
        InfoGAN codes kept). None (or 1): no truncation. The inputs are all drawn before, so
        `batch` (images per call, `gen_batch`) changes the memory used, not the images (but for
        float rounding: kernels sum in another order at another batch size, so a rare pixel may
        move by one level)."""
        check_truncation(truncate)
        batch = self.gen_batch(batch)
        kind, scale = self.data_meta["kind"], self.data_meta["scale"]
        if not self.styles:
            z = truncate_z(z, truncate, self.config.model.z_dim)
        parts = []
        for i in range(0, len(z), batch):
            zb, yb = z[i:i + batch].to(self.device), None if y is None else y[i:i + batch].to(self.device)
            # a style generator's per-pixel noise is its fixed buffers here ("const", as StyleGAN2's own
            # generate script does), so the same seed gives the same images
            x = self.G(zb, yb, psi=1.0 if truncate is None else truncate, noise="const") if self.styles \
                else self.G(zb, yb)
            parts.append(from_model(x, kind, scale).cpu())
        return torch.cat(parts) if parts else torch.empty(0)

    def sample(self, n: int, seed: int | None = None, label: int | None = None,
               code: int | None = None, truncate: float | None = None, batch: int | None = None) -> torch.Tensor:
        """n samples: uint8 (N, C, H, W) for image runs (float (N, 2) for toy 2-D runs).

        `label` picks the class of a conditional run (default: uniform over classes); `code` the
        categorical code of an InfoGAN run; `truncate` the truncation psi (see `generate`). The
        same seed gives the same latents whatever psi, so psi = 1 is plain sampling. `batch`:
        images per generator call (default `gen_batch`); the samples are the same whatever it is."""
        if n < 1:
            raise GankitError(f"number of samples must be >= 1, got {n}")
        check_truncation(truncate)
        return self.generate(self.latents(n, seed, code), self.labels(n, label, seed), batch, truncate)

    def sample_by_class(self, per_class: int, seed: int | None = None,
                        truncate: float | None = None, batch: int | None = None) -> torch.Tensor:
        """A conditional run's classes in order, `per_class` samples each: (n_classes * per_class, ...)."""
        if not self.conditional:
            raise GankitError("a class-by-row grid needs a conditional run (model.conditional: true)")
        check_truncation(truncate)
        y = torch.arange(self.n_classes).repeat_interleave(per_class)
        return self.generate(self.latents(len(y), seed), y, batch, truncate)

    def interpolate(self, pairs: int = 8, steps: int = 10, seed: int | None = None,
                    truncate: float | None = None, batch: int | None = None) -> torch.Tensor:
        """Spherical interpolations between `pairs` random latent pairs: (pairs*steps, C, H, W),
        one pair per row of `steps` images (a conditional run keeps one random class per row).
        `truncate`: as in `generate`, applied to every point of the path."""
        check_truncation(truncate)
        z = self.latents(2 * pairs, seed)
        a, b = z[:pairs], z[pairs:]
        t = torch.linspace(0, 1, steps, device=z.device)
        path = slerp(a[:, None], b[:, None], t[None, :, None])  # (pairs, steps, in_dim)
        y = self.labels(pairs, seed=seed)
        y = None if y is None else y.repeat_interleave(steps)
        return self.generate(path.reshape(pairs * steps, -1), y, batch, truncate)

    @torch.no_grad()
    def style_mix(self, n: int = 5, seed: int | None = None, layers: tuple[int, int] | None = None,
                  truncate: float | None = None, label: int | None = None, batch: int | None = None) -> torch.Tensor:
        """StyleGAN's style-mixing grid: uint8 ((n + 1)^2, C, H, W), row-major, n + 1 per row.

        Row 0 is a blank (white) corner, then n images of source A; each further row i starts with
        source B_i and holds, in column j, the synthesis of A_j's styles with the style inputs
        `layers` (a, b: inputs a .. b-1, 0-based; default `coarse_layers`) taken from B_i, as in
        the figure of Karras et al. (2019): a row shares B_i's coarse styles (pose, shape), a
        column A_j's fine ones. Noise inputs are constant, so a head image is its source's exact
        synthesis. `truncate` pulls every w towards w_avg first; `label` fixes a conditional run's
        class (default: uniform, drawn per source)."""
        if not self.styles:
            raise GankitError(f"--mix needs a stylegan2 run (style inputs); this is a "
                              f"{self.config.model.arch} run")
        if n < 1:
            raise GankitError(f"--n {n}: expected a number of sources per side >= 1")
        check_truncation(truncate)
        G = self.G
        a, b = check_mix_layers(layers, int(G.num_ws))
        z = self.latents(2 * n, seed)  # (2n, z_dim): sources A, then sources B
        y = self.labels(2 * n, label, seed)
        w = G.mapping(z, None if y is None else y.to(self.device))  # (2n, w_dim)
        if truncate is not None:
            w = G.w_avg + truncate * (w - G.w_avg)
        ws = w[:, None].repeat(1, int(G.num_ws), 1)  # (2n, num_ws, w_dim)
        mixed = ws[None, :n].repeat(n, 1, 1, 1)  # (n rows B_i, n columns A_j, num_ws, w_dim)
        mixed[:, :, a:b] = ws[n:, None, a:b]  # row i takes inputs a..b-1 from B_i
        batch = self.gen_batch(batch)
        heads = self._synthesize(ws, batch)  # (2n, C, H, W) uint8
        cells = self._synthesize(mixed.flatten(0, 1), batch).view(n, n, *heads.shape[1:])
        corner = torch.full_like(heads[:1], 255)
        rows = [torch.cat([corner, heads[:n]])] + [torch.cat([heads[n + i:n + i + 1], cells[i]]) for i in range(n)]
        return torch.cat(rows)

    def _synthesize(self, ws: torch.Tensor, batch: int) -> torch.Tensor:
        """uint8 images of (N, num_ws, w_dim) styles, with constant noise inputs."""
        return torch.cat([from_model(self.G.synthesis(ws[i:i + batch], noise="const"), "image").cpu()
                          for i in range(0, len(ws), batch)])


def coarse_layers(num_ws: int) -> tuple[int, int]:
    """The default style inputs mixed from the row source: the coarse styles, the first 4 (StyleGAN2's
    4x4 and 8x8 layers, where pose and shape are set), at most half of them, at least one."""
    return 0, max(1, min(4, num_ws // 2))


def check_mix_layers(layers: tuple[int, int] | None, num_ws: int) -> tuple[int, int]:
    """(a, b) with 0 <= a < b <= num_ws, or a one-line error; None gives `coarse_layers`."""
    if layers is None:
        return coarse_layers(num_ws)
    a, b = layers
    if not 0 <= a < b <= num_ws:
        raise GankitError(f"--mix-layers {a}:{b}: expected a:b with 0 <= a < b <= {num_ws} (style inputs a to "
                          f"b-1; this run's generator has {num_ws})")
    return a, b


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
