"""`Run`: a trained GAN on disk, loaded for use: its config, data description and networks.

A task may add methods to its loaded runs (`Task.run_methods`, e.g. the generation task's
sampling, latent walks and style mixing, `gankit.tasks.generate.sampling`); `Run.for_task` gives
the class that has them. Everything else a task does with a run lives in its folder's infer.py.

A run directory is what `gankit.training` writes (see `gankit.training.artifacts`); `Run.load` reads
its newest good checkpoint (``weights_only=True``) through the one checkpoint schema
(`gankit.training.checkpoint`) and builds the networks its task says inference needs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

from gankit.config import RunConfig, from_dict
from gankit.errors import GankitError, warn
from gankit.tasks import get_task
from gankit.training.checkpoint import load_checkpoint, migrate
from gankit.training.store import CheckpointStore
from gankit.util import resolve_device


class Run:
    """A trained run loaded for use: its config, data description and networks (`nets`, in eval
    mode; the EMA weights where the run kept an EMA), plus its task's `run_methods` (generation runs:
    `sample`, `interpolate`, `style_mix`); every task's own inference lives in its folder
    (`gankit.tasks.<task>.infer`) and takes a Run."""

    def __init__(self, directory: Path, config: RunConfig, nets: dict[str, torch.nn.Module], data_meta: dict,
                 step: int, device: torch.device, ema: bool, task: str):
        self.dir, self.config, self.nets, self.data_meta = directory, config, nets, data_meta
        self.step, self.device, self.ema, self.task = step, device, ema, task
        self.checkpoint: Path | None = None  # the file it was loaded from
        self.interrupted: str | None = None  # the signal that ended training early, if any
        classes = data_meta.get("classes") or []
        self.n_classes = len(classes) if get_task(task).class_conditional(config) else 0

    @property
    def G(self) -> torch.nn.Module:
        return self.nets["G"]

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> Run:
        """Load a run directory (its newest good checkpoint) or one checkpoint file: the EMA
        weights when the run kept them, unless `ema` is False. (`gankit.load` also reads an
        exported .safetensors generator.)"""
        path = Path(path)
        if path.suffix == ".safetensors":
            raise GankitError(f"{path}: an exported generator; load it with gankit.load (gankit.export.load_exported)")
        device = resolve_device(device) if isinstance(device, str) else device
        if path.is_file():
            ckpt_path, run_dir = path, path.parent.parent
            ckpt = load_checkpoint(ckpt_path, map_location=device)
        elif path.is_dir():
            run_dir = path
            ckpt, ckpt_path = CheckpointStore(path / "checkpoints", warn=warn).load_latest(device)
        else:
            raise GankitError(f"run directory {path} does not exist")
        run = cls.from_checkpoint(ckpt, run_dir, device, ema, str(ckpt_path))
        run.checkpoint = ckpt_path
        return run

    @classmethod
    def from_checkpoint(cls, ckpt: dict, run_dir: Path, device: torch.device, ema: bool = True,
                        where: str = "checkpoint") -> Run:
        """A Run from checkpoint data already in memory (any schema this version reads)."""
        ck = migrate(ckpt, where)
        cfg = from_dict(ck["config"], origin=where)
        nets = get_task(ck["task"]).inference_nets(cfg, ck["data"])
        averaged = ck.get("ema", {})
        used_ema = False
        for name, net in nets.items():
            if ema and name in averaged:
                net.load_state_dict(averaged[name]["weights"])
                used_ema = True
            else:
                net.load_state_dict(ck["nets"][name])
            net.to(device).eval()
        return cls.for_task(ck["task"])(run_dir, cfg, nets, ck["data"], int(ck["step"]), device, ema=used_ema,
                                        task=ck["task"])

    @classmethod
    def for_task(cls, task: str) -> type[Run]:
        """The Run class for a run of `task`: `Run` with the task's `run_methods`, if it has any."""
        return _with_methods(cls, get_task(task).run_methods)

    def discriminator(self) -> torch.nn.Module:
        """The run's D at the loaded checkpoint, in eval mode (for D-accuracy evaluation)."""
        if "D" not in self.nets:
            raise GankitError(f"{self.dir}: an exported generator has no discriminator; evaluate the run itself")
        return self.nets["D"]

    def need(self, task: str, what: str) -> None:
        """Refuse, in one line, to use a run of another task for `what`."""
        if self.task != task:
            raise GankitError(f"{self.dir}: {what} needs a {task!r} run; this is a {self.task!r} run "
                              f"(preset {self.config.preset or 'custom'})")

    @property
    def samples_dir(self) -> Path:
        return self.dir / "samples"

    @property
    def loss_plot(self) -> Path:
        return self.dir / "loss.png"

    @property
    def animation(self) -> Path:
        return self.dir / "progress.gif"

    @property
    def last_grid(self) -> Path | None:
        grids = sorted(self.samples_dir.glob("step_*.png"))
        return grids[-1] if grids else None

    @property
    def conditional(self) -> bool:
        """Whether G takes a class label (`Task.class_conditional`)."""
        return self.n_classes > 0


@cache
def _with_methods(base: type[Run], methods: type | None) -> type[Run]:
    return base if methods is None else type(f"{methods.__name__}Run", (methods, base), {})
