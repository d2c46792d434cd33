"""Training: the loop (`train`), one step (`gan_step`), checkpoints, run-directory artifacts."""

from gankit.training.loop import train

__all__ = ["train"]
