"""The inpainting task (an image with a hole -> the image completed): `TASK`, phases, evaluation, repair."""

from gankit.tasks.inpaint.task import TASK, InpaintTask

__all__ = ["TASK", "InpaintTask"]
