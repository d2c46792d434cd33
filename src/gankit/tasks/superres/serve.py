"""The super-resolution task's `gankit serve` panel: an uploaded image upscaled tile by tile.
Found by `gankit serve` through the registry (`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

import math

from gankit.apps.serve import models
from gankit.apps.serve.models import Panel, Result, stem
from gankit.errors import GankitError
from gankit.media.images import NoteOnce
from gankit.run import Run


def superres(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.superres.infer import check_scale, upscale_image

    s = check_scale(run, None)
    most = models.MAX_PIXELS  # read per request (a test lowers it)
    img = images["image"]
    h, w = img.shape[:2]
    if h * w * s * s > most:
        side = int(math.isqrt(most // (s * s)))
        raise GankitError(f"upload: {w}x{h} x{s} would be {w * s}x{h * s} = {w * h * s * s} pixels; at most "
                          f"{most} come out, so send at most {most // (s * s)} pixels "
                          f"(about {side}x{side})")
    notes: list[str] = []
    y = upscale_image(run, img, where="upload", notes=NoteOnce(notes.append))  # tiled: memory stays bounded
    return Result(y, f"{stem(run)}-x{s}.png", notes)


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    s = run.config.superres.scale
    return {"superres": Panel("Super-resolution", f"an uploaded image of any size, upscaled x{s} tile by tile",
                              {}, superres, uploads=("image",), extra={"scale": s})}
