"""The vocoder task (a log mel spectrogram -> its waveform): HiFi-GAN; `gankit vocode`, `gankit speak`.

The task object is `gankit.tasks.vocoder.task.TASK` (reached through `gankit.tasks.get_task`);
this package imports nothing, so the light parts of the folder (its config section, its
commands) load without torch.
"""
