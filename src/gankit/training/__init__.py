"""Training, the task-agnostic trunk: the loop (`train`), the engine and its step runner, the
training state, the checkpoint format and the checkpoint store, the run directory's resume policy,
recovery, the run lock, data-parallel helpers, run-directory artifacts, profiling."""

from gankit.training.loop import train

__all__ = ["train"]
