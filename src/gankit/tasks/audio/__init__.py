"""The audio task (noise -> a 1 s clip): WaveGAN and SpecGAN: `TASK`, phases, sampling."""

from gankit.tasks.audio.task import TASK, AudioTask

__all__ = ["TASK", "AudioTask"]
