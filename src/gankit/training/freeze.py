"""Frozen layers for fine-tuning: `train.freeze_d` / `train.freeze_g` = K freeze the first K blocks
of each discriminator / generator (Mo et al. 2020, "Freeze the Discriminator": D's input-side,
highest-resolution blocks keep their pretrained features and only the later ones adapt).

A network says what its blocks are (`ordered_blocks()`, in forward order; `gankit.models.base`);
the task says which networks are its discriminators and generators (`Task.freeze_targets`).
Freezing is `requires_grad = False` before the optimisers and the DistributedDataParallel
wrappers are built, so neither ever sees those parameters: no update, no optimiser state, no
gradient all-reduce. Gradients still flow *through* frozen layers (to G's output in G's update,
to the input in R1), only not *into* their weights.
"""

from __future__ import annotations

from torch import nn

from gankit.errors import GankitError, warn


def freeze(cfg, task, nets: dict[str, nn.Module], groups: dict[str, tuple[str, ...]]) -> list[str]:
    """Freeze what train.freeze_d / freeze_g say in `nets` (in place); returns lines for train.log.
    Refuses, in one line, a K past a network's block count, a network that defines no blocks, and
    a K that would leave a network nothing to train."""
    lines = []
    targets = task.freeze_targets(cfg, groups)
    for side, k in (("d", cfg.train.freeze_d), ("g", cfg.train.freeze_g)):
        if not k:
            continue
        key = f"train.freeze_{side}"
        names = [n for n in targets.get(side, ()) if n in nets]
        if not names:
            raise GankitError(f"{key} = {k}: the {cfg.task} task has no {'discriminator' if side == 'd' else 'generator'} "
                              f"to freeze; set {key}=0")
        for name in names:
            net = nets[name]
            arch = type(net).__name__
            blocks = net.ordered_blocks() if callable(getattr(net, "ordered_blocks", None)) else []
            if not blocks:
                raise GankitError(f"{key} = {k}: network {name} ({arch}) defines no blocks to freeze; "
                                  f"set {key}=0 (docs/ecosystem-finetune.md lists the archs that do)")
            # a generator's blocks cover all of it: at least its last block trains
            covers_all = not {id(p) for p in net.parameters()} - {id(p) for b in blocks for p in b.parameters()}
            most = len(blocks) - 1 if covers_all else len(blocks)
            if k > most:
                why = " (freezing them all would leave nothing to train)" if k == len(blocks) else ""
                raise GankitError(f"{key} = {k}: network {name} ({arch}) has {len(blocks)} blocks{why}; use 0 to {most}")
            params = [p for b in blocks[:k] for p in b.parameters()]
            for p in params:
                p.requires_grad_(False)
            n_frozen = sum(p.numel() for p in params)
            total = sum(p.numel() for p in net.parameters())
            lines.append(f"frozen: {name}'s first {k} of {len(blocks)} blocks ({n_frozen:,} of {total:,} parameters)")
    if lines and not cfg.train.init:
        warn("train.freeze_d/freeze_g without train.init: the frozen blocks keep their random initial weights")
    return lines


def trainable(module: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser updates: those not frozen."""
    return [p for p in module.parameters() if p.requires_grad]
