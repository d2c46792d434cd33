"""`TrainState`: everything a training run holds, and the one checkpoint schema.

A run's state is its networks, optimisers, learning-rate schedules, EMA copies, non-finite guard,
batch samplers, every random generator, any task-owned state (an image pool) and the step.
`TrainState.state_dict(step)` writes exactly that as plain data; `load_state_dict` reads it
back. Resume, rollback, `gankit.run.Run.load` and `gankit export` all go through this schema:

    task      the task's name ("generate", "translate")
    step      training steps done
    config    the resolved config (gankit.config.to_dict)
    data      what a loaded model needs to know about its data (shape, classes, ...)
    nets      {name: state dict}                 every trained network
    opts      {name: optimiser state dict}
    scheds    {name: scheduler state dict}        when train.lr_schedule is not constant
    ema       {name: {"weights": state dict, "updates": n}}
    samplers  {name: sampler state}
    extra     {name: state}                       task-owned (image pools, ...)
    rng       {"z": shared latent generator, "torch", "aug", "cuda": this process's streams}
    rng_ranks [per-rank streams]                  written by the trainer (a collective)
    precision "fp32" | "bf16"                     what the forwards ran in (train.precision resolved)
    schema    2

Checkpoints written before the task layer (schema 1: top-level "G", "D", "opt_g", ...) are
upgraded on load by `upgrade`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from gankit.version import __version__
from gankit.config import to_dict
from gankit.errors import GankitError
from gankit.training.distributed import reseed_for_rank

SCHEMA = 2


@dataclass
class TrainState:
    cfg: Any  # RunConfig
    task: Any  # gankit.tasks.base.Task
    data: Any  # the task's data (Dataset, PairedData, ...)
    device: torch.device
    dist: Any  # gankit.training.distributed.Dist
    nets: dict[str, nn.Module]
    groups: dict[str, tuple[str, ...]]  # optimiser -> networks it updates
    lrs: dict[str, float]  # optimiser -> configured learning rate (before schedules and rollbacks)
    opts: dict[str, torch.optim.Optimizer]
    scheds: dict[str, Any]
    emas: dict[str, Any]  # network name -> EMA
    guard: Any  # NonFiniteGuard
    samplers: dict[str, Any]
    # z: latents (the same stream on every rank); aug: augmentation, penalties, noise (per rank;
    # None in graph mode: the device's default generator, which a CUDA graph can replay).
    gens: dict[str, torch.Generator | None]
    extra: dict[str, Any]
    obj: Any  # the task's objective
    fwd: dict[str, nn.Module]  # the forwards the phases call (DDP wrappers in a data-parallel job)
    shard: tuple[int, int]  # this rank's (start, size) of the global batch
    acc: Tensor  # the task's scalars summed on the device since the last log step
    sync: Any = None  # (loss, params) -> loss averaged over ranks (and gradients, without DDP)
    # a device scalar the task multiplies its gradient penalties' weights by (burn-in moves it; else 1)
    reg_scale: Tensor = field(default_factory=lambda: torch.ones(()))
    step: int = 0
    best: dict | None = None  # the best evaluation so far ({"fid": v, "step": s})
    rollbacks: int = 0
    precision: str = "fp32"  # train.precision as resolved for this run (gankit.training.precision)
    _params: dict = field(default_factory=dict)

    # -- updates ------------------------------------------------------------------------------
    def params(self, opt: str) -> list[nn.Parameter]:
        if opt not in self._params:
            self._params[opt] = [p for n in self.groups[opt] for p in self.nets[n].parameters()]
        return self._params[opt]

    def update(self, opt: str, loss: Tensor) -> None:
        """Backward `loss` into the networks optimiser `opt` updates and apply the update, unless
        the guard refuses it (a non-finite loss or gradient). In a data-parallel job `sync`
        averages the loss over ranks (so the guard decides alike everywhere) and, without
        DistributedDataParallel, the gradients too."""
        o, params = self.opts[opt], self.params(opt)
        o.zero_grad(set_to_none=True)
        loss.backward()
        checked = self.sync(loss, params) if self.sync else loss
        if self.guard.ok(checked, params, o):
            o.step()

    def end_step(self) -> None:
        """After the task's phases: EMA updates, the guard's step count."""
        for name, ema in self.emas.items():
            ema.update(self.nets[name])
        self.guard.end_step()

    @property
    def sampling_nets(self) -> dict[str, nn.Module]:
        """The networks sampling uses: the EMA copy where one is kept."""
        return {n: (self.emas[n].G if n in self.emas else m) for n, m in self.nets.items()}

    # -- checkpoints --------------------------------------------------------------------------
    def rng_state(self) -> dict:
        """This process's random streams: torch's (dropout), the augmentation generator, CUDA's."""
        rng = {"torch": torch.get_rng_state()}
        if self.gens.get("aug") is not None:
            rng["aug"] = self.gens["aug"].get_state()
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return rng

    def state_dict(self, step: int) -> dict:
        return {
            "schema": SCHEMA, "task": self.task.name, "step": step, "config": to_dict(self.cfg),
            "data": self.data.meta(),
            "nets": {n: m.state_dict() for n, m in self.nets.items()},
            "opts": {n: o.state_dict() for n, o in self.opts.items()},
            "scheds": {n: s.state_dict() for n, s in self.scheds.items()},
            "ema": {n: e.state_dict() for n, e in self.emas.items()},
            "samplers": {n: s.state_dict() for n, s in self.samplers.items()},
            "extra": {n: x.state_dict() for n, x in self.extra.items()},
            "rng": {**self.rng_state(), "z": self.gens["z"].get_state()},
            "rollbacks": self.rollbacks, "precision": self.precision, **({"best": self.best} if self.best else {}),
            "versions": {"gankit": __version__, "torch": str(torch.__version__)},
        }

    def load_state_dict(self, ck: dict, where: str = "checkpoint") -> int:
        """Load a checkpoint (any schema this version reads) into the live state; returns its step."""
        ck = upgrade(ck, where)
        if ck["task"] != self.task.name:
            raise GankitError(f"{where}: a {ck['task']!r} checkpoint cannot continue a {self.task.name!r} run")
        self.task.check_resume(self.data, ck.get("data") or {}, where)
        for n, m in self.nets.items():
            m.load_state_dict(ck["nets"][n])
        for n, o in self.opts.items():
            _load_optimizer(o, ck["opts"][n], self.device)
        for n, s in self.scheds.items():
            s.load_state_dict(ck["scheds"][n])
        for n, e in self.emas.items():
            e.load_state_dict(ck["ema"][n])
        for n, s in self.samplers.items():
            s.load_state_dict(ck["samplers"][n])
        for n, x in self.extra.items():
            x.load_state_dict(ck["extra"][n])
        self.rollbacks = int(ck.get("rollbacks", 0))
        self.best = ck.get("best")
        rng = ck["rng"]
        self.gens["z"].set_state(rng["z"])
        ranks = ck.get("rng_ranks") or [rng]
        self.step = step = int(ck["step"])
        if self.dist.active and len(ranks) != self.dist.world:  # another world size: fresh per-rank streams
            reseed_for_rank(self.cfg.seed, self.dist.rank, step, self.device)
            return step
        own = ranks[self.dist.rank] if self.dist.rank < len(ranks) else rng
        torch.set_rng_state(own["torch"])
        if self.device.type == "cuda" and "cuda" in own:
            torch.cuda.set_rng_state_all(own["cuda"])
        if self.gens.get("aug") is not None and "aug" in own:  # absent when written by a CUDA-graph run
            self.gens["aug"].set_state(own["aug"])
        return step


