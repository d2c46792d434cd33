"""The translation task (image -> image): pix2pix and CycleGAN: its phases, inference.

The task object is `gankit.tasks.translate.task.TASK` (reached through `gankit.tasks.get_task`); this
package imports nothing, so the light parts of the folder (its config section, its commands)
load without torch.
"""
