"""Small helpers every layer may use: file hashes, the cache folder and atomic writes into it, the
device by name, a network in eval mode for a block (`eval_mode`)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from gankit import disk
from gankit.errors import GankitError


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where gankit caches data it derived (MNIST as .npz, reference features): $GANKIT_CACHE,
    default ~/.cache/gankit."""
    return Path(os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit")


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 `text` at `path`, all or nothing (`gankit.disk.atomic`)."""
    with disk.atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` as an uncompressed .npz at `path`, all or nothing: to a temporary name in the
    same folder, fsync'd, then renamed, so a reader (another process filling the same cache) never
    sees half a file."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with disk.atomic(path) as tmp, tmp.open("wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def native_bf16_cpu() -> str | None:
    """The CPU flag that gives native bfloat16 arithmetic (avx512_bf16, amx_bf16), or None.
    Without one, torch emulates bf16 on the CPU, about 20x slower than fp32 for a DCGAN step."""
    try:
        with open("/proc/cpuinfo") as f:  # Linux; elsewhere: unknown, so no
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    return next((fl for fl in ("amx_bf16", "avx512_bf16") if fl in flags), None)


def full(t: torch.Tensor) -> torch.Tensor:
    """`t` in full precision: torch's default float dtype (float32; float64 where a caller set it,
    as the reference runs of tests/test_stored_values.py do). Losses, penalties and statistics are
    computed there whatever precision the forward ran in."""
    return t.to(torch.get_default_dtype())


@contextmanager
def eval_mode(*modules: torch.nn.Module | None) -> Iterator[None]:
    """The modules in eval mode inside the block (no dropout; batch norm on its running statistics):
    G while it is scored or draws a grid, D while it scores rewards, a classifier while it is
    measured. Each module's training flag is restored on the way out (`module.train(was)`, which
    sets its submodules alike), whatever happens. None entries are skipped."""
    mods = [m for m in modules if m is not None]
    was = [m.training for m in mods]
    for m in mods:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(mods, was):
            m.train(w)


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cuda' without a GPU is the user's error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GankitError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise GankitError(f"device {name!r}; choose one of: auto, cpu, cuda")
    return torch.device(name)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate in place (a tensor lr must stay the same tensor)."""
    for group in opt.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
