"""The generation task: noise (+ class label, + InfoGAN codes) -> image or 2-D point.

One step: n_critic D updates, each on a fresh batch of real examples and latents, then one G
update that reuses the last D update's fakes (one G forward per step; `train.reuse_fakes: false`
draws fresh latents instead, the tutorial's way). The maths is in `phases.py`.
"""

from __future__ import annotations


import torch

from gankit import viz
from gankit.augment import AdaState
from gankit.data import from_model, load_data
from gankit.errors import GankitError
from gankit.models import RESOLUTIONS, build_models, describe_sides, nearest_side
from gankit.models.base import Judge
from gankit.models.latent import draw_latent
from gankit.regularizers import instance_noise_std
from gankit.tasks.base import Card, Parts, Task
from gankit.tasks.generate.burnin import Burnin
from gankit.tasks.generate.evaluation import InTrainingEval
from gankit.tasks.generate.accumulate import d_accumulated, g_accumulated, noise_inputs
from gankit.tasks.generate.phases import D_STATS, G_STATS, Batch, Objective, PathLengthMean, d_phase, g_phase
from gankit.tasks.generate.sampling import GEN_PIXELS, Sampling
from gankit.tasks.generate.tutorial import reference_loop
from gankit.util import eval_mode

SCATTER_POINTS = 1024  # generated points in each toy scatter plot
SCATTER_REAL = 2048  # real points drawn under it


def n_classes_of(data) -> int:
    return len(data.classes) if data.y is not None and data.classes else 0


def _cut(t, s: slice):
    return None if t is None else t[s]


