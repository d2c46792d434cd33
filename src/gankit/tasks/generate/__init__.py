"""The generation task (noise -> image): `TASK`, its phases and its in-training evaluation."""

from gankit.tasks.generate.task import TASK, GenerateTask

__all__ = ["TASK", "GenerateTask"]
