"""The reconstruction task (incomplete measurements -> the image): sparse-view / low-dose CT and
undersampled MRI. A U-Net corrects the classical reconstruction (FBP, zero-filled inverse FFT);
MRI outputs are made consistent with the measured k-space, CT outputs report their re-projection
error.

The task object is `gankit.tasks.recon.task.TASK`; this package imports nothing, so the light
parts of the folder (its config section, its commands) load without torch.
"""
