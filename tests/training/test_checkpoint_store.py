"""CheckpointStore: a damaged checkpoint is reported, moved to corrupt/ and never used again."""

import json

import pytest
import torch

from gankit.errors import GankitError
from gankit.training.checkpoint import load_checkpoint, save_checkpoint
from gankit.training.store import CheckpointStore
from gankit.util import sha256_file


def state(step):
    return {"step": step, "config": {}, "w": torch.randn(4)}


def store_with(tmp_path, steps, keep=3):
    """A store that has saved `steps` in order, and the warnings it gave."""
    warnings = []
    store = CheckpointStore(tmp_path / "checkpoints", keep=keep, warn=warnings.append)
    for s in steps:
        store.save(state(s))
    return store, warnings


def reopened(store):
    """A fresh store on the same directory (as a new process would open it), and its warnings."""
    warnings = []
    return CheckpointStore(store.dir, keep=store.keep, warn=warnings.append), warnings


def manifest(store):
    return json.loads((store.dir / "manifest.json").read_text())["checkpoints"]


def on_disk(store):
    return sorted(p.name for p in store.dir.glob("*.pt"))


def corrupt(store):
    return sorted(p.name for p in (store.dir / "corrupt").glob("*"))


def assert_manifest_matches_files(store):
    entries = manifest(store)
    assert sorted(e["file"] for e in entries) == on_disk(store)
    for e in entries:
        path = store.dir / e["file"]
        assert sha256_file(path) == e["sha256"], e["file"]
        assert load_checkpoint(path)["step"] == e["step"], e["file"]


def test_truncated_last_is_reported_moved_aside_and_never_blessed(tmp_path):
    store, _ = store_with(tmp_path, [50, 100, 120])
    good_50 = sha256_file(store.dir / "step_00000050.pt")
    bad = store.last.read_bytes()[:1000]
    store.last.write_bytes(bad)  # a torn write

    store, warnings = reopened(store)
    ckpt, path = store.load_latest()
    assert ckpt["step"] == 100 and path.name == "step_00000100.pt"
    assert len(warnings) == 1 and store.fallbacks == warnings
    assert warnings[0].startswith("skipped damaged checkpoint last.pt (step 120): SHA-256 does not match "
                                   "manifest.json (truncated: 1000 of ")
    assert "moved to corrupt/last.step120.pt" in warnings[0]
    assert warnings[0].endswith("using step_00000100.pt (step 100): 20 steps lost")
    assert not store.last.exists() and corrupt(store) == ["last.step120.pt"]
    assert [e["file"] for e in manifest(store)] == ["step_00000050.pt", "step_00000100.pt"]

    # Training goes on from 100: the bad file is neither rotated nor counted towards keep=3.
    store.save(state(120))
    assert on_disk(store) == ["last.pt", "step_00000050.pt", "step_00000100.pt"]
    assert sha256_file(store.dir / "step_00000050.pt") == good_50
    store.save(state(150))
    assert on_disk(store) == ["last.pt", "step_00000100.pt", "step_00000120.pt"]
    assert [(e["file"], e["step"]) for e in manifest(store)] == [
        ("step_00000100.pt", 100), ("step_00000120.pt", 120), ("last.pt", 150)]
    assert_manifest_matches_files(store)
    assert (store.dir / "corrupt" / "last.step120.pt").read_bytes() == bad
    assert store.candidates()[0][0] == store.last
    assert all(p.parent == store.dir for p, _ in store.candidates())


