"""The frame-interpolation task's `gankit serve` panel: the middle of two uploaded frames.
Found by `gankit serve` through the registry (`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

import numpy as np

from gankit.apps.serve.models import Panel, Result, stem
from gankit.run import Run


def middle_frame(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.interpolate.infer import middle_frame as predict_middle

    notes: list[str] = []
    m = predict_middle(run, images["prev"], images["next"], log=notes.append)
    return Result(np.ascontiguousarray(m), f"{stem(run)}-middle.png", notes)


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    return {"frames": Panel("Middle frame", "two consecutive frames uploaded; the run predicts the frame between "
                            "them", {}, middle_frame, uploads=("prev", "next"))}
