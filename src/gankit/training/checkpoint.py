"""Checkpoints as plain data: state dicts, optimiser states, step, RNG states, resolved config.

Written atomically (temporary file, fsync, rename), so a crash mid-write leaves the previous
checkpoint intact; loaded with ``weights_only=True``, so a file cannot run code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from gankit.errors import GankitError

FORMAT = "gankit-checkpoint"
VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a page long; its one useful line names the refused global.
        lines = [ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln]
        why = lines[0].split(" was not")[0].removeprefix("WeightsUnpickler error: ") if lines else "unsafe content"
        raise GankitError(f"{path}: refused to load: the file holds code or objects, not plain "
                          f"checkpoint data ({why})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise GankitError(f"{path}: corrupt or truncated checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise GankitError(f"{path}: not a gankit checkpoint")
    if ckpt.get("version", 0) > VERSION:
        raise GankitError(f"{path}: checkpoint format {ckpt['version']} is newer than this gankit "
                          f"understands ({VERSION}); upgrade gankit")
    return ckpt
