"""Training, the task-agnostic trunk: the loop (`train`), the engine and its step runner, the one
training state (the checkpoint schema), checkpoints, recovery, the run lock, data-parallel
helpers, run-directory artifacts, profiling."""

from gankit.training.loop import train

__all__ = ["train"]
