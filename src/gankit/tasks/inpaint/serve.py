"""The inpainting task's `gankit serve` panel: an uploaded image with a painted hole, repaired.
Found by `gankit serve` through the registry (`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

from gankit.apps.serve.models import chw, hole_mask, hwc, Panel, Result, stem
from gankit.errors import GankitError
from gankit.run import Run


def repair_learned(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.inpaint.infer import repair_images

    notes: list[str] = []
    img = images["image"]
    x = chw(img, (run.data_meta["channels"], *img.shape[:2]), notes)  # any size: channels only
    hole = hole_mask(images["mask"], tuple(x.shape[1:]), notes)
    try:
        y, _ = repair_images(run, x[None], hole[None], "learned")
    except GankitError as e:  # the U-Net's padding refuses images too small for its depth
        raise GankitError(f"upload: {e}") from None
    return Result(hwc(y[0]), f"{stem(run)}-repaired.png", notes)


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    return {"repair": Panel("Repair", "upload an image and paint its hole; the inpainter fills it, every other "
                            "pixel is kept", {}, repair_learned, uploads=("image", "mask"), extra={"mask": True})}
