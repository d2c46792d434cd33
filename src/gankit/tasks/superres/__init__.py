"""The super-resolution task (LR -> HR): `TASK`, its phases, evaluation and inference."""

from gankit.tasks.superres.task import TASK, SuperresTask

__all__ = ["TASK", "SuperresTask"]