def test_one_flipped_byte_is_a_sha256_mismatch(tmp_path):
    store, _ = store_with(tmp_path, [10, 20])
    data = bytearray(store.last.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, still perhaps loadable: only the hash can tell
    store.last.write_bytes(bytes(data))
    store, warnings = reopened(store)
    ckpt, _ = store.load_latest()
    assert ckpt["step"] == 10
    assert warnings == ["skipped damaged checkpoint last.pt (step 20): SHA-256 does not match manifest.json, "
                        "moved to corrupt/last.step20.pt; using step_00000010.pt (step 10): 10 steps lost"]
    assert corrupt(store) == ["last.step20.pt"] and not store.last.exists()


def test_save_moves_aside_a_last_that_no_longer_matches_instead_of_rotating_it(tmp_path):
    store, warnings = store_with(tmp_path, [10, 20])
    data = bytearray(store.last.read_bytes())
    data[-100] ^= 0x01
    store.last.write_bytes(bytes(data))  # damaged after it was written, in the same process
    store.save(state(30))
    assert on_disk(store) == ["last.pt", "step_00000010.pt"]  # no step_00000020.pt made of bad bytes
    assert corrupt(store) == ["last.step20.pt"]
    assert len(warnings) == 1 and warnings[0].startswith("damaged checkpoint last.pt (step 20): SHA-256")
    assert_manifest_matches_files(store)


def test_a_valid_checkpoint_the_manifest_does_not_list_is_still_used(tmp_path):
    store, _ = store_with(tmp_path, [10, 20])
    save_checkpoint(state(30), store.dir / "step_00000030.pt")  # a crash before the manifest update
    store, warnings = reopened(store)
    ckpt, path = store.load_latest()
    assert ckpt["step"] == 30 and path.name == "step_00000030.pt" and warnings == []
    store.save(state(40))  # adopted: hashed, listed, counted towards keep
    assert [(e["file"], e["step"]) for e in manifest(store)] == [
        ("step_00000020.pt", 20), ("step_00000030.pt", 30), ("last.pt", 40)]
    assert_manifest_matches_files(store)


def test_unlisted_damaged_file_has_an_unknown_step(tmp_path):
    store, _ = store_with(tmp_path, [10])
    (store.dir / "manifest.json").unlink()
    torch.save({"step": 5}, store.dir / "step_00000005.pt")  # loads, but gankit did not write it
    store.last.write_bytes(store.last.read_bytes()[:300])
    store, warnings = reopened(store)
    with pytest.raises(GankitError) as err:
        store.load_latest()
    msg = str(err.value)
    assert "last.pt (step unknown: manifest.json is missing): corrupt or truncated checkpoint" in msg
    assert "step_00000005.pt (step 5): not a gankit checkpoint, moved to corrupt/step_00000005.pt" in msg
    assert corrupt(store) == ["last.pt", "step_00000005.pt"]


def test_corrupt_manifest_falls_back_to_the_files_and_warns_once(tmp_path):
    store, _ = store_with(tmp_path, [10, 20, 30])
    raw = (store.dir / "manifest.json").read_bytes()
    (store.dir / "manifest.json").write_bytes(raw[: len(raw) // 2])  # truncated JSON
    store, warnings = reopened(store)
    ckpt, path = store.load_latest()
    assert ckpt["step"] == 30 and path.name == "last.pt"
    assert len(warnings) == 1 and "manifest.json is unreadable" in warnings[0]
    assert "moved to corrupt/manifest.json" in warnings[0] and store.fallbacks == warnings
    store.load_latest()
    assert len(warnings) == 1
    store.save(state(40))  # the files on disk are checked by loading, then listed again
    assert [(e["file"], e["step"]) for e in manifest(store)] == [
        ("step_00000020.pt", 20), ("step_00000030.pt", 30), ("last.pt", 40)]
    assert on_disk(store) == ["last.pt", "step_00000020.pt", "step_00000030.pt"]
    assert_manifest_matches_files(store)


def test_corrupt_manifest_and_a_damaged_last(tmp_path):
    store, _ = store_with(tmp_path, [10, 20])
    (store.dir / "manifest.json").write_text('{"checkpoints": [')
    store.last.write_bytes(store.last.read_bytes()[:500])
    store, warnings = reopened(store)
    ckpt, _ = store.load_latest()
    assert ckpt["step"] == 10 and len(warnings) == 2
    assert warnings[1].startswith("skipped damaged checkpoint last.pt (step unknown: manifest.json is unreadable)")
    assert warnings[1].endswith("how many steps that loses is unknown (last.pt's step is not recorded)")
    assert corrupt(store) == ["last.pt", "manifest.json"]


def test_every_checkpoint_damaged_is_an_error_naming_each(tmp_path):
    store, _ = store_with(tmp_path, [10, 20])
    store.last.write_bytes(store.last.read_bytes()[:200])
    (store.dir / "step_00000010.pt").write_bytes(b"\0" * 64)
    store, warnings = reopened(store)
    with pytest.raises(GankitError) as err:
        store.load_latest()
    msg = str(err.value)
    assert msg.startswith(f"no usable checkpoint in {store.dir}: last.pt (step 20): SHA-256 does not "
                          "match manifest.json (truncated: 200 of ")
    assert "moved to corrupt/last.step20.pt" in msg
    assert "step_00000010.pt (step 10): SHA-256 does not match manifest.json (truncated: 64 of " in msg and "moved to corrupt/step_00000010.pt" in msg
    assert on_disk(store) == [] and store.candidates() == [] and manifest(store) == []
    assert corrupt(store) == ["last.step20.pt", "step_00000010.pt"]


def test_moved_aside_files_never_overwrite_each_other(tmp_path):
    store, _ = store_with(tmp_path, [10, 20])
    payloads = []
    for i in range(3):  # last.pt at step 20 goes bad three times over
        store.save(state(20))
        payloads.append(store.last.read_bytes()[: 400 + i])
        store.last.write_bytes(payloads[-1])
        store, _ = reopened(store)
        assert store.load_latest()[0]["step"] == 10
    assert corrupt(store) == ["last.step20.1.pt", "last.step20.2.pt", "last.step20.pt"]
    folder = store.dir / "corrupt"
    assert [(folder / n).read_bytes() for n in ("last.step20.pt", "last.step20.1.pt", "last.step20.2.pt")] == payloads


def test_a_missing_listed_file_is_reported_with_the_steps_lost(tmp_path):
    store, _ = store_with(tmp_path, [10, 20])
    store.last.unlink()
    store, warnings = reopened(store)
    assert store.load_latest()[0]["step"] == 10
    assert warnings == ["skipped checkpoint last.pt (step 20): listed in manifest.json but missing; "
                        "using step_00000010.pt (step 10): 10 steps lost"]


def test_a_newer_schema_is_raised_not_moved_aside(tmp_path):
    store, warnings = store_with(tmp_path, [10])
    save_checkpoint({**state(20), "schema": 99}, store.dir / "step_00000020.pt")
    with pytest.raises(GankitError, match="schema 99 was written by a newer gankit"):
        store.load_latest()
    assert (store.dir / "step_00000020.pt").exists() and not (store.dir / "corrupt").exists()


def test_a_save_interrupted_before_its_last_rename_is_finished(tmp_path, monkeypatch):
    import os

    from gankit.training import checkpoint as ckmod

    store, _ = store_with(tmp_path, [10])
    real = os.replace

    def crash_on_last(src, dst):
        if str(dst).endswith("last.pt") and "new-" in str(src):
            raise KeyboardInterrupt  # the process dies between the manifest and the rename
        return real(src, dst)

    monkeypatch.setattr(ckmod.os, "replace", crash_on_last)
    with pytest.raises(KeyboardInterrupt):
        store.save(state(20))
    monkeypatch.setattr(ckmod.os, "replace", real)
    store, warnings = reopened(store)
    ckpt, path = store.load_latest()
    assert ckpt["step"] == 20 and path.name == "new-00000020.pt" and warnings == []
    store.save(state(30))
    assert on_disk(store) == ["last.pt", "step_00000010.pt", "step_00000020.pt"]
    assert_manifest_matches_files(store)


def test_a_write_the_machine_refuses_is_one_line_and_changes_nothing(tmp_path, monkeypatch):
    """torch's zip writer on a full disk (RuntimeError over the OSError), a read-only folder, and
    the manifest refused after the checkpoint was written: each is one DiskError with the reason
    and the newest good checkpoint; the files before it are untouched, nothing partial is left."""
    import errno
    import io

    from gankit.errors import DiskError
    from gankit.training import checkpoint as ckmod

    real = torch.save

    def failing(code):
        def save(obj, f, *a, **k):
            if not isinstance(f, io.IOBase):  # measuring the size: no disk involved
                return real(obj, f, *a, **k)
            f.write(b"partial")
            try:
                raise OSError(code, "refused")
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
        return save

    fresh = CheckpointStore(tmp_path / "fresh" / "checkpoints")
    monkeypatch.setattr(ckmod.torch, "save", failing(errno.ENOSPC))
    with pytest.raises(DiskError, match=r"^could not write the step 1 checkpoint in .*fresh/checkpoints: no space "
                                        r"left on device \(.* free, .* needed\); no checkpoint has been written yet$"):
        fresh.save(state(1))
    monkeypatch.undo()
    store, _ = store_with(tmp_path, [2, 4])
    before = {p.name: p.read_bytes() for p in store.dir.iterdir()}
    monkeypatch.setattr(ckmod.torch, "save", failing(errno.EROFS))
    with pytest.raises(DiskError) as e:
        store.save(state(6))
    assert str(e.value) == (f"could not write the step 6 checkpoint in {store.dir}: read-only file system; "
                            f"the last good checkpoint is step 4 ({store.dir / 'last.pt'})")
    monkeypatch.undo()

    def manifest_refused(self, entries):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(CheckpointStore, "_write_manifest", manifest_refused)
    with pytest.raises(DiskError, match="step 6 checkpoint .*: disk quota exceeded .*the last good checkpoint is step 4"):
        store.save(state(6))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in store.dir.iterdir()} == before
    assert reopened(store)[0].load_latest()[0]["step"] == 4


def test_a_bug_in_serialising_is_not_taken_for_a_full_disk(tmp_path, monkeypatch):
    from gankit.training import checkpoint as ckmod

    def bug(obj, f, *a, **k):
        raise RuntimeError("a tensor bug")

    store, _ = store_with(tmp_path, [2])
    monkeypatch.setattr(ckmod.torch, "save", bug)
    with pytest.raises(RuntimeError, match="a tensor bug"):
        store.save(state(4))
    assert not list(store.dir.glob("new-*"))
