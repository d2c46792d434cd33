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
from gankit.fileutil import sha256_file

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


# -- a run's checkpoint directory: the newest K checkpoints, a manifest, fallback on load --------

MANIFEST = "manifest.json"


class CheckpointStore:
    """``RUN/checkpoints/``: ``last.pt`` is the newest checkpoint; the previous ones are kept as
    ``step_NNNNNNNN.pt`` up to `keep` in all; ``manifest.json`` records each file's step and
    SHA-256. Every write is atomic, so at any moment the directory holds at least one complete,
    verifiable checkpoint; `load_latest` skips damaged ones and says so."""

    def __init__(self, directory: Path, keep: int = 3, warn=None):
        self.dir, self.keep = Path(directory), keep
        self.warn = warn or (lambda msg: None)

    @property
    def last(self) -> Path:
        return self.dir / "last.pt"

    def _manifest(self) -> list[dict]:
        import json

        try:
            entries = json.loads((self.dir / MANIFEST).read_text())["checkpoints"]
            return [e for e in entries if isinstance(e, dict) and "file" in e]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _write_manifest(self, entries: list[dict]) -> None:
        import json

        tmp = self.dir / f".{MANIFEST}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"checkpoints": entries}, indent=1))
        os.replace(tmp, self.dir / MANIFEST)

    def save(self, state: dict[str, Any]) -> Path:
        """Write `state` as the new last.pt; the old last.pt becomes step_<its step>.pt."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".*.tmp"):  # half-written files of a process that was killed
            stale.unlink(missing_ok=True)
        entries = [e for e in self._manifest() if (self.dir / e["file"]).exists()]
        # 1. Write the new checkpoint beside the old one first: if this fails (disk full, crash),
        #    last.pt is untouched.
        tmp_new = self.dir / f"new-{state['step']:08d}.pt"
        try:
            save_checkpoint(state, tmp_new)
        except OSError as e:  # a full disk, a quota, a vanished mount: the old checkpoint is untouched
            tmp_new.unlink(missing_ok=True)
            prev = max((x["step"] for x in entries), default=None)
            kept = f"the previous checkpoint (step {prev}) is intact" if prev is not None else "no earlier checkpoint exists"
            raise GankitError(f"could not write the step {state['step']} checkpoint in {self.dir} "
                              f"({e.strerror or e}); {kept}; free some space, then resume with "
                              f"gankit train --resume {self.dir.parent}") from None
        digest = sha256_file(tmp_new)
        # 2. Keep the old last.pt under its step's name, then move the new one into place.
        for e in entries:
            if e["file"] == "last.pt" and self.last.exists():
                kept = f"step_{e['step']:08d}.pt"
                os.replace(self.last, self.dir / kept)
                e["file"] = kept
        os.replace(tmp_new, self.last)
        entries = [e for e in entries if e["step"] != state["step"] or e["file"] == "last.pt"]
        entries.append({"file": "last.pt", "step": int(state["step"]), "sha256": digest})
        # 3. Prune beyond `keep`, oldest first.
        entries.sort(key=lambda e: e["step"])
        while len(entries) > self.keep:
            old = entries.pop(0)
            (self.dir / old["file"]).unlink(missing_ok=True)
        self._write_manifest(entries)
        return self.last

    def candidates(self) -> list[tuple[Path, str | None]]:
        """(file, recorded SHA-256 or None), newest first: the manifest's entries, then any
        checkpoint files it does not list (a crash between a write and the manifest update)."""
        listed = sorted(self._manifest(), key=lambda e: e["step"], reverse=True)
        out = [(self.dir / e["file"], e.get("sha256")) for e in listed]
        seen = {p.name for p, _ in out}
        extra = sorted((p for p in self.dir.glob("*.pt") if p.name not in seen and not p.name.startswith(".")),
                       key=lambda p: p.stat().st_mtime, reverse=True)
        return out + [(p, None) for p in extra]

    def load_latest(self, map_location="cpu") -> tuple[dict[str, Any], Path]:
        """The newest checkpoint that is complete and matches its recorded SHA-256."""
        problems = []
        for path, digest in self.candidates():
            if not path.exists():
                continue
            if digest and sha256_file(path) != digest:
                problems.append(f"{path.name}: SHA-256 does not match the manifest")
                continue
            try:
                ckpt = load_checkpoint(path, map_location)
            except GankitError as e:
                problems.append(str(e))
                continue
            for p in problems:
                self.warn(f"skipped damaged checkpoint {p}; using {path.name} (step {ckpt['step']})")
            return ckpt, path
        detail = f": {'; '.join(problems)}" if problems else ""
        raise GankitError(f"no usable checkpoint in {self.dir}{detail}")
