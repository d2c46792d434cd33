"""A user's media for inference commands, below `gankit.data` (which reads videos through it):

- `gankit.media.images`: read, write and list images; `conform` one to a run's shape.
- `gankit.media.video`: probe, decode and write videos (PyAV).
- `gankit.media.apply`: what kind an input is; an image function over an image, a folder or a
  video, with outputs that appear whole or not at all.

Every write is atomic: the output is written under a temporary name beside its target and moved
into place with `os.replace` only once complete.
"""
