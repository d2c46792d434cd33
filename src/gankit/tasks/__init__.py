"""Tasks: one folder per application, each a `gankit.tasks.base.Task`.

    generate   noise (+ class, + codes) -> image: the tutorial's GAN and the preset zoo
    translate  image -> image: pix2pix (paired) and CycleGAN (unpaired)
    superres   low -> high resolution: SRResNet (L1), SRGAN/ESRGAN fine-tuning
    interpolate  two frames -> the frame between them: missing video frames, higher frame rates
    inpaint    an image with a hole -> the image completed (image repair, partial scans)
    text       noise (+ topic) -> a line of text or a molecule: MLE (the baseline), RelGAN, SeqGAN, LatentGAN
    audio      noise -> a 1 s clip: WaveGAN, SpecGAN

`TASKS` is the registry (the one line a new task adds); a task's module is imported only when a
run uses it, so commands that need none stay fast.
"""

from __future__ import annotations

import importlib

from gankit.errors import GankitError

# config `task:` value -> the module whose TASK attribute is the task
TASKS = {
    "generate": "gankit.tasks.generate",
    "translate": "gankit.tasks.translate",
    "superres": "gankit.tasks.superres",
    "interpolate": "gankit.tasks.interpolate",
    "inpaint": "gankit.tasks.inpaint",
    "text": "gankit.tasks.text",
    "audio": "gankit.tasks.audio",
}


def get_task(name: str):
    """The `Task` registered as `name`."""
    if name not in TASKS:
        raise GankitError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return importlib.import_module(TASKS[name]).TASK
