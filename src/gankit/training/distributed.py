"""Data-parallel training over processes launched by torchrun (`torch.distributed`).

Every rank holds the whole model, the whole dataset (once, on its device) and the same sampler and
latent generator, so every rank knows the whole global batch; rank r trains on its slice
[r*b, (r+1)*b) of it (b = train.batch / world). DistributedDataParallel averages the gradients
(the engine wraps G and `Judge(D)`, D's update forward); this module adds what DDP does not do:
the loss averaged so every rank's non-finite guard decides alike (`mean_loss`), a flat-buffer
gradient all-reduce for `train.ddp=false` (`sync_grads`), BatchNorm over the global batch on
CPU, and the collectives the loop needs (agree once per log step, broadcast a checkpoint, gather
samples).
State dicts keep their plain names, so a checkpoint moves between world sizes as it is.

Rank 0 alone writes (logs, grids, checkpoints, the progress bar); `Dist.world == 1` (no torchrun)
makes every method a no-op.
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from gankit.errors import GankitError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- set-up -----------------------------------------------------------------------------
    @classmethod
    def from_env(cls, device: torch.device) -> Dist:
        """The process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK,
        MASTER_ADDR/PORT); a single process when there is none. gloo on CPU, nccl on CUDA."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            # torch.distributed.nn.functional's collectives default to `group=group.WORLD`,
            # evaluated when the module is imported: imported after the group exists (torch
            # 2.13: DistributedDataParallel's constructor imports torch._dynamo, which imports
            # it; so does GlobalBatchNorm), ten defaults hold the group for good and it outlives
            # destroy_process_group (see `close`). Imported first, they hold no group.
            import torch.distributed.nn.functional  # noqa: F401
            backend = "nccl" if device.type == "cuda" else "gloo"
            timeout = datetime.timedelta(seconds=float(os.environ.get("GANKIT_DIST_TIMEOUT", "600")))
            dist.init_process_group(backend, timeout=timeout)
        return cls(rank, world, local)

    def device(self, device: torch.device) -> torch.device:
        """Each rank's own GPU (cuda:LOCAL_RANK); the CPU is shared."""
        if device.type == "cuda" and self.active:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def shard(self, global_batch: int) -> tuple[int, int]:
        """(start, size) of this rank's slice of a global batch."""
        if global_batch % self.world:
            raise GankitError(f"train.batch {global_batch} is the global batch and must divide evenly "
                              f"over {self.world} processes; use a multiple of {self.world}")
        b = global_batch // self.world
        return self.rank * b, b

    def close(self, clean: bool = True) -> None:
        """Leave the process group. After a clean run all ranks leave together (a rank that
        tears down its group while another still talks to it aborts in gloo's threads).

        destroy_process_group tears the group down only when nothing else holds it. The run's
        DistributedDataParallel wrappers do, from a reference cycle (the engine and its step
        runner) that only a collection frees: hence the gc.collect. Otherwise (and when
        torch.distributed.nn was imported after the group, see `from_env`) the group, gloo's
        threads and its sockets outlived the run until the interpreter's exit, after the other
        rank had gone, and now and then, mostly on a busy machine, a finished run's rank died
        there with "terminate called without an active exception" (SIGABRT): the job failed."""
        if self.active and dist.is_initialized():
            gc.collect()  # the finished run's DDP wrappers: the group's other holders
            if clean:
                dist.barrier()
            dist.destroy_process_group()

    # -- collectives (all no-ops for one process) --------------------------------------------
    def sync_grads(self, loss: Tensor, params) -> Tensor:
        """Average the gradients of `params` and the loss over ranks in place, with one
        all-reduce; returns the averaged loss. Must be called by every rank in the same order."""
        if not self.active:
            return loss
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().float().reshape(1)])
        dist.all_reduce(flat)
        flat.div_(self.world)
        torch._foreach_copy_(grads, [t.view_as(g) for t, g in zip(flat[:-1].split([g.numel() for g in grads]), grads)])
        return flat[-1]

    def mean_loss(self, loss: Tensor, params=None) -> Tensor:
        """The loss averaged over ranks (gradients left alone: DistributedDataParallel averaged
        them in backward). Same signature as `sync_grads`."""
        return self.mean_(loss.detach().float().reshape(1).clone())[0]

    def mean_(self, t: Tensor) -> Tensor:
        """Average a tensor over ranks in place."""
        if self.active:
            dist.all_reduce(t)
            t.div_(self.world)
        return t

    def agree(self, acc: Tensor, **flags: bool) -> dict[str, bool]:
        """The loop's one collective per log step: `acc` (the window's summed scalars) averaged over
        ranks in place, and each flag true on every rank when it is true on any. A flag that rank 0
        alone decides (its clock) is passed as False by the others. One all-reduce in all."""
        if not self.active:
            return flags
        n = acc.numel()
        t = torch.cat([acc.reshape(-1), torch.tensor([float(v) for v in flags.values()], dtype=acc.dtype,
                                                     device=acc.device)])
        dist.all_reduce(t)  # sums: the scalars' over ranks, and how many ranks raised each flag
        acc.copy_(t[:n].view_as(acc)).div_(self.world)
        return {k: v > 0 for k, v in zip(flags, t[n:].tolist())}

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank (pickled: a checkpoint, a verdict, an error message)."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._collective_device())
        return box[0]

    def gather(self, obj) -> list | None:
        """Every rank's `obj`, in rank order, on rank 0 (None elsewhere)."""
        if not self.active:
            return [obj]
        out = [None] * self.world if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def _collective_device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")


class GlobalBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the global batch, for any backend (torch's
    SyncBatchNorm runs on GPUs only). Per channel, one differentiable all-reduce of
    [sum x, sum x^2, count] gives the global mean and biased variance; running statistics use
    the unbiased variance, as BatchNorm does. Evaluation uses the running statistics: no
    collective. Same parameters and buffers as BatchNorm, so state dicts are interchangeable."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable all-reduce

        C = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        local = torch.cat([xf.sum(dims), xf.square().sum(dims), xf.new_full((1,), x.numel() // C)])
        total = all_reduce(local)  # (2C + 1,): sums over every rank's slice
        n = total[-1]
        mean = total[:C] / n
        var = (total[C:2 * C] / n - mean.square()).clamp_min(0)  # biased, for normalising
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_((var * n / (n - 1).clamp_min(1)).detach(), m)
                self.num_batches_tracked.add_(1)
        shape = (1, C) + (1,) * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_global_bn(module: torch.nn.Module) -> torch.nn.Module:
    """Every BatchNorm in `module` replaced by GlobalBatchNorm, parameters and buffers kept."""
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        new.load_state_dict(module.state_dict())
        return new.to(next(iter(module.state_dict().values())).device) if module.state_dict() else new
    for name, child in module.named_children():
        setattr(module, name, convert_global_bn(child))
    return module


def reseed_for_rank(seed: int, rank: int, step: int, device: torch.device) -> None:
    """A rank's own stream for dropout (the torch generators): distinct per rank and per resume
    point, the same on every rerun."""
    s = (seed * 1_000_003 + rank * 10_007 + step) % (2**63)
    torch.manual_seed(s)
