"""What a task is: the contract between one application (noise -> image, image -> image, ...)
and the shared trainer in `gankit.training`.

The trainer knows nothing task-specific. It asks the task for:

1. its data (`load_data`) and its parts (`build`): the networks by checkpoint name, which
   networks each optimiser updates and at what rate, which networks keep an EMA, the modules
   whose forward a data-parallel job wraps in DistributedDataParallel, the batch samplers, any
   other state to checkpoint (an image pool), and the task's resolved objective;
2. one training step, split in two so that eager and CUDA-graph modes run the same code:
   `draw(st)` does the host-side and random-index work (batch indices, latents) and returns a
   tuple of tensors; `phases(st, inputs, flags)` is the device work (every D and G update) as a
   function of those tensors and of a small hashable `flags` value (`flags(cfg, t)`) that picks
   the step's variant (e.g. which D updates carry lazy R1). The trainer's `StepRunner` calls
   `phases` directly (eager) or copies `inputs` into static buffers and captures/replays it
   (`gankit.training.capture`). `phases` adds its scalars, in `stat_names` order, to `st.acc`
   and updates networks through `st.update(opt_name, loss)`, which holds the data-parallel
   gradient averaging and the non-finite guard, so the maths never sees them;
3. what the run directory shows and measures: `log_row` (one metrics.jsonl row from the summed
   scalars), `grid` (the image written every `log.grid_every` steps), `preview` (a few training
   images for data.png, optional), `evaluator` (metrics during training, optional);
4. for inference, `inference_nets(cfg, data_meta)`: the networks a loaded run needs, built empty
   (`gankit.run.Run` loads their weights from the checkpoint);
5. for sharing, `onnx_graphs` (what `gankit export --onnx` traces, as tensor functions) and
   `card` (the model card's task-specific text).

A task lives in its own folder, `gankit/tasks/<name>/`, and is listed once in
`gankit.tasks.TASKS`. docs/tasks.md walks through adding one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from gankit.errors import GankitError


@dataclass
class Parts:
    """What `Task.build` returns: everything the trainer owns for this task's run."""

    nets: dict[str, nn.Module]  # every trained network, by its name in checkpoints
    groups: dict[str, tuple[str, ...]]  # optimiser name -> the networks it updates
    lrs: dict[str, float]  # optimiser name -> learning rate
    objective: Any  # the task's resolved loss settings, handed back to `phases` as st.obj
    ema: tuple[str, ...] = ()  # networks that keep an exponential moving average for sampling
    forwards: dict[str, nn.Module] = field(default_factory=dict)  # wrapped by DDP when data-parallel
    samplers: dict[str, Any] = field(default_factory=dict)  # name -> BatchSampler (checkpointed)
    extra: dict[str, Any] = field(default_factory=dict)  # other checkpointed state (state_dict())
    betas: dict[str, tuple[float, float]] = field(default_factory=dict)  # per optimiser; default train.betas
    # False: a forward runs more than once per backward (DistributedDataParallel's reducer expects
    # one), so a data-parallel job averages gradients with one flat all-reduce instead.
    ddp: bool = True


@dataclass
class OnnxGraph:
    """One network as `gankit export --onnx` writes it: a module whose forward takes tensors only
    (in `example`'s order) and returns one tensor, and how to feed it. `gankit.export_onnx`
    traces it, then checks onnxruntime against PyTorch on `example` inputs of other batch sizes
    (and sizes, when `multiple` is set)."""

    name: str  # the network it wraps ("G", "G_ab"): names the file when a run exports several
    module: nn.Module
    # (n, (H, W) or None for the trained size, torch.Generator) -> {input name: (n, ...) tensor}
    example: Callable[[int, tuple[int, int] | None, torch.Generator], dict[str, torch.Tensor]]
    output: str = "output"
    # the spatial size of the image inputs when trained, and the step their height and width may
    # take when dynamic (1: any; `tasks.onnx_common.AnySize` pads in the graph for networks that
    # pad their input); None: fixed at `size` (or no image input)
    size: tuple[int, int] | None = None
    multiple: int | None = None
    image_inputs: tuple[str, ...] = ()  # the inputs (and the output, when an image) with H, W on axes 2, 3
    image_output: bool = True
    notes: tuple[str, ...] = ()  # what a caller does outside the graph (value ranges, warps, tiling)
    # the inputs (and the output) whose last axis is a length of any size (a vocoder's mel frames,
    # its waveform's samples); `example` gets hw = (1, length) for another length than the traced one
    length_inputs: tuple[str, ...] = ()
    length: int | None = None  # the traced length of those inputs


