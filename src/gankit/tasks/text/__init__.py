"""The text task (noise -> a line of text): phases, evaluation, sampling.

The task object is `gankit.tasks.text.task.TASK` (reached through `gankit.tasks.get_task`); this
package imports nothing, so the light parts of the folder (its config section, its commands)
load without torch.
"""
