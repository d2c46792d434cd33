"""A labelled data source written out as a folder of class folders: OUT/CLASS/NNNNNN.png.

The layout a user's own labelled images or scans take (`scans/lesion/...`), so a built-in source
such as ``phantoms-lesion`` can be looked at, edited or replaced by one's own data file by file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gankit.errors import GankitError


def write_class_folder(data, out: str | Path) -> dict[str, int]:
    """Write the labelled `data` (a `Dataset` of uint8 images with classes) as OUT/CLASS/NNNNNN.png
    (NNNNNN: the image's index in the source). Built in a hidden folder beside OUT and renamed into
    place, so a failure leaves no half-written set. Returns {class: images written}."""
    from PIL import Image

    out = Path(out)
    if data.kind != "image" or data.y is None or not data.classes:
        raise GankitError(f"{data.name}: writing a class folder needs labelled images; this source has no classes")
    if out.exists():
        raise GankitError(f"{out}: already exists; name a new folder")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    counts = dict.fromkeys(data.classes, 0)
    try:
        for name in data.classes:
            (tmp / name).mkdir(parents=True)
        x, y = data.x.cpu(), data.y.cpu().tolist()
        for i, (img, label) in enumerate(zip(x, y)):
            arr = img.permute(1, 2, 0).numpy()  # (H, W, C)
            Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(tmp / data.classes[label] / f"{i:06d}.png")
            counts[data.classes[label]] += 1
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts
