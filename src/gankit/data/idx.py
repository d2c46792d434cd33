"""Read and write IDX files (the format MNIST ships in), plain or gzip-compressed.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, each
dimension as a big-endian uint32, then the data in C order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from gankit.errors import GankitError

_UBYTE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if _is_gzip(path) else path.read_bytes()
    except (OSError, EOFError) as e:
        raise GankitError(f"{path}: cannot read IDX file ({e})") from None
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise GankitError(f"{name}: not an IDX file (expected two zero bytes, a type code and rank)")
    if raw[2] != _UBYTE:
        raise GankitError(f"{name}: IDX type code 0x{raw[2]:02x} is not supported; expected 0x08 (uint8)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GankitError(f"{name}: IDX header truncated")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(dims)) if dims else 0
    if len(raw) - header != count:
        raise GankitError(f"{name}: IDX header says {dims} ({count} bytes) but {len(raw) - header} bytes follow")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX; gzip-compressed when the name ends in .gz."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, _UBYTE, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(raw, mtime=0) if path.name.endswith(".gz") else raw)


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def is_idx_path(path: Path) -> bool:
    name = path.name.lower()
    return "idx" in name and (name.endswith("ubyte") or name.endswith(".gz") or name.endswith(".idx"))


def labels_path_for(images: Path) -> Path | None:
    """The labels file that sits beside an images file, by MNIST's naming convention."""
    name = images.name.replace("images", "labels").replace("idx3", "idx1")
    cand = images.with_name(name)
    return cand if cand != images and cand.exists() else None
