"""A run's checkpoint directory, ``RUN/checkpoints/``: the newest `keep` checkpoints, a manifest of
their sizes and SHA-256s, verification on load, and a ``corrupt/`` folder for the files that fail it.

What one file holds is `gankit.training.checkpoint` (the format); this module only decides which
files exist, and which of them may be trusted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit import disk
from gankit.errors import DiskError, GankitError, warn as _warn
from gankit.training.checkpoint import Damaged, checkpoint_size, load_checkpoint, save_checkpoint
from gankit.util import sha256_file

# -- a run's checkpoint directory: the newest K checkpoints, a manifest, fallback on load --------

MANIFEST = "manifest.json"
LAST = "last.pt"
CORRUPT = "corrupt"  # files that failed verification go here: kept for inspection, never used again
_STEP_NAME = re.compile(r"(?:step_|new-)(\d{8})\.pt")  # names that carry their step


@dataclass
class _Manifest:
    entries: list[dict] | None  # None: manifest.json is unreadable
    raw: bytes | None  # its bytes, to notice a trainer rewriting it while we read the files
    state: str = "ok"  # or "missing", or "unreadable (why)"


@dataclass
class _Failure:
    path: Path
    step: int | None  # from the manifest or the file's name; None when unknown
    why: str
    damaged: bool = True  # False: missing or unreadable, nothing to move aside
    moved: str = ""  # ", moved to corrupt/NAME" or why it could not be


def _name_step(name: str) -> int | None:
    m = _STEP_NAME.fullmatch(name)
    return int(m.group(1)) if m else None


def _sig(st: os.stat_result) -> tuple:
    """Identifies a file's bytes without reading them: a rewrite changes the inode, size or mtime."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _valid_entry(e: Any) -> bool:
    return (isinstance(e, dict) and isinstance(e.get("file"), str) and e["file"].endswith(".pt")
            and Path(e["file"]).name == e["file"] and not e["file"].startswith(".")
            and isinstance(e.get("step"), int) and not isinstance(e["step"], bool)
            and isinstance(e.get("sha256", ""), str) and isinstance(e.get("size", 0), int))


