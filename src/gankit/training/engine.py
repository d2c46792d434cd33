"""`Engine`: a task's training state built once from a config, and the step that advances it.

`Engine.build(cfg, data, device)` asks the task (`cfg.task`) for its networks and objective, then
adds what every task shares: device placement, frozen blocks (`gankit.training.freeze`),
SyncBatchNorm, channels-last, fused Adam optimisers, learning-rate schedules, EMA copies, the
non-finite guard, the run's own random generators, DistributedDataParallel wrappers and
torch.compile. The result is one
`TrainState` (`gankit.training.state`), which a checkpoint keeps (`gankit.training.checkpoint`).

`Engine.step(t)` runs training step t: the task draws its inputs (`Task.draw`), the
`StepRunner` (`gankit.training.capture`) runs the task's phases on them eagerly or as a
replayed CUDA graph, then the schedules advance. The trainer (`gankit.training.loop`) and the
benchmark (`gankit.bench`) both use it.

Capture needs static shapes and no host work inside the step; `graph_blockers` lists what in a
config prevents it, and the engine falls back to eager with that reason.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from gankit.config import RunConfig
from gankit.errors import GankitError, warn
from gankit.tasks import get_task
from gankit.util import set_lr
from gankit.training.capture import StepRunner
from gankit.training.checkpoint import unpack
from gankit.training.distributed import Dist, convert_global_bn, reseed_for_rank
from gankit.training.precision import static as static_precision
from gankit.training.ema import EMA
from gankit.training.freeze import freeze, trainable
from gankit.training.safety import NonFiniteGuard, uses_found_inf
from gankit.training.state import TrainState


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
    return why + get_task(cfg.task).blockers(cfg)


def micro_batch(cfg: RunConfig, world: int = 1) -> int | None:
    """The micro-batch size each rank's share of train.batch is split into (gradient
    accumulation: train.batch_gpu), or None when a rank's update runs on its whole share at once.
    Refuses, in one line, a share that train.batch_gpu does not divide and accumulation in a task
    that does not implement it."""
    b, share = cfg.train.batch_gpu, cfg.train.batch // world
    if b is None or b == share:
        return None
    if share % b:
        raise GankitError(f"train.batch_gpu = {b}: each of the {world} processes trains on {share} of train.batch = "
                          f"{cfg.train.batch}, which micro-batches of {b} do not divide; use a train.batch_gpu "
                          f"that divides {share} (or null)")
    task = get_task(cfg.task)
    if not task.accumulates:
        raise GankitError(f"train.batch_gpu = {b} < train.batch = {cfg.train.batch}: the {cfg.task} task does not "
                          "implement gradient accumulation; set train.batch_gpu to null (or to train.batch) and "
                          "lower train.batch to fit memory")
    return b


class Engine:
    def __init__(self, st: TrainState, mode: str, why: str):
        self.st, self.mode, self.why = st, mode, why
        self.ddp = False
        self.frozen: list[str] = []
        self.schedule = get_task(st.cfg.task).schedule(st.cfg, st)  # what moves with the step (or None)
        self.runner = StepRunner(self._phases, mode, st.device, before_capture=self._drop_grads)

    @classmethod
    def build(cls, cfg: RunConfig, data, device: torch.device, mode: str = "auto",
              dist: Dist | None = None, precision: str | None = None) -> Engine:
        """The training state for `cfg` on `data`. `mode`: auto (graph on CUDA when nothing
        prevents it, else eager), eager, or static (the graph step without capture). `dist`:
        this process's place in a data-parallel job (default: alone). `precision`: "fp32" or
        "bf16" as the trainer resolved train.precision (`gankit.training.precision.choose`);
        default: without measuring (`precision.static`)."""
        dist = dist or Dist()
        task = get_task(cfg.task)
        shard = dist.shard(cfg.train.batch)  # the global batch must split evenly
        batch_gpu = micro_batch(cfg, dist.world)  # and each rank's share into micro-batches
        precision = precision or static_precision(cfg, device)
        torch.manual_seed(cfg.seed)  # initial weights (the same on every rank) and dropout masks
        # The task sees train.precision resolved, never auto; the state keeps the config as given.
        parts = task.build(replace(cfg, train=replace(cfg.train, precision=precision)), data, device, dist.rank)
        nets = {n: m.to(device) for n, m in parts.nets.items()}
        # before the optimisers and DDP wrappers, which then never see the frozen parameters
        frozen = freeze(cfg, task, nets, parts.groups)
        if dist.active:
            if cfg.train.sync_bn:  # batch statistics over the global batch, not each rank's slice
                conv = torch.nn.SyncBatchNorm.convert_sync_batchnorm if device.type == "cuda" else convert_global_bn
                nets = {n: conv(m) for n, m in nets.items()}  # torch's SyncBatchNorm has no CPU kernel
            reseed_for_rank(cfg.seed, dist.rank, 0, device)  # each rank its own dropout masks
        if cfg.train.channels_last and _images(data):
            nets = {n: m.to(memory_format=torch.channels_last) for n, m in nets.items()}
        fwd = {n: nets.get(n, m) for n, m in parts.forwards.items()}
        why = graph_blockers(cfg, device)
        if mode == "auto":
            mode = "eager" if why else "graph"
        if mode == "static" and task.blockers(cfg):
            raise ValueError(f"static step mode: {'; '.join(task.blockers(cfg))}")
        graph = mode in ("graph", "static")
        opts = {o: _optimizer(cfg, [p for n in group for p in trainable(nets[n])], parts.lrs[o],
                              parts.betas.get(o, cfg.train.betas), device, capturable=mode == "graph")
                for o, group in parts.groups.items()}
        scheds = {o: s for o, s in ((o, _schedule(cfg, opt)) for o, opt in opts.items()) if s is not None}
        st = TrainState(
            cfg=cfg, task=task, data=data, device=device, dist=dist, nets=nets, groups=parts.groups,
            lrs=dict(parts.lrs), opts=opts, scheds=scheds, emas={n: EMA(nets[n], cfg.train.ema_decay) for n in parts.ema},
            guard=NonFiniteGuard(cfg.recover.skip_nonfinite, device), samplers=parts.samplers,
            gens={"z": torch.Generator(device=device).manual_seed(cfg.seed + 1),
                  "aug": None if mode == "graph" else
                  torch.Generator(device=device).manual_seed(cfg.seed + 3 + 7919 * dist.rank)},
            extra=parts.extra, obj=parts.objective, fwd=fwd, shard=shard,
            acc=torch.zeros(len(task.stat_names), device=device),
            sync=dist.sync_grads if dist.active else None, reg_scale=torch.ones((), device=device),
            precision=precision, batch_gpu=batch_gpu)
        ddp = dist.active and cfg.train.ddp and parts.ddp
        if ddp:
            _wrap_ddp(st)
        st.guard.on_device = all(uses_found_inf(o) for o in opts.values())
        if cfg.train.compile:
            _compile(st)
        e = cls(st, mode, "" if graph else "; ".join(why))
        e.ddp = ddp  # gradients averaged by DistributedDataParallel (else, data-parallel: one flat all-reduce)
        e.frozen = frozen  # train.log lines: what train.freeze_d / freeze_g froze
        return e

    # -- the step -----------------------------------------------------------------------------
    def step(self, t: int) -> None:
        """Training step t (0-based): the task's phases on freshly drawn inputs, then schedules."""
        st = self.st
        if self.schedule:  # the task's values for step t (e.g. R3GAN's burn-in: rates, penalty weight)
            self.schedule.apply(t)
        self.runner(st.task.draw(st), st.task.flags(st.cfg, t))
        for s in st.scheds.values():
            s.step()

    def _phases(self, inputs, flags) -> None:
        """What the CUDA graph holds: every D and G update of the step, EMA, the guard's count."""
        self.st.task.phases(self.st, inputs, flags)
        self.st.end_step()

    def _drop_grads(self) -> None:
        for o in self.st.opts.values():
            o.zero_grad(set_to_none=True)

    def forget_graphs(self) -> None:
        """After loading a checkpoint into the state: captured graphs point at replaced tensors."""
        self.runner.forget()

    def load(self, ck: dict, where: str = "checkpoint") -> int:
        """Load a checkpoint into the running state (resume, rollback); returns its step."""
        self.forget_graphs()
        return unpack(self.st, ck, where)

    def init_from(self, path: str) -> str:
        """train.init: start a fresh run from another run's weights (the networks both have, by
        name; EMA copies start from them too). Optimisers, schedules and the step start afresh.
        Returns a line for the log."""
        from gankit.training.checkpoint import load_checkpoint
        from gankit.training.store import CheckpointStore

        st, p = self.st, Path(path).expanduser()
        where = f"train.init {p}"
        if p.is_file():
            ck = load_checkpoint(p, map_location=st.device)
        elif (p / "checkpoints").is_dir():
            ck, p = CheckpointStore(p / "checkpoints").load_latest(st.device)
        else:
            raise GankitError(f"{where}: not a run directory or a checkpoint .pt")
        if ck["task"] != st.task.name:
            raise GankitError(f"{where}: a {ck['task']!r} run cannot initialise a {st.task.name!r} run")
        st.task.check_resume(st.data, ck.get("data") or {}, where)
        common = [n for n in st.nets if n in ck["nets"]]
        if not common:
            raise GankitError(f"{where}: none of this run's networks ({', '.join(st.nets)}) is in it")
        for n in common:
            try:
                st.nets[n].load_state_dict(ck["nets"][n])
            except RuntimeError:
                raise GankitError(f"{where}: network {n} has other shapes there (another architecture or width); "
                                  "initialise from a run with the same model settings") from None
            if n in st.emas:
                st.emas[n].G.load_state_dict(ck["nets"][n])
        return f"init: {', '.join(common)} from {p} (step {ck['step']})"

    def describe(self) -> str:
        """One line for the log: how the step runs, and why not faster."""
        if self.mode == "graph":
            return "step: one CUDA graph per step (captured after warm-up)"
        if self.mode == "static":
            return "step: graph-shaped, not captured"
        cfg = self.st.cfg
        extra = " + torch.compile" if cfg.train.compile and not get_task(cfg.task).double_backward(cfg) else ""
        return f"step: eager{extra} ({self.why})" if self.why else f"step: eager{extra}"

    # -- learning rates -------------------------------------------------------------------------
    def scale_lrs(self, f: float) -> None:
        """Learning rates = the task's x f (x the schedule's current factor), from now on."""
        for name, opt in self.st.opts.items():
            sched = self.st.scheds.get(name)
            lr = self.st.lrs[name]
            set_lr(opt, lr * f * (sched.lr_lambdas[0](sched.last_epoch) if sched else 1.0))
            if sched:
                sched.base_lrs = [lr * f for _ in sched.base_lrs]

    def lr(self, name: str) -> float:
        return float(self.st.opts[name].param_groups[0]["lr"])


