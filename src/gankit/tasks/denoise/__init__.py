"""The denoising task (a noisy image -> the clean image): a pix2pix-style GAN trained on images
corrupted by a stated noise model (Gaussian, Poisson), scored beside non-local means and
total-variation denoising.

The task object is `gankit.tasks.denoise.task.TASK` (reached through `gankit.tasks.get_task`); this
package imports nothing, so the light parts of the folder (its config section, its commands)
load without torch.
"""
