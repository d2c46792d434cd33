"""The training step and everything it touches, built once from a config.

`Engine` holds the networks, optimisers, schedules, EMA, guard, sampler and random generators;
`Engine.step(t)` runs training step t: n_critic D updates, one G update, the EMA update, the
schedules. The trainer (`gankit.training.loop`) and the benchmark (`gankit.bench`) both use it.

Two ways to run a step, chosen once (`Engine.mode`, with the reason in `Engine.why`):

- ``eager``: draw a batch, run the D and G phases (`gankit.training.step`) op by op.
- ``graph``: the batch indices and latents are drawn outside, copied into static buffers, and the
  rest (gather + scaling of the real batch, every D phase, the G phase, the EMA update, the guard)
  is one function of those buffers with no host synchronisation. On CUDA it is captured once as a
  CUDA graph and replayed; ``static`` runs the same function without capture (any device), which
  is how the CPU test proves the captured function equals the eager one.

Capture needs static shapes and no host work inside the step; `graph_blockers` lists what in a
config prevents it, and the engine falls back to eager with that reason.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gankit.config import RunConfig
from gankit.data import BatchSampler, Dataset
from gankit.errors import warn
from gankit.models import build_models
from gankit.models.base import Judge
from gankit.models.latent import draw_latent
from gankit.regularizers import instance_noise_std
from gankit.training.distributed import Dist, convert_global_bn, reseed_for_rank
from gankit.training.ema import EMA
from gankit.training.safety import NonFiniteGuard, uses_found_inf
from gankit.training.step import D_STATS, G_STATS, Batch, Objective, d_step, g_step

WARMUP = 3  # eager-equivalent runs of each step variant before it is captured (lazy inits, autotune)


def graph_blockers(cfg: RunConfig, device: torch.device) -> list[str]:
    """Why the step of `cfg` cannot be captured as a CUDA graph on `device` ([] when it can)."""
    why = []
    if device.type != "cuda":
        why.append("CUDA graphs need a CUDA device")
    if not cfg.train.cuda_graph:
        why.append("train.cuda_graph is false")
    if cfg.train.compile:
        why.append("train.compile is on (torch.compile schedules its own kernels)")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        why.append("data-parallel training (gradient all-reduces inside the step)")
    if cfg.train.optimizer != "adam":
        why.append(f"train.optimizer={cfg.train.optimizer} (only fused Adam is captured)")
    why += _shape_blockers(cfg)
    return why


def _shape_blockers(cfg: RunConfig) -> list[str]:
    """What the graph-shaped step itself does not implement, on any device."""
    why = []
    if cfg.reg.instance_noise:
        why.append("reg.instance_noise changes its strength every step")
    if not cfg.train.reuse_fakes:
        why.append("train.reuse_fakes is false")
    return why


@dataclass
class Engine:
    cfg: RunConfig
    data: Dataset
    device: torch.device
    G: torch.nn.Module
    D: torch.nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler | None
    sched_d: torch.optim.lr_scheduler.LRScheduler | None
    ema: EMA | None
    obj: Objective
    guard: NonFiniteGuard
    sampler: BatchSampler
    z_gen: torch.Generator  # latents and codes
    # Augmentation, penalties, instance noise. None: the device's default generator, which is
    # what a CUDA graph can replay (its state is checkpointed with the other torch states).
    aug_gen: torch.Generator | None
    labels: bool  # does the step need y?
    mode: str = "eager"
    why: str = ""  # why the step runs eagerly, when it does
    dist: Dist = Dist()
    # Set by build: the scalars summed on the device (read every log.every steps), this rank's
    # (start, size) of the global batch, the gradient all-reduce (None alone), captured graphs
    # by R1 pattern and warm-up runs per pattern.
    acc_d: Tensor = field(init=False)
    acc_g: Tensor = field(init=False)
    _shard: tuple[int, int] = field(init=False)
    _sync: object = field(init=False)
    # The forwards the step calls: G and D.judge alone, their DDP wrappers in a data-parallel job.
    _g_fwd: torch.nn.Module = field(init=False)
    _judge: object = field(init=False)
    _graphs: dict = field(init=False, default_factory=dict)
    _runs: dict = field(init=False, default_factory=dict)

    @classmethod
    def build(cls, cfg: RunConfig, data: Dataset, n_classes: int, device: torch.device,
              mode: str = "auto", dist: Dist | None = None) -> Engine:
        """Networks, optimisers and state for `cfg`. `mode`: auto (graph on CUDA when nothing
        prevents it, else eager), eager, or static (the graph step without capture). `dist`:
        this process's place in a data-parallel job (default: alone)."""
        dist = dist or Dist()
        dist.shard(cfg.train.batch)  # the global batch must split evenly
        torch.manual_seed(cfg.seed)  # initial weights (the same on every rank) and dropout masks
        G, D = build_models(cfg.model, data.shape, n_classes)
        G, D = G.to(device), D.to(device)
        if dist.active:
            if cfg.train.sync_bn:  # batch statistics over the global batch, not each rank's slice
                if device.type == "cuda":
                    G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(G)
                    D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(D)
                else:  # torch's SyncBatchNorm has no CPU kernel
                    G, D = convert_global_bn(G), convert_global_bn(D)
            reseed_for_rank(cfg.seed, dist.rank, 0, device)  # each rank its own dropout masks
        if cfg.train.channels_last and data.kind == "image":
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        why = graph_blockers(cfg, device)
        if mode == "auto":
            mode = "eager" if why else "graph"
        graph = mode in ("graph", "static")
        if mode == "static" and _shape_blockers(cfg):
            raise ValueError(f"static step mode: {'; '.join(_shape_blockers(cfg))}")
        opt_g = _optimizer(cfg, G, cfg.train.lr_g, device, capturable=mode == "graph")
        opt_d = _optimizer(cfg, D, cfg.train.lr_d, device, capturable=mode == "graph")
        e = cls(cfg, data, device, G, D, opt_g, opt_d, _schedule(cfg, opt_g), _schedule(cfg, opt_d),
                EMA(G, cfg.train.ema_decay) if cfg.train.ema else None,
                Objective.from_config(cfg, n_classes), NonFiniteGuard(cfg.recover.skip_nonfinite, device),
                BatchSampler(len(data), cfg.train.batch, cfg.seed, device),
                torch.Generator(device=device).manual_seed(cfg.seed + 1),
                None if mode == "graph" else torch.Generator(device=device).manual_seed(cfg.seed + 3 + 7919 * dist.rank),
                labels=cfg.model.conditional or cfg.model.d_head != "plain",
                mode=mode, why="" if graph else "; ".join(why), dist=dist)
        e._shard = dist.shard(cfg.train.batch)
        e._sync = dist.sync_grads if dist.active else None
        e._g_fwd, e._judge = e.G, None
        if dist.active and cfg.train.ddp:
            e._wrap_ddp()
        e.guard.on_device = uses_found_inf(opt_g) and uses_found_inf(opt_d)
        if cfg.train.compile:
            e._compile()
        e.acc_d = torch.zeros(len(D_STATS), device=device)
        e.acc_g = torch.zeros(len(G_STATS), device=device)
        if graph:
            e._buffers()
        return e

    # -- eager ------------------------------------------------------------------------------
    def draw(self) -> Batch:
        """This rank's slice of the next global batch: indices and latents are drawn for the whole
        global batch on every rank (same sampler, same generator), so the data stream does not
        depend on the number of processes."""
        idx = self.sampler.next()  # (B_global,) on the device
        lat = draw_latent(self.cfg.model, len(idx), self.z_gen, self.device)
        s = slice(self._shard[0], sum(self._shard))
        idx, c_cat, c_cont = idx[s], _cut(lat.c_cat, s), _cut(lat.c_cont, s)
        return Batch(self._real(idx), self.data.y[idx] if self.labels else None, lat.z_in[s], c_cat, c_cont)

    def _real(self, idx: Tensor) -> Tensor:
        x = self.data.to_model(self.data.x[idx])  # uint8 -> [-1, 1], fused into the step
        if self.cfg.train.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def step(self, t: int) -> None:
        """Training step t (0-based): n_critic D updates, one G update, EMA, schedules."""
        r1 = self._r1_flags(t)
        if self.mode == "eager":
            self._eager(t, r1)
        else:
            self._graph_step(r1)
        if self.sched_g:
            self.sched_g.step(), self.sched_d.step()

    def _r1_flags(self, t: int) -> tuple[bool, ...]:
        k, every = self.cfg.train.n_critic, self.cfg.reg.r1_every
        return tuple(self.cfg.reg.r1 > 0 and (t * k + i) % every == 0 for i in range(k))

    def _eager(self, t: int, r1: tuple[bool, ...]) -> None:
        cfg, obj, gen = self.cfg, self.obj, self.aug_gen
        noise = instance_noise_std(t, cfg.reg.instance_noise, cfg.reg.instance_noise_steps or cfg.train.steps)
        n = cfg.train.n_critic
        for k in range(n):  # 1. D phase, each update on a fresh batch; the last keeps its fakes' graph
            b = self.draw()
            keep = k == n - 1 and cfg.train.reuse_fakes
            d_stats, x_fake = d_step(self._g_fwd, self.D, self.opt_d, b, obj, gen, noise, r1[k],
                                     keep_fake_graph=keep, guard=self.guard, sync=self._sync,
                                     judge=self._judge)
            self.acc_d += d_stats
        if not cfg.train.reuse_fakes:  # the tutorial's way: G's update on fresh latents
            lat = draw_latent(cfg.model, cfg.train.batch, self.z_gen, self.device)
            s = slice(self._shard[0], sum(self._shard))
            b, x_fake = b._replace(z=lat.z_in[s], c_cat=_cut(lat.c_cat, s), c_cont=_cut(lat.c_cont, s)), None
        # 2. G phase: the updated D judges the fakes (one G forward per step when reused).
        self.acc_g += g_step(self._g_fwd, self.D, self.opt_g, b, x_fake, obj, gen, noise, guard=self.guard,
                             sync=self._sync)
        if self.ema:
            self.ema.update(self.G)
        self.guard.end_step()

    # -- graph ------------------------------------------------------------------------------
    def _buffers(self) -> None:
        """Static inputs of the graph step: n_critic batches of indices and latents."""
        k, B, m = self.cfg.train.n_critic, self._shard[1], self.cfg.model
        dev = self.device
        self._idx = torch.zeros(k, B, dtype=torch.long, device=dev)
        self._z = torch.zeros(k, B, m.z_dim + m.info_cat + m.info_cont, device=dev)
        self._c_cat = torch.zeros(k, B, dtype=torch.long, device=dev) if m.info_cat else None
        self._c_cont = torch.zeros(k, B, m.info_cont, device=dev) if m.info_cont else None

    def _fill(self) -> None:
        """Draw this step's indices and latents (same order as eager) into the static buffers."""
        s = slice(self._shard[0], sum(self._shard))
        for k in range(self.cfg.train.n_critic):
            self._idx[k].copy_(self.sampler.next()[s])
            lat = draw_latent(self.cfg.model, self.cfg.train.batch, self.z_gen, self.device)
            self._z[k].copy_(lat.z_in[s])
            if self._c_cat is not None:
                self._c_cat[k].copy_(lat.c_cat[s])
            if self._c_cont is not None:
                self._c_cont[k].copy_(lat.c_cont[s])

    def _core(self, r1: tuple[bool, ...]) -> None:
        """The step as a function of the static buffers: what the CUDA graph holds."""
        obj, gen, n = self.obj, self.aug_gen, self.cfg.train.n_critic
        for k in range(n):
            idx = self._idx[k]
            b = Batch(self._real(idx), self.data.y[idx] if self.labels else None, self._z[k],
                      None if self._c_cat is None else self._c_cat[k],
                      None if self._c_cont is None else self._c_cont[k])
            d_stats, x_fake = d_step(self._g_fwd, self.D, self.opt_d, b, obj, gen, 0.0, r1[k],
                                     keep_fake_graph=k == n - 1, guard=self.guard, sync=self._sync,
                                     judge=self._judge)
            self.acc_d += d_stats
        self.acc_g += g_step(self._g_fwd, self.D, self.opt_g, b, x_fake, obj, gen, 0.0, guard=self.guard,
                             sync=self._sync)
        if self.ema:
            self.ema.update(self.G)
        self.guard.end_step()

    def _graph_step(self, r1: tuple[bool, ...]) -> None:
        self._fill()
        if self.mode == "static":
            self._core(r1)
            return
        g = self._graphs.get(r1)
        if g is not None:
            g.replay()
            return
        runs = self._runs.get(r1, 0)
        if runs < WARMUP:  # warm up this variant on a side stream (allocations, autotuning)
            s = torch.cuda.Stream(self.device)
            s.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(s):
                self._core(r1)
            torch.cuda.current_stream(self.device).wait_stream(s)
            self._runs[r1] = runs + 1
            return
        g = torch.cuda.CUDAGraph()
        self.opt_g.zero_grad(set_to_none=True), self.opt_d.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            self._core(r1)  # recorded, not run
        self._graphs[r1] = g
        g.replay()

    def forget_graphs(self) -> None:
        """Drop the captured graphs and warm-up counts (after loading a checkpoint into the
        engine): a graph replays kernels on the tensors it was captured with."""
        self._graphs.clear()
        self._runs.clear()

    # -- options ----------------------------------------------------------------------------
    def _wrap_ddp(self) -> None:
        """DistributedDataParallel around G and around D's update forward (`Judge(D)`): DDP
        averages the gradients in buckets while backward still runs. Only the step's forwards go
        through the wrappers; everything else (penalties, the G update's pass through a frozen D,
        EMA, checkpoints) uses the plain modules, so state dicts keep their names and a
        checkpoint moves between world sizes. Buffers (BatchNorm statistics) stay per rank, as
        without DDP; `train.sync_bn` makes the batch statistics global."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        self._g_fwd = DDP(self.G, device_ids=ids, broadcast_buffers=False)
        self._judge = DDP(Judge(self.D), device_ids=ids, broadcast_buffers=False)
        self._sync = self.dist.mean_loss  # gradients are averaged already; the guard's loss is not

    def _compile(self) -> None:
        """torch.compile the forward passes the step calls; state dicts keep their plain names."""
        if self.cfg.reg.gp or self.cfg.reg.r1:
            warn("train.compile ignored: gradient penalties need double backward, which compiled "
                 "graphs do not support; training eagerly")
            return
        self.G.forward = torch.compile(self.G.forward, dynamic=False)
        for name in ("forward", "features", "head", "aux"):
            if hasattr(self.D, name):
                setattr(self.D, name, torch.compile(getattr(self.D, name), dynamic=False))

    def describe(self) -> str:
        """One line for the log: how the step runs, and why not faster."""
        if self.mode == "graph":
            return "step: one CUDA graph per step (captured after warm-up)"
        if self.mode == "static":
            return "step: graph-shaped, not captured"
        extra = " + torch.compile" if self.cfg.train.compile and not (self.cfg.reg.gp or self.cfg.reg.r1) else ""
        return f"step: eager{extra} ({self.why})" if self.why else f"step: eager{extra}"

    def load_optimizers(self, state_g: dict, state_d: dict) -> None:
        """Load optimiser states from a checkpoint written by any step mode: a captured step needs
        its learning rate as a device tensor (filled in place by the schedule), an eager one a
        float."""
        for opt, state in ((self.opt_g, state_g), (self.opt_d, state_d)):
            opt.load_state_dict(state)
            capturable = bool(opt.defaults.get("capturable"))
            for group in opt.param_groups:
                lr = float(group["lr"])
                group["lr"] = torch.tensor(lr, device=self.device) if capturable else lr

    def scale_lrs(self, f: float) -> None:
        """Learning rates = the config's x f (x the schedule's current factor), from now on."""
        for opt, sched, lr in ((self.opt_g, self.sched_g, self.cfg.train.lr_g),
                               (self.opt_d, self.sched_d, self.cfg.train.lr_d)):
            self.set_lr(opt, lr * f * (sched.lr_lambdas[0](sched.last_epoch) if sched else 1.0))
            if sched:
                sched.base_lrs = [lr * f for _ in sched.base_lrs]

    def set_lr(self, opt: torch.optim.Optimizer, lr: float) -> None:
        """Set every group's learning rate in place (a tensor lr must stay the same tensor)."""
        for group in opt.param_groups:
            if isinstance(group["lr"], Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr


def _cut(t: Tensor | None, s: slice) -> Tensor | None:
    return None if t is None else t[s]


def _optimizer(cfg: RunConfig, net: torch.nn.Module, lr: float, device: torch.device, capturable: bool = False):
    if cfg.train.optimizer == "rmsprop":  # the original WGAN's choice: momentum destabilises a clipped critic
        return torch.optim.RMSprop(net.parameters(), lr=lr)
    # Fused Adam: one kernel per step on CUDA and ~3x faster than foreach on CPU; its found_inf flag
    # lets the non-finite guard skip an update without a host sync. A captured step needs the
    # learning rate as a device tensor (the schedule fills it in place) and capturable state.
    if capturable:
        return torch.optim.Adam(net.parameters(), lr=torch.tensor(lr, device=device), betas=cfg.train.betas,
                                fused=True, capturable=True)
    return torch.optim.Adam(net.parameters(), lr=lr, betas=cfg.train.betas, fused=True)


def _schedule(cfg: RunConfig, opt: torch.optim.Optimizer):
    """Learning-rate multiplier over train.steps: constant (None), linear decay to 0, or cosine to 0."""
    total = max(cfg.train.steps, 1)
    if cfg.train.lr_schedule == "linear":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: max(0.0, 1 - t / total))
    elif cfg.train.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total) / total)))
    else:
        return None
    # Base rates as floats: with a tensor lr (captured steps) the scheduler then fills it from a
    # float, without reading a device tensor back every step.
    sched.base_lrs = [float(b) for b in sched.base_lrs]
    return sched