def _load_optimizer(opt: torch.optim.Optimizer, state: dict, device: torch.device) -> None:
    """Load an optimiser state written by any step mode: a captured step needs its learning rate
    as a device tensor (filled in place by the schedule), an eager one a float."""
    opt.load_state_dict(state)
    capturable = bool(opt.defaults.get("capturable"))
    for group in opt.param_groups:
        lr = float(group["lr"])
        group["lr"] = torch.tensor(lr, device=device) if capturable else lr


def upgrade(ck: dict, where: str = "checkpoint") -> dict:
    """A checkpoint in this version's schema: schema 1 (before tasks) is converted; a newer schema
    is refused with what to do."""
    schema = ck.get("schema", 1)
    if schema == SCHEMA:
        return ck
    if schema > SCHEMA:
        raise GankitError(f"{where}: checkpoint schema {schema} was written by a newer gankit "
                          f"(this one reads schema <= {SCHEMA}); upgrade gankit")
    if "G" not in ck or "D" not in ck:
        raise GankitError(f"{where}: schema-1 checkpoint without networks; it cannot be loaded")
    new = {k: v for k, v in ck.items() if k not in (
        "G", "D", "opt_g", "opt_d", "sched_g", "sched_d", "ema", "sampler")}
    new.update(schema=SCHEMA, task="generate", nets={"G": ck["G"], "D": ck["D"]},
               opts={"G": ck.get("opt_g"), "D": ck.get("opt_d")},
               scheds={"G": ck["sched_g"], "D": ck["sched_d"]} if "sched_g" in ck else {},
               ema={"G": {"weights": ck["ema"]["G"], "updates": ck["ema"]["updates"]}} if "ema" in ck else {},
               samplers={"x": ck["sampler"]} if "sampler" in ck else {}, extra={})
    return new
