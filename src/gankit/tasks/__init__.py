"""Tasks: one folder per application, each a `gankit.tasks.base.Task`.

    generate   noise (+ class, + codes) -> image: the tutorial's GAN and the preset zoo
    translate  image -> image: pix2pix (paired) and CycleGAN (unpaired)
    superres   low -> high resolution: SRResNet (L1), SRGAN/ESRGAN fine-tuning
    interpolate  two frames -> the frame between them: missing video frames, higher frame rates
    inpaint    an image with a hole -> the image completed (image repair, partial scans)
    text       noise (+ topic) -> a line of text or a molecule: MLE (the baseline), RelGAN, SeqGAN, LatentGAN
    audio      noise -> a 1 s clip: WaveGAN, SpecGAN
    recon      incomplete measurements (sparse-view / low-dose CT, undersampled MRI) -> the image
    vocoder    a mel spectrogram -> its waveform: HiFi-GAN (`gankit vocode`, `gankit speak`)

`TASKS` is the registry: the one line a new task adds. Everything else about a task lives in its
folder and is reached through this module by a fixed file name, so no other module lists tasks:

    <folder>/task.py     TASK, the `gankit.tasks.base.Task` the trainer drives (imports torch)
    <folder>/config.py   SECTIONS (its config sections) and check(cfg, origin) (its cross-field
                         rules); no torch: `gankit.config` reads it for every config it loads
    <folder>/surface.py  its commands, flags and usage line (`gankit.tasks.surface.Surface`);
                         no torch at import: `gankit --help` reads it

A task's module is imported only when a run or a command uses it, so commands stay fast.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from gankit.errors import GankitError

# config `task:` value -> the task's folder (a package)
TASKS = {
    "generate": "gankit.tasks.generate",
    "translate": "gankit.tasks.translate",
    "superres": "gankit.tasks.superres",
    "interpolate": "gankit.tasks.interpolate",
    "inpaint": "gankit.tasks.inpaint",
    "text": "gankit.tasks.text",
    "audio": "gankit.tasks.audio",
    "denoise": "gankit.tasks.denoise",
    "recon": "gankit.tasks.recon",
    "vocoder": "gankit.tasks.vocoder",
}


def _check(name: str) -> None:
    if name not in TASKS:
        raise GankitError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")


def get_task(name: str):
    """The `Task` registered as `name` (imports its folder's task.py, and so torch)."""
    _check(name)
    return importlib.import_module(f"{TASKS[name]}.task").TASK


def task_part(name: str, part: str) -> ModuleType | None:
    """The module `part` (e.g. "config", "surface") of task `name`'s folder, or None when the task
    has no such file."""
    _check(name)
    module = f"{TASKS[name]}.{part}"
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


def task_parts(part: str) -> dict[str, ModuleType]:
    """task name -> its module `part`, in registry order, for every task whose folder has one."""
    return {name: m for name in TASKS if (m := task_part(name, part)) is not None}