class GenerateTask(Task):
    name = "generate"
    stat_names = D_STATS + G_STATS
    honours_precision = True
    accumulates = True  # train.batch_gpu: micro-batches summed into one update (docs/accumulation.md)
    run_methods = Sampling  # run.sample, run.interpolate, run.style_mix, ...
    reference_loop = staticmethod(reference_loop)  # the tutorial's loop, made to run

    def class_conditional(self, cfg) -> bool:
        return cfg.model.conditional

    def load_data(self, cfg, device, strict: bool = False):
        """The data as the model takes it. With data.resolution unset, a convolutional arch gets
        the supported size nearest the data's own (a note says so)."""
        d = cfg.data
        data = load_data(d.source, d.resolution, d.channels, device, strict=strict, load=d.load,
                         memory_budget=d.memory_budget, workers=d.workers, prefetch=d.prefetch, mirror=d.mirror)
        if cfg.data.resolution is None and cfg.model.arch in RESOLUTIONS and data.kind == "image":
            side = min(data.shape[1:])
            if data.shape[1] != data.shape[2] or side not in RESOLUTIONS[cfg.model.arch]:
                near = nearest_side(cfg.model.arch, side)
                data.conform(near, None)
                data.notes.append(f"model.arch {cfg.model.arch} builds sides of {describe_sides(cfg.model.arch)} px: "
                                  f"trained at {near}, the nearest to the data's {side} (set data.resolution to choose)")
        return data

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        n_classes = n_classes_of(data)
        G, D = build_models(cfg.model, data.shape, n_classes)
        objective = Objective.from_config(cfg, n_classes, device)
        extra = {}
        if objective.ada:  # p in the checkpoint, so a resumed run augments as the whole one would have
            if data.kind != "image":
                raise GankitError(f"reg.ada / reg.ada_p augment images; data {data.name} is {data.kind} "
                                  f"of shape {'x'.join(map(str, data.shape))}")
            r = cfg.reg
            extra["ada"] = AdaState(r.ada_p, device, batch=cfg.train.batch, target=r.ada_target,
                                    kimg=r.ada_kimg, max_p=r.ada_max, adaptive=r.ada)
        if objective.pl:  # the running mean of path lengths, checkpointed so a resume is exact
            extra["pl"] = PathLengthMean(device)
        return Parts(
            nets={"G": G, "D": D}, groups={"G": ("G",), "D": ("D",)},
            lrs={"G": cfg.train.lr_g, "D": cfg.train.lr_d},
            objective=objective, extra=extra,
            ema=("G",) if cfg.train.ema else (),
            # D's update forward is `D.judge` (real, fake and aux heads in one call): one forward
            # per backward, as DistributedDataParallel's reducer expects.
            forwards={"G": G, "judge": Judge(D)},
            samplers={"x": data.sampler(cfg.train.batch, cfg.seed, device)})

    def schedule(self, cfg, st):
        return Burnin.build(cfg, st)  # R3GAN's burn-in (None when burnin.kimg is 0)

    def double_backward(self, cfg) -> bool:
        return bool(cfg.reg.gp or cfg.reg.r1 or cfg.reg.r2 or cfg.reg.pl)

    def blockers(self, cfg) -> list[str]:
        why = []
        if cfg.burnin.kimg > 0 and cfg.burnin.beta2 is not None:
            why.append("burnin.beta2 changes Adam's beta2, a constant inside a captured step, every step")
        if cfg.reg.instance_noise:
            why.append("reg.instance_noise changes its strength every step")
        if not cfg.train.reuse_fakes:
            why.append("train.reuse_fakes is false")
        return why

    # -- one step -------------------------------------------------------------------------------
    def flags(self, cfg, t: int):
        """(which of the step's D updates carry lazy R1, instance-noise std at step t, whether
        the G update carries lazy path-length regularisation)."""
        k, every = cfg.train.n_critic, cfg.reg.r1_every
        r1 = tuple((cfg.reg.r1 > 0 or cfg.reg.r2 > 0) and (t * k + i) % every == 0 for i in range(k))  # R2 too
        noise = instance_noise_std(t, cfg.reg.instance_noise, cfg.reg.instance_noise_steps or cfg.train.steps)
        pl = cfg.reg.pl > 0 and t % cfg.reg.pl_every == 0  # one G update per step
        return r1, noise, pl

    def draw(self, st) -> tuple:
        """This rank's slice of the step's global batches: for each D update the real examples'
        indices and the latents, drawn for the whole global batch on every rank (same sampler,
        same generator), so the data stream does not depend on the number of processes; then,
        with reuse_fakes false, the G update's own latents. stylegan2 with style mixing also
        draws each batch's (z2, cut) here (`style_mix`). A streaming dataset's images (uint8, this
        rank's slice only) are fetched here too, as each batch's last item (None when resident:
        `real` indexes the images on the device)."""
        cfg, sampler, gen = st.cfg, st.samplers["x"], st.gens["z"]
        s = slice(st.shard[0], sum(st.shard))
        batches = []
        for _ in range(cfg.train.n_critic):
            pos = sampler.consumed
            idx = sampler.next()  # (B_global,) on the device
            lat = draw_latent(cfg.model, len(idx), gen, st.device)
            x = None if st.data.resident else st.data.fetch(sampler, pos, idx[s], st.shard)  # (b, C, H, W) uint8
            batches.append((idx[s], lat.z_in[s], _cut(lat.c_cat, s), _cut(lat.c_cont, s),
                            style_mix(st, len(idx), s), x))
        fresh = None
        if not cfg.train.reuse_fakes:
            lat = draw_latent(cfg.model, cfg.train.batch, gen, st.device)
            fresh = (lat.z_in[s], _cut(lat.c_cat, s), _cut(lat.c_cont, s), style_mix(st, cfg.train.batch, s))
        return tuple(batches), fresh

    def phases(self, st, inputs: tuple, flags) -> None:
        """The step's n_critic D updates and one G update. Under gradient accumulation
        (st.batch_gpu) each update runs over micro-batches of this rank's batch (accumulate.py),
        b.noise carrying stylegan2's noise inputs drawn for the whole batch."""
        batches, fresh = inputs
        r1, noise, pl = flags
        n, nd = len(batches), len(D_STATS)
        split = st.batch_gpu is not None
        for k, (idx, z, c_cat, c_cont, mix, x) in enumerate(batches):  # 1. D phase, a fresh batch each
            b = Batch(self.real(st, idx, x), st.data.labels(idx) if st.obj.labels else None, z, c_cat, c_cont, mix,
                      noise_inputs(st, len(z)))
            keep = k == n - 1 and st.cfg.train.reuse_fakes  # the last keeps its fakes' graph for G
            if split:  # G's update regenerates the fakes, micro-batch by micro-batch
                d_stats, x_fake = d_accumulated(st, b, noise, r1[k]), None
            else:
                d_stats, x_fake = d_phase(st, b, noise, r1[k], keep_fake_graph=keep)
            st.acc[:nd] += d_stats
        if fresh is not None:  # the tutorial's way: G's update on fresh latents
            b, x_fake = b._replace(z=fresh[0], c_cat=fresh[1], c_cont=fresh[2], mix=fresh[3],
                                   noise=noise_inputs(st, len(fresh[0]))), None
        # 2. G phase: the updated D judges the fakes
        if split:
            st.acc[nd:] += g_accumulated(st, b, noise, pl, same_fakes=fresh is None)
        else:
            st.acc[nd:] += g_phase(st, b, x_fake, noise, pl)

    @staticmethod
    def real(st, idx, x=None):
        """The real batch in model space: the images at sampler indices `idx` (resident data,
        mirrored ones flipped), or `x`, the ones `draw` fetched (streaming)."""
        x = st.data.to_model(st.data.take(idx) if x is None else x)  # uint8 -> [-1, 1], fused into the step
        if st.cfg.train.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # -- the run directory ------------------------------------------------------------------------
    def log_row(self, cfg, st, sums: dict[str, float], window: int) -> dict:
        obj = st.obj
        n_d = window * cfg.train.n_critic
        row = {"step": st.step, "epoch": round(st.samplers["x"].epoch, 4)}
        row.update({k: round(sums[k] / n_d, 6) for k in ("loss_d", "d_real", "d_fake", "acc_real", "acc_fake")})
        row["loss_g"] = round(sums["loss_g"] / window, 6)
        row["acc"] = round((row["acc_real"] + row["acc_fake"]) / 2, 6)
        if obj.gp:
            row["gp"] = round(sums["gp"] / n_d, 6)
        if obj.r1 and sums["r1_n"]:
            row["r1"] = round(sums["r1"] / sums["r1_n"], 6)  # mean over the D steps that computed it
        if obj.r2 and sums["r1_n"]:
            row["r2"] = round(sums["r2"] / sums["r1_n"], 6)  # on R1's schedule
        if obj.pl and sums["pl_n"]:  # mean over the G steps that computed it
            row["pl"] = round(sums["pl"] / sums["pl_n"], 6)
        if obj.pl:
            row["pl_mean"] = round(sums["pl_mean"] / window, 6)  # the running mean a, averaged over the window
        if obj.acgan_classes:
            row["aux_d"], row["aux_g"] = round(sums["aux_d"] / n_d, 6), round(sums["aux_g"] / window, 6)
        if obj.info_cat or obj.info_cont:
            row["info_d"], row["info_g"] = round(sums["info_d"] / n_d, 6), round(sums["info_g"] / window, 6)
        if obj.ada:  # means over the window's D updates (and ranks): p after each update, each update's r_t
            row["ada_p"], row["ada_rt"] = round(sums["ada_p"] / n_d, 6), round(sums["ada_rt"] / n_d, 6)
        return row

    def grid(self, cfg, data, st):
        """The fixed latent batch through the sampling generator (EMA when kept), as a grid; a
        scatter plot over real points for 2-D data."""
        device = st.device
        n = cfg.log.grid_n if data.kind == "image" else SCATTER_POINTS
        z, y, nrow = grid_latents(cfg, n, n_classes_of(data), cfg.seed + 2, device)
        real = None
        if data.kind == "points":
            g = torch.Generator().manual_seed(0)
            real = data.x[torch.randperm(len(data), generator=g)[:SCATTER_REAL].to(device)]
        G = st.emas["G"].G if "G" in st.emas else st.nets["G"]
        # images per G call: all of a grid up to 64 px, 4 at 1024 px (large grids on a GPU fit)
        per = max(1, GEN_PIXELS // (data.shape[-1] * data.shape[-2])) if data.kind == "image" else len(z)

        @torch.no_grad()
        def write(step: int, path):
            with eval_mode(G):
                # stylegan2's noise inputs draw from torch's generator, which the training step owns
                # (and checkpoints): a grid must leave it as it was, or a run stopped and resumed at
                # a step that writes a grid would continue on another stream.
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    x = torch.cat([from_model(G(zc, None if y is None else y[i:i + per]), data.kind, data.scale)
                                   for i, zc in zip(range(0, len(z), per), z.split(per))])
            if data.kind == "points":
                return viz.save_scatter(x, path, real=real, title=f"step {step}")
            return viz.save_grid(x, path, nrow=nrow)

        return write

    def preview(self, cfg, data):
        """64 training images drawn with a fixed seed (none for 2-D points: the grid plots them)."""
        if data.kind != "image":
            return None
        g = torch.Generator().manual_seed(0)
        return data.read(torch.randperm(len(data), generator=g)[:64])

    def evaluator(self, cfg, data, st, dist):
        if not cfg.eval.every:
            return None
        return InTrainingEval(cfg, data, n_classes_of(data), st.device, dist)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        classes = data_meta.get("classes") or []
        G, D = build_models(cfg.model, tuple(data_meta["shape"]), len(classes))
        return {"G": G, "D": D}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        from gankit.tasks.generate.onnx_graph import generate_graphs

        return generate_graphs(cfg, nets, data_meta)

    def card(self, cfg, data_meta: dict) -> Card:
        cond = " of a chosen class" if cfg.model.conditional else ""
        image = data_meta.get("kind") == "image"  # the Hub has no tag for class-conditional or 2-D points
        return Card("unconditional-image-generation" if image and not cfg.model.conditional else None,
                    "noise z" + (" + a class label" if cfg.model.conditional else "")
                    + (" + InfoGAN codes" if cfg.model.info_cat or cfg.model.info_cont else "") + " -> an example",
                    f"Sampling new examples{cond} resembling the training data, for research, teaching and "
                    "data exploration; truncation trades variety for typical samples.",
                    "Samples imitate the training set, its biases and its defects; a GAN can memorise training "
                    "examples (`gankit eval` measures memorization), so do not publish samples of private data. "
                    "The scores under Metrics hold for the protocol stated with each, nothing wider.",
                    (cfg.model.arch,))

    def describe_data(self, data) -> list[str]:
        shape = "x".join(map(str, data.shape))
        lines = [f"data: {data.name}: {len(data)} examples of {shape}"
                 + (f", {len(data.classes)} classes" if data.y is not None and data.classes else "")]
        return lines + [f"data: {n}" for n in data.notes]


def style_mix(st, n: int, s: slice) -> tuple | None:
    """Style mixing regularisation (Karras et al. 2019/2020): for each of the global batch's n
    samples a second latent z2 and the layer `cut` from which G reads w2 = mapping(z2): uniform in
    [1, num_ws), or num_ws (no mixing) with probability 1 - model.style_mix. Drawn from the latent
    generator on the device, this rank's slice `s`; None unless stylegan2 with style_mix > 0."""
    cfg = st.cfg.model
    if cfg.arch != "stylegan2" or cfg.style_mix == 0:
        return None
    G, gen, dev = st.nets["G"], st.gens["z"], st.device
    z2 = torch.randn(n, G.in_dim, generator=gen, device=dev)
    cut = torch.randint(1, G.num_ws, (n,), generator=gen, device=dev)
    mixed = torch.rand(n, generator=gen, device=dev) < cfg.style_mix
    return z2[s], torch.where(mixed, cut, G.num_ws)[s]  # (n, in_dim), (n,) int64


def grid_latents(cfg, n: int, n_classes: int, seed: int, device) -> tuple:
    """(G input, labels or None, images per row) for a grid of about n samples.

    Conditional models get one class per row; InfoGAN models one categorical code per row.
    Latents are drawn on the CPU, so the same seed gives the same grid on every device."""
    g = torch.Generator().manual_seed(seed)
    rows = n_classes if cfg.model.conditional else cfg.model.info_cat
    y = c_cat = None
    if rows:
        cols = max(1, n // rows)
        n = rows * cols
        per_row = torch.arange(rows).repeat_interleave(cols)  # (rows * cols,)
        y = per_row if cfg.model.conditional else None
        c_cat = per_row if not cfg.model.conditional else None
    else:
        cols = None
    lat = draw_latent(cfg.model, n, g, "cpu", c_cat=c_cat)
    to = (lambda t: None if t is None else t.to(device))
    return to(lat.z_in), to(y), cols


TASK = GenerateTask()
