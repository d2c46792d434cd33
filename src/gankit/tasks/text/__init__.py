"""The text task (noise -> a line of text): `TASK`, phases, evaluation, sampling."""

from gankit.tasks.text.task import TASK, TextTask

__all__ = ["TASK", "TextTask"]
