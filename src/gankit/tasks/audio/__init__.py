"""The audio task (noise -> a 1 s clip): WaveGAN and SpecGAN: phases, sampling.

The task object is `gankit.tasks.audio.task.TASK` (reached through `gankit.tasks.get_task`); this
package imports nothing, so the light parts of the folder (its config section, its commands)
load without torch.
"""
