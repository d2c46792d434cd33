"""The generation task (noise -> image): its phases and its in-training evaluation.

The task object is `gankit.tasks.generate.task.TASK` (reached through `gankit.tasks.get_task`); this
package imports nothing, so the light parts of the folder (its config section, its commands)
load without torch.
"""
