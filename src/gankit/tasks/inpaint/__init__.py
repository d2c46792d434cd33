"""The inpainting task (an image with a hole -> the image completed): phases, evaluation, repair.

The task object is `gankit.tasks.inpaint.task.TASK` (reached through `gankit.tasks.get_task`); this
package imports nothing, so the light parts of the folder (its config section, its commands)
load without torch.
"""
