"""`TrainState`: everything a training run holds while it trains.

A run's state is its networks, optimisers, learning-rate schedules, EMA copies, non-finite guard,
batch samplers, every random generator, any task-owned state (an image pool) and the step. What of
it a checkpoint keeps, and how it is read back, is `gankit.training.checkpoint` (`pack`, `unpack`).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


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
    # gradient accumulation: the micro-batch size this rank's share of the batch is split into
    # (train.batch_gpu), or None when each update runs on the whole share at once
    batch_gpu: int | None = None
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
        self.zero_grad(opt)
        loss.backward()
        self.apply(opt, loss)

    # Gradient accumulation is `update` in three parts: zero_grad, then per micro-batch its
    # forward and `loss_i.backward()` inside `micro_batch(last)`, then one `apply` with the whole
    # batch's loss (the sum of the micro-batches' scaled losses, for the guard).
    def zero_grad(self, opt: str) -> None:
        self.opts[opt].zero_grad(set_to_none=True)

    def apply(self, opt: str, loss: Tensor) -> None:
        """The guarded optimiser step on the gradients accumulated since `zero_grad`; `loss`: the
        whole update's loss (its gradients' source), which the guard checks too."""
        o, params = self.opts[opt], self.params(opt)
        checked = self.sync(loss, params) if self.sync else loss
        if self.guard.ok(checked, params, o):
            o.step()

    @contextmanager
    def micro_batch(self, last: bool):
        """Around one micro-batch's forward and backward: DistributedDataParallel reduces the
        gradients in the backward of a forward made outside `no_sync` (the decision is taken at
        forward time), so every micro-batch but the last runs inside it and the last one's
        backward averages the sum accumulated in .grad once. Anything else backpropagated into
        the same networks must come before the last micro-batch. A no-op without DDP wrappers."""
        with ExitStack() as stack:
            if not last:
                for m in self.fwd.values():
                    if hasattr(m, "no_sync"):
                        stack.enter_context(m.no_sync())
            yield

    def end_step(self) -> None:
        """After the task's phases: EMA updates, the guard's step count."""
        for name, ema in self.emas.items():
            ema.update(self.nets[name])
        self.guard.end_step()

    @property
    def sampling_nets(self) -> dict[str, nn.Module]:
        """The networks sampling uses: the EMA copy where one is kept."""
        return {n: (self.emas[n].G if n in self.emas else m) for n, m in self.nets.items()}

    # -- random streams -----------------------------------------------------------------------
    def rng_state(self) -> dict:
        """This process's random streams: torch's (dropout), the augmentation generator, CUDA's."""
        rng = {"torch": torch.get_rng_state()}
        if self.gens.get("aug") is not None:
            rng["aug"] = self.gens["aug"].get_state()
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return rng