class CheckpointStore:
    """``RUN/checkpoints/``: ``last.pt`` is the newest checkpoint; the previous ones are kept as
    ``step_NNNNNNNN.pt`` up to `keep` in all; ``manifest.json`` records each file's step, size and
    SHA-256. Every write is atomic, so at any moment the directory holds at least one complete,
    verifiable checkpoint.

    A file that fails verification (size, SHA-256, or loading) is moved to ``corrupt/`` and taken
    out of the manifest, so it is never rotated, re-hashed or counted towards `keep`; each such
    fallback is reported through `warn`, one line, with the steps it loses. `fallbacks` holds the
    lines of the latest `load_latest` call, for a caller whose `warn` does not reach a log."""

    def __init__(self, directory: Path, keep: int = 3, warn=None):
        self.dir, self.keep = Path(directory), keep
        self.warn = warn or _warn  # a silent fallback loses steps unnoticed: stderr unless told otherwise
        self.fallbacks: list[str] = []  # what the latest load_latest skipped, one line each
        self._known: dict[tuple, tuple[int | None, str | None]] = {}  # _sig -> (step, sha256) of files checked here
        self._manifest_warned = False

    @property
    def last(self) -> Path:
        return self.dir / LAST

    # -- the manifest ------------------------------------------------------------------------------

    def _read_manifest(self) -> _Manifest:
        try:
            raw = (self.dir / MANIFEST).read_bytes()
        except FileNotFoundError:
            return _Manifest([], None, "missing")
        except OSError as e:
            return _Manifest(None, None, f"unreadable ({e.strerror or e})")
        try:
            entries = json.loads(raw)["checkpoints"]
            if not isinstance(entries, list) or not all(_valid_entry(e) for e in entries):
                raise ValueError("unexpected entries")
        except (ValueError, KeyError, TypeError) as e:  # truncated JSON is a ValueError
            return _Manifest(None, raw, f"unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
        return _Manifest(list({e["file"]: e for e in entries}.values()), raw)

    def _manifest(self, notes: list[str] | None = None) -> _Manifest:
        """The manifest; an unreadable one is moved to corrupt/ and reported once."""
        m = self._read_manifest()
        if m.entries is None and not self._manifest_warned:
            self._manifest_warned = True
            moved = ""
            if m.raw is not None:
                moved = self._move_aside(self.dir / MANIFEST, None)
                m.raw = None if moved.startswith(", moved") else m.raw
            msg = (f"{self.dir / MANIFEST} is {m.state}{moved}; checking the checkpoint files by "
                   f"loading them instead")
            self.warn(msg)
            if notes is not None:
                notes.append(msg)
        return m

    def _write_manifest(self, entries: list[dict]) -> None:
        tmp = self.dir / f".{MANIFEST}.{os.getpid()}.tmp"
        try:
            tmp.write_text(json.dumps({"checkpoints": entries}, indent=1))
            os.replace(tmp, self.dir / MANIFEST)
        finally:
            disk.remove(tmp)

    def _drop_from_manifest(self, names: set[str]) -> None:
        m = self._read_manifest()  # re-read: the least time between reading and writing it
        if names and m.entries and any(e["file"] in names for e in m.entries):
            try:
                self._write_manifest([e for e in m.entries if e["file"] not in names])
            except OSError:
                pass  # a read-only run directory: the file is already out of the way, or still fails

    # -- checking one file -------------------------------------------------------------------------

    def _verify(self, path: Path, entry: dict | None, map_location="cpu",
                load: bool = True) -> tuple[dict | None, _Failure | None]:
        """(ckpt, None) when `path` is sound: the size and SHA-256 the manifest records for it (if
        it lists it) match, and it loads as a gankit checkpoint (if `load`, or if the manifest does
        not vouch for it); ckpt is {} when not loaded. (None, failure) otherwise."""
        step = entry["step"] if entry else _name_step(path.name)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None, _Failure(path, step, "listed in manifest.json but missing", damaged=False)
        except OSError as e:
            return None, _Failure(path, step, f"could not be read ({e.strerror or e})", damaged=False)
        # save() trusts what this store wrote or checked, if unchanged since; load_latest reads the bytes
        known_step, sha = self._known.get(_sig(st), (None, None)) if not load else (None, None)
        if entry is not None and entry.get("sha256"):
            size, mismatch = entry.get("size"), "SHA-256 does not match manifest.json"
            if size is not None and st.st_size != size:  # the hash cannot match: no need to read it
                how = "truncated: " if st.st_size < size else ""
                return None, _Failure(path, step, f"{mismatch} ({how}{st.st_size} of {size} bytes)")
            if sha is None:
                try:
                    sha = sha256_file(path)
                except OSError as e:
                    return None, _Failure(path, step, f"could not be read ({e.strerror or e})", damaged=False)
            if sha != entry["sha256"]:
                return None, _Failure(path, step, mismatch)
            self._known[_sig(st)] = (entry["step"], sha)
            if not load:
                return {}, None
        elif known_step is not None and not load:  # loaded by this store already, unchanged since
            return {}, None
        try:
            ckpt = load_checkpoint(path, map_location)
        except GankitError as e:
            if not path.is_file():  # removed meanwhile (a trainer pruning it)
                return None, _Failure(path, step, "listed in manifest.json but missing", damaged=False)
            if not isinstance(e, Damaged):  # a schema newer than this gankit: not moved aside, raised
                raise
            return None, _Failure(path, step, str(e).removeprefix(f"{path}: "))
        self._known[_sig(st)] = (ckpt.get("step"), sha)
        return ckpt, None

    def _move_aside(self, path: Path, step: int | None) -> str:
        """Move `path` into corrupt/, never over another file there; say where, or why not."""
        tag = f".step{step}" if step is not None and f"{step:08d}" not in path.stem else ""
        folder = self.dir / CORRUPT
        try:
            folder.mkdir(exist_ok=True)
            dest, n = folder / f"{path.stem}{tag}{path.suffix}", 0
            while dest.exists():
                n += 1
                dest = folder / f"{path.stem}{tag}.{n}{path.suffix}"
            os.rename(path, dest)
        except OSError as e:
            return f", could not be moved aside ({e.strerror or e})"
        return f", moved to {CORRUPT}/{dest.name}"

    def _describe(self, f: _Failure, m: _Manifest) -> str:
        if f.step is not None:
            when = f"step {f.step}"
        elif m.entries is None or m.state == "missing":
            when = f"step unknown: manifest.json is {m.state.split(' (')[0]}"
        else:
            when = "step unknown: not in manifest.json"
        return f"{f.path.name} ({when}): {f.why}{f.moved}"

    # -- the store's operations --------------------------------------------------------------------

    def save(self, state: dict[str, Any]) -> Path:
        """Write `state` as the new last.pt; the old last.pt, once it matches the manifest, becomes
        step_<its step>.pt; one that does not is moved to corrupt/ instead. A write the machine
        refuses (no space, a quota, read-only) is a one-line DiskError; the files before it are
        untouched and no partial file is left."""
        step = int(state["step"])
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._not_written(step, None, e, state) from None  # an OSError: always one line
        for stale in [*self.dir.glob(".*.tmp"), *self.dir.glob(".*.partial.*")]:  # left by a killed process
            disk.remove(stale)
        entries = self._settle()
        good = entries[-1] if entries else None  # the newest checkpoint on disk, should this one fail
        # 1. Write the new checkpoint beside the old one first: if this fails (disk full, crash),
        #    last.pt is untouched.
        tmp_new = self.dir / f"new-{step:08d}.pt"
        try:
            save_checkpoint(state, tmp_new)
            digest, size = sha256_file(tmp_new), tmp_new.stat().st_size
        except (OSError, RuntimeError) as e:  # torch's zip writer raises RuntimeError on a full disk
            disk.remove(tmp_new)  # before measuring the free space: its bytes are free again
            err = self._not_written(step, good, e, state)
            if err is None:
                raise  # not the machine: our bug
            raise err from None
        # 2. Keep the old last.pt under its step's name (unless this step is being written again).
        last = next((e for e in entries if e["file"] == LAST), None)
        rotated = None
        if last is not None:
            entries.remove(last)
            if last["step"] != step:
                rotated = self.dir / f"step_{last['step']:08d}.pt"
                os.replace(self.last, rotated)
                entries = [e for e in entries if e["file"] != rotated.name] + [{**last, "file": rotated.name}]
        # 3. Prune beyond `keep`, oldest first; older files of this same step are superseded.
        older = sorted((e for e in entries if e["step"] != step), key=lambda e: e["step"])
        kept = older[-(self.keep - 1):] if self.keep > 1 else []
        kept.append({"file": LAST, "step": step, "sha256": digest, "size": size})
        # 4. The manifest before the rename: a reader never sees the new last.pt with the old
        #    hash (which would condemn a good file), only a last.pt briefly missing.
        try:
            self._write_manifest(kept)
        except OSError as e:
            if rotated is not None:
                os.replace(rotated, self.last)
            disk.remove(tmp_new)
            raise self._not_written(step, good, e, None) from None
        os.replace(tmp_new, self.last)
        self._known[_sig(self.last.stat())] = (step, digest)
        names = {e["file"] for e in kept}
        for e in entries:
            if e["file"] not in names:
                (self.dir / e["file"]).unlink(missing_ok=True)
        return self.last

    def save_best(self, meta: dict) -> Path:
        """best.pt, a copy of last.pt (the checkpoint just written), and best.json beside it: its
        step and score, for the report (which never opens checkpoints). Each appears whole or not at
        all; a refusal is a one-line DiskError."""
        with disk.atomic(self.dir / "best.pt") as tmp:
            shutil.copyfile(self.last, tmp)
        with disk.atomic(self.dir / "best.json") as tmp:
            tmp.write_text(json.dumps(meta))
        return self.dir / "best.pt"

    def _settle(self) -> list[dict]:
        """The manifest's entries for the files on disk, once the files `save` relies on are checked:
        last.pt against its recorded hash, a checkpoint the manifest does not list by loading it.
        What fails is moved to corrupt/ and reported."""
        m = self._manifest()
        listed = m.entries or []
        last = next((e for e in listed if e["file"] == LAST), None)
        pending = self.dir / f"new-{last['step']:08d}.pt" if last else None
        if pending is not None and not self.last.exists() and pending.exists():
            os.replace(pending, self.last)  # a save stopped between its manifest and its rename: finish it
        for stale in self.dir.glob("new-*.pt"):  # other interrupted saves
            disk.remove(stale)
        entries = {e["file"]: e for e in listed if (self.dir / e["file"]).exists()}
        check = [(self.last, entries.get(LAST))] if self.last.exists() else []
        check += [(p, None) for p in sorted(self.dir.glob("step_*.pt"))
                  if p.name not in entries and _name_step(p.name) is not None]
        for path, entry in check:
            _, failure = self._verify(path, entry, load=entry is None)
            if failure is None:
                if entry is None:  # sound but unlisted (the manifest was lost, or a crash): adopt it
                    st = path.stat()
                    step = self._known.get(_sig(st), (None, None))[0]
                    step = step if isinstance(step, int) else _name_step(path.name)
                    if step is not None:
                        entries[path.name] = {"file": path.name, "step": step, "sha256": sha256_file(path),
                                              "size": st.st_size}
                continue
            entries.pop(path.name, None)
            if path.exists():  # unverified, so it is neither rotated nor overwritten
                failure.moved = self._move_aside(path, failure.step)
                self.warn(f"{'damaged ' if failure.damaged else ''}checkpoint {self._describe(failure, m)}; "
                          f"it is not kept")
        return sorted(entries.values(), key=lambda e: e["step"])

    def _not_written(self, step: int, good: dict | None, e: BaseException,
                     state: dict | None) -> DiskError | None:
        """The one line for a checkpoint the machine would not take: why (with the free space and
        the size it needed), and the newest checkpoint that is still good. None when `e` is not the
        machine's refusal (an OSError of another kind is still one line)."""
        why = disk.reason(e, self.dir, checkpoint_size(state) if state is not None else None)
        if why is None and isinstance(e, OSError):
            why = e.strerror or str(e)
        if why is None:
            return None
        kept = (f"the last good checkpoint is step {good['step']} ({self.dir / good['file']})" if good
                else "no checkpoint has been written yet")
        return DiskError(f"could not write the step {step} checkpoint in {self.dir}: {why}; {kept}")

    def _ordered(self, m: _Manifest) -> list[tuple[Path, dict | None]]:
        """Every checkpoint file with its manifest entry (None if unlisted), newest first: by the
        recorded step, else the step in the name; other names after those, by age."""
        listed = {e["file"]: e for e in m.entries or []}
        rows = [(self.dir / name, e) for name, e in listed.items()]
        rows += [(p, None) for p in self.dir.glob("*.pt") if p.name not in listed and not p.name.startswith(".")]

        def newest(row):
            path, e = row
            if e is not None:
                return e["step"], 1, 0
            try:
                mtime = path.stat().st_mtime_ns
            except OSError:
                mtime = 0
            step = _name_step(path.name)
            if step is None:  # with no manifest to go by, an unlisted last.pt is the newest
                step = float("inf") if path.name == LAST and not m.entries else -1
            return step, 0, mtime

        return sorted(rows, key=newest, reverse=True)

    def candidates(self) -> list[tuple[Path, str | None]]:
        """(file, recorded SHA-256 or None), newest first: the manifest's entries whose file exists,
        then any checkpoint files it does not list (a crash between a write and the manifest
        update). Files moved to corrupt/ are not among them."""
        return [(p, e.get("sha256") if e else None) for p, e in self._ordered(self._read_manifest()) if p.exists()]

    def load_latest(self, map_location="cpu") -> tuple[dict[str, Any], Path]:
        """The newest checkpoint that is complete and matches its recorded SHA-256. Each newer file
        that fails is moved to corrupt/ and reported (warn and `self.fallbacks`): which file, why,
        and how many steps falling back loses. Each file is read and verified once."""
        self.fallbacks = notes = []
        for attempt in range(3):  # a trainer that saves meanwhile rewrites the manifest: look again
            m = self._manifest(notes)
            found, failed = None, []
            for path, entry in self._ordered(m):
                ckpt, failure = self._verify(path, entry, map_location)
                if failure is None:
                    found = ckpt, path
                    break
                if attempt < 2 and self._read_manifest().raw != m.raw:
                    break
                failed.append(failure)
            else:
                break
            if found is not None:
                break
        for f in failed:
            if f.damaged:
                f.moved = self._move_aside(f.path, f.step)
        self._drop_from_manifest({f.path.name for f in failed if f.moved.startswith(", moved")})
        if found is None:
            detail = "; ".join(self._describe(f, m) for f in failed)
            raise GankitError(f"no usable checkpoint in {self.dir}" + (f": {detail}" if detail else ""))
        ckpt, path = found
        step = ckpt.get("step")
        newest = max((e["step"] for e in m.entries or []), default=None)
        for f in failed:
            if not f.damaged and f.step is not None and step is not None and f.step <= step:
                continue  # missing, but not newer than what was loaded: nothing lost
            top = newest if newest is not None else f.step
            if top is None or step is None:
                lost = f"how many steps that loses is unknown ({f.path.name}'s step is not recorded)"
            else:
                n = max(top - step, 0)
                lost = f"{n} step{'' if n == 1 else 's'} lost"
            msg = (f"skipped {'damaged ' if f.damaged else ''}checkpoint {self._describe(f, m)}; "
                   f"using {path.name} (step {step}): {lost}")
            self.warn(msg)
            notes.append(msg)
        return ckpt, path