@dataclass
class Card:
    """A task's text for the model card (`gankit.card`): what the model is for and where it fails."""

    pipeline_tag: str | None  # the Hugging Face Hub's pipeline tag, None when none fits
    what: str  # what the network maps, in a line ("a noisy image -> the clean image")
    intended_use: str
    limits: str
    tags: tuple[str, ...] = ()  # the Hub's tags beyond gankit, gan and the task's name (the architecture)
    # the steps before the first adversarial one (a warm-up on reconstruction losses alone): a run
    # exported at or before it took no adversarial step, and its card does not call it a GAN;
    # None: the config has no adversarial phase at all (superres's srresnet)
    gan_start: int | None = 0


class Task:
    """Base class of a task; see the module docstring for the contract."""

    name: str = ""
    stat_names: tuple[str, ...] = ()  # scalars `phases` adds to st.acc, in this order
    uses_aug_generator: bool = True  # the step draws augmentation / penalty noise from st.gens["aug"]
    honours_precision: bool = False  # the phases run their forwards in train.precision (else always fp32)
    # the phases split each update's batch into micro-batches of st.batch_gpu and accumulate their
    # gradients (train.batch_gpu, docs/accumulation.md); the trainer refuses train.batch_gpu < a
    # rank's share of train.batch for a task without it
    accumulates: bool = False
    # (cfg, data, device) -> a step function: the plain loop `gankit bench` times the task's step
    # against (the generation task's: the tutorial's); None: no reference
    reference_loop: Callable | None = None
    run_methods: type | None = None  # a mixin of methods its loaded runs have (`gankit.run.Run.for_task`)

    def class_conditional(self, cfg) -> bool:
        """Whether a loaded run's G takes a class label (`Run.n_classes` counts the data's classes)."""
        return False

    def load_data(self, cfg, device, strict: bool = False):
        raise NotImplementedError

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        """The task's networks and state for `cfg` on `data`; called after torch.manual_seed(seed)."""
        raise NotImplementedError

    def draw(self, st) -> tuple:
        raise NotImplementedError

    def phases(self, st, inputs: tuple, flags) -> None:
        raise NotImplementedError

    def flags(self, cfg, t: int):
        """The variant of step t (hashable): one captured CUDA graph per distinct value."""
        return ()

    def schedule(self, cfg, st):
        """An object whose apply(t) sets step t's scheduled values (rates, penalty weights) on `st`
        before the step, as a function of t alone (nothing to checkpoint), or None."""
        return None

    def double_backward(self, cfg) -> bool:
        """Whether the step differentiates gradients (penalties: WGAN-GP, R1), which torch.compile
        cannot: train.compile is then ignored with a warning."""
        return False

    def blockers(self, cfg) -> list[str]:
        """What in `cfg` the graph-shaped step of this task does not implement ([] when none)."""
        return []

    def log_row(self, cfg, st, sums: dict[str, float], window: int) -> dict:
        """One metrics.jsonl row from the scalars summed over `window` steps (names: stat_names):
        by default the step, the epoch of the batch sampler "x" and every scalar's mean per step.
        A task whose scalars are not all per-step overrides it (counts, phases that skip steps)."""
        row = {"step": st.step, "epoch": round(st.samplers["x"].epoch, 4)}
        row.update({k: round(sums[k] / window, 6) for k in self.stat_names})
        return row

    def grid(self, cfg, data, st) -> Callable:
        """A function (step, path) -> path that writes the run directory's image for `step`."""
        raise NotImplementedError

    def preview(self, cfg, data):
        """uint8 (N, C, H, W) training images for the run directory's data.png (what the run
        learns from, shown in the report), or None when the task's grid already shows its data."""
        return None

    def evaluator(self, cfg, data, st, dist):
        """An object with .run(st, step, art, run_name) -> bool (improved) and .best, or None."""
        return None

    def evaluate_run(self, cfg, nets: dict, device, n: int, featurenet, source: str | None, run: str | None,
                     step: int | None, data_meta: dict | None = None) -> dict | None:
        """`gankit eval RUN` for this task: scores of a loaded run's `nets` on held-out data
        (`source`: another one than the run's), with their protocol; `data_meta` is the run's
        data description from its checkpoint (a text run's vocabulary). None: the caller samples
        the run and scores the samples as generated images (the generation task)."""
        return None

    def inference_nets(self, cfg, data_meta: dict) -> dict[str, nn.Module]:
        """The networks a loaded run uses, built with fresh weights (Run.load fills them)."""
        raise NotImplementedError

    def freeze_targets(self, cfg, groups: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        """The networks train.freeze_d ("d") and train.freeze_g ("g") freeze blocks of
        (`gankit.training.freeze`), given `Parts.groups`: by default those the "D" and "G"
        optimisers update, the GAN tasks' convention."""
        return {"d": groups.get("D", ()), "g": groups.get("G", ())}

    def exported_nets(self, cfg) -> tuple[str, ...]:
        """The networks `gankit export` writes: what inference needs, no discriminator."""
        return ("G",)

    def onnx_graphs(self, cfg, nets: dict[str, nn.Module], data_meta: dict) -> list[OnnxGraph]:
        """The exported networks (`nets`: loaded, in eval mode) as tensor functions for ONNX; a task
        whose inference is not one (a sampling loop) refuses in one line saying why."""
        raise GankitError(f"the {self.name} task has no ONNX export")

    def card(self, cfg, data_meta: dict) -> Card:
        """The model card's task-specific text; by default a generic one."""
        return Card(None, f"the {self.name} task's network",
                    f"Research and experimentation with a GAN trained by gankit for the {self.name} task.",
                    "Trained on the data below only, at its resolution; outputs can look plausible and be wrong. "
                    "Not evaluated for any use beyond the metrics listed.")

    def check_resume(self, data, saved_meta: dict, where: str) -> None:
        """Refuse, in one line, to load a checkpoint whose data description (`saved_meta`) the
        weights cannot be used with on `data` (a text run's vocabulary); by default nothing."""

    def describe_data(self, data) -> list[str]:
        """Lines for train.log about the data (count, shape, notes)."""
        return list(getattr(data, "notes", []))


class HeldOutEval:
    """`eval.every` for a task scored on held-out data: each evaluation is one metrics.jsonl row
    (with its protocol) and a new metrics.png; "best" (what `checkpoints/best.pt` keeps) is the
    evaluation with the lowest `key`, or the highest with `higher`. Subclasses set `key` and
    `higher` and write `score(st, step, run_name) -> row`; rank 0 scores, every rank learns
    whether it improved."""

    key: str = ""
    higher: bool = False

    def __init__(self, cfg, device, dist):
        self.cfg, self.device, self.dist = cfg, device, dist
        self.best: dict | None = None  # {"metric", "value", "step"}

    def score(self, st, step: int, run_name: str) -> dict:
        raise NotImplementedError

    def run(self, st, step: int, art, run_name: str) -> bool:
        improved = None
        if self.dist.is_main:
            row = self.score(st, step, run_name)
            art.log({"step": step, "eval": True, **row})
            art.plot_metrics()
            v = row[self.key]
            improved = self.best is None or (v > self.best["value"] if self.higher else v < self.best["value"])
            if improved:
                self.best = {"metric": self.key, "value": v, "step": step}
        return bool(self.dist.broadcast(improved))
