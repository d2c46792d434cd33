"""The frame-interpolation task (two frames -> the one between): `TASK`, phases, evaluation, inference."""

from gankit.tasks.interpolate.task import TASK, InterpolateTask

__all__ = ["TASK", "InterpolateTask"]
