"""The super-resolution task (LR -> HR): its phases, evaluation and inference.

The task object is `gankit.tasks.superres.task.TASK` (reached through `gankit.tasks.get_task`); this
package imports nothing, so the light parts of the folder (its config section, its commands)
load without torch.
"""
