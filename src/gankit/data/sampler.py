"""`BatchSampler`: batches of indices drawn on the training device, resumable from one integer.

The index stream is the concatenation of one random permutation per epoch; batch i is
stream[i*B : (i+1)*B]. Every example is seen once per epoch, every batch has the same size (static
shapes for later graph capture), and the whole state is `consumed`, the number of indices handed
out: epoch e's permutation is regenerated from (seed, e) on resume.
"""

from __future__ import annotations

import torch

from gankit.errors import GankitError


class BatchSampler:
    def __init__(self, n: int, batch: int, seed: int, device: torch.device | str = "cpu", host: bool = False):
        if batch > n:
            raise GankitError(f"batch size {batch} is larger than the dataset ({n} examples); "
                              f"use train.batch <= {n}")
        self.n, self.batch, self.seed = n, batch, seed
        self.device = torch.device(device)
        self.consumed = 0
        self._cache: dict[int, torch.Tensor] = {}
        # host: batches on the CPU, each epoch's permutation drawn on `device` (the same numbers as
        # the run's sampler there) and copied once (the streaming loader's replay: no per-batch sync)
        self.host = host

    @property
    def epoch(self) -> float:
        return self.consumed / self.n

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            g = torch.Generator(device=self.device)
            g.manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
            self._cache = {k: v for k, v in self._cache.items() if k >= epoch - 1}
            perm = torch.randperm(self.n, generator=g, device=self.device)
            self._cache[epoch] = perm.cpu() if self.host else perm
        return self._cache[epoch]

    def next(self) -> torch.Tensor:
        """The next batch of indices: int64 (B,) on the sampler's device."""
        e, off = divmod(self.consumed, self.n)
        B = self.batch
        if off + B <= self.n:
            idx = self._perm(e)[off:off + B]
        else:  # the batch straddles two epochs
            idx = torch.cat([self._perm(e)[off:], self._perm(e + 1)[:B - (self.n - off)]])
        self.consumed += B
        return idx

    def state_dict(self) -> dict:
        return {"consumed": self.consumed, "seed": self.seed, "n": self.n, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != self.n:
            raise GankitError(f"checkpoint's sampler covered {state['n']} examples, the data now has {self.n}")
        self.consumed, self.seed = int(state["consumed"]), int(state["seed"])
        self._cache.clear()
