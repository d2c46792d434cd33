"""What every task's phases write the same way: D frozen while G updates (`frozen`, also what
latent search freezes G with), and the step's scalars handed to the trainer by name (`stats`).

The trainer sums each step's scalars into `st.acc`, one slot per name of the task's
`stat_names`; `stats` builds that vector from keyword names, so no phase lines up a positional
stack with a tuple defined elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """No gradients for the modules' parameters inside the block: D while G updates (G's backward
    through D then computes G's gradients only; D has had its update this step), or G and a
    prior while a latent is searched. Each parameter's requires_grad is restored on the way out,
    whatever happens."""
    params = [p for m in modules if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


def stats(names: tuple[str, ...], dtype: torch.dtype | None = None, **named: Tensor | float) -> Tensor:
    """The step's scalars as one vector in `names` order (a task's `stat_names`), each detached;
    a name not given is 0, a plain number (a count such as gan_steps=1.0) a 0-d tensor like the
    first tensor given. `dtype` casts every entry (None: the tensors' own dtype). Allocates on the
    device only (no host copy), so it is safe inside a captured CUDA graph."""
    unknown = set(named) - set(names)
    if unknown:
        raise KeyError(f"stats: {', '.join(sorted(unknown))} not in the task's names {names}")
    ref = next(v for v in named.values() if isinstance(v, Tensor))
    if dtype is not None:
        ref = ref.to(dtype)
    out = []
    for name in names:
        v = named.get(name, 0.0)
        if isinstance(v, Tensor):
            out.append(v.detach() if dtype is None else v.detach().to(dtype))
        else:
            out.append(ref.new_full((), float(v)))
    return torch.stack(out)
