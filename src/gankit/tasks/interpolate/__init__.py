"""The frame-interpolation task (two frames -> the one between): phases, evaluation, inference.

The task object is `gankit.tasks.interpolate.task.TASK` (reached through `gankit.tasks.get_task`); this
package imports nothing, so the light parts of the folder (its config section, its commands)
load without torch.
"""
