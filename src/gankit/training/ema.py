"""Exponential moving average of the generator's weights (Yazici et al. 2019; Karras et al.).

After each G update t (counting from 0):  decay_t = min(decay, (1 + t) / (10 + t))
                                          w_ema <- decay_t * w_ema + (1 - decay_t) * w
The ramp-up keeps early averages from being dominated by the random initial weights. `cap` (a
device scalar, `decay` unless a burn-in schedule moves it: `gankit.tasks.generate.burnin`) is the
ceiling actually applied, so decay_t = min(cap, (1 + t) / (10 + t)). Buffers
(BatchNorm statistics) are copied, not averaged. The update count lives on the device, so an
update reads nothing back to the host and can be captured in a CUDA graph.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gankit.util import full


class EMA:
    def __init__(self, G: nn.Module, decay: float):
        self.decay = decay
        self.G = copy.deepcopy(G).eval().requires_grad_(False)
        device = next(G.parameters()).device
        self._t = torch.zeros((), dtype=torch.float64, device=device)  # updates so far
        self.cap = torch.tensor(decay, dtype=torch.float64, device=device)  # the decay's ceiling now

    @property
    def updates(self) -> int:
        return int(self._t.item())

    def decay_at(self, t: int) -> float:
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, G: nn.Module) -> None:
        t = self._t
        d = torch.minimum((1 + t) / (10 + t), self.cap)  # decay_at(t), on the device
        w = full(1 - d)  # full precision: float32, or float64 in reference runs
        ema_p = list(self.G.parameters())
        # ema += (1-d)(p - ema). The weight goes in as a list of 0-dim tensors: a bare tensor
        # would bind to the Scalar overload, whose conversion reads the value back to the host
        # (a sync, and an error inside CUDA-graph capture).
        torch._foreach_lerp_(ema_p, [p.detach() for p in G.parameters()], [w] * len(ema_p))
        for b_ema, b in zip(self.G.buffers(), G.buffers()):
            b_ema.copy_(b)
        t.add_(1)

    def state_dict(self) -> dict:
        return {"weights": self.G.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["weights"])
        self._t.fill_(int(state["updates"]))