def _images(data) -> bool:
    return getattr(data, "kind", "image") == "image"


def _wrap_ddp(st: TrainState) -> None:
    """DistributedDataParallel around the task's step forwards (for generation: G and D's update
    forward `Judge(D)`): DDP averages the gradients in buckets while backward still runs. Only
    the step's forwards go through the wrappers; everything else (penalties, the G update's pass
    through a frozen D, EMA, checkpoints) uses the plain modules, so state dicts keep their names
    and a checkpoint moves between world sizes. Buffers (BatchNorm statistics) stay per rank;
    `train.sync_bn` makes the batch statistics global."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [st.device.index] if st.device.type == "cuda" else None
    st.fwd = {n: DDP(m, device_ids=ids, broadcast_buffers=False) for n, m in st.fwd.items()}
    st.sync = st.dist.mean_loss  # gradients are averaged already; the guard's loss is not


def _compile(st: TrainState) -> None:
    """torch.compile the forward passes the step calls; state dicts keep their plain names."""
    if get_task(st.cfg.task).double_backward(st.cfg):
        warn("train.compile ignored: gradient penalties need double backward, which compiled "
             "graphs do not support; training eagerly")
        return
    for net in st.nets.values():
        for name in ("forward", "features", "head", "aux"):
            if hasattr(net, name) and callable(getattr(net, name)):
                setattr(net, name, torch.compile(getattr(net, name), dynamic=False))


def _optimizer(cfg: RunConfig, params: list, lr: float, betas, device: torch.device, capturable: bool = False):
    if cfg.train.optimizer == "rmsprop":  # the original WGAN's choice: momentum destabilises a clipped critic
        return torch.optim.RMSprop(params, lr=lr)
    # Fused Adam: one kernel per step on CUDA and ~3x faster than foreach on CPU; its found_inf flag
    # lets the non-finite guard skip an update without a host sync. A captured step needs the
    # learning rate as a device tensor (the schedule fills it in place) and capturable state.
    if capturable:
        return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), betas=betas, fused=True,
                                capturable=True)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


def _schedule(cfg: RunConfig, opt: torch.optim.Optimizer):
    """Learning-rate multiplier over train.steps: constant (None), linear decay to 0, cosine to 0,
    or hold-linear (constant for the first half, then linear to 0: CycleGAN's schedule)."""
    total = max(cfg.train.steps, 1)
    kind = cfg.train.lr_schedule
    if kind == "linear":
        f = lambda t: max(0.0, 1 - t / total)  # noqa: E731
    elif kind == "cosine":
        f = lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total) / total))  # noqa: E731
    elif kind == "hold-linear":
        half = total // 2
        f = lambda t: 1.0 if t < half else max(0.0, 1 - (t - half) / max(total - half, 1))  # noqa: E731
    else:
        return None
    # The schedule runs on the step count, whether or not this optimiser updated yet (a D that waits
    # for vocoder.gan_start, a phase skipped this step): torch's "step() before optimizer.step()"
    # warning is about a different mistake and would only alarm the user here.
    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    # Base rates as floats: with a tensor lr (captured steps) the scheduler then fills it from a
    # float, without reading a device tensor back every step.
    sched.base_lrs = [float(b) for b in sched.base_lrs]
    return sched
