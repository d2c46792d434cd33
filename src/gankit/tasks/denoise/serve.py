"""The denoising task's `gankit serve` panel: an uploaded noisy image, restored.
Found by `gankit serve` through the registry (`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

from gankit.apps.serve.models import Panel, Result, chw, hwc, stem
from gankit.errors import GankitError
from gankit.run import Run


def denoise(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.denoise.infer import denoise_images

    notes: list[str] = []
    img = images["image"]
    x = chw(img, (run.data_meta["shape"][0], *img.shape[:2]), notes)  # any size: channels only
    try:
        y = denoise_images(run, x[None])[0]
    except GankitError as e:
        raise GankitError(f"upload: {e}") from None
    return Result(hwc(y), f"{stem(run)}-denoised.png", notes)


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    return {"denoise": Panel("Denoise", f"an uploaded noisy image of any size, restored (this run was trained on "
                             f"{run.config.denoise.noise} noise)", {}, denoise, uploads=("image",))}
