"""Exponential moving average of the generator's weights (Yazici et al. 2019; Karras et al.).

After each G update t (counting from 0):  decay_t = min(decay, (1 + t) / (10 + t))
                                          w_ema <- decay_t * w_ema + (1 - decay_t) * w
The ramp-up keeps early averages from being dominated by the random initial weights. Buffers
(BatchNorm statistics) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, G: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.G = copy.deepcopy(G).eval().requires_grad_(False)

    def decay_at(self, t: int) -> float:
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, G: nn.Module) -> None:
        d = self.decay_at(self.updates)
        ema_p = list(self.G.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in G.parameters()], 1 - d)  # ema += (1-d)(p-ema)
        for b_ema, b in zip(self.G.buffers(), G.buffers()):
            b_ema.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.updates = int(state["updates"])
