"""The translation task's `gankit serve` panel: an uploaded image translated.
Found by `gankit serve` through the registry (`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

from gankit.apps.serve.models import Choice, chw, hwc, Panel, Result, stem
from gankit.run import Run


def translate(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.translate.infer import generator, translate_images

    notes: list[str] = []
    _, shape, direction = generator(run, p["direction"])
    x = chw(images["image"], shape, notes)  # resized/converted to what G was trained on
    y = translate_images(run, x[None], direction)[0]
    return Result(hwc(y), f"{stem(run)}-{direction}.png", notes)


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    from gankit.tasks.translate.infer import DIRECTIONS, generator

    t = run.config.translate
    directions = DIRECTIONS if t.method == "cyclegan" else (t.direction,)
    shapes = {d: list(generator(run, d)[1]) for d in directions}
    return {"translate": Panel(
        "Translate", f"{t.method}: an uploaded image, resized to the size the run was trained on, translated "
        + " or ".join(directions), {"direction": Choice(directions, directions[0])}, translate,
        uploads=("image",), extra={"shapes": shapes})}
