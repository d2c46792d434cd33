"""The translation task (image -> image): pix2pix and CycleGAN; `TASK`, its phases, inference."""

from gankit.tasks.translate.task import TASK, TranslateTask

__all__ = ["TASK", "TranslateTask"]
