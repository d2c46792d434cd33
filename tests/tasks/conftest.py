"""Shared by the task folders' tests (tests/tasks/<task>/): stored values of tiny seeded runs, and
a stand-in for the trainer's step state to call a task's phase functions on fixed tensors.

Stored values, as tests/test_stored_values.py does for the generation presets: a task's preset,
tiny and seeded, trained a few CPU steps through the public API with torch's default dtype set to
float64; the first and last 4 values of every tensor of every trained network (the last
checkpoint) and every scalar the task logs are compared with tests/golden/tasks/<task>.json, at
rtol 1e-7 / atol 1e-9 (losses: within the 6 decimals metrics.jsonl keeps). That module's
docstring says why float64 makes the values hold on any x86-64 CPU; for these tasks, with
torch's generic kernels, MKL and oneDNN on SSE and one thread, every value came out bitwise equal
(tests/tasks/test_values_kernels.py, marked slow, checks it). Each task's data is made by its test
(PNG files, a text file, WAV tones, pans over scikit-image's photos), nothing from a download.

Regenerate (only when a change of the numbers is intended, and say so in the commit):
    GANKIT_RECORD_GOLDEN=1 .venv/bin/python -m pytest tests/tasks -k matches_stored_values
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import gankit
from gankit.tasks import get_task

GOLDEN = Path(__file__).parent.parent / "golden" / "tasks"
RTOL, ATOL = 1e-7, 1e-9  # as tests/test_stored_values.py: ~100x the cross-kernel spread in float64
LOSS_ATOL = 1.5e-6  # logged scalars are rounded to 6 decimals
COMMON = ["log.progress=false", "device=cpu", "seed=0", "train.precision=fp32", "log.every=2",
          "log.grid_every=1000"]


class StoredValues:
    """The stored values of one task (tests/golden/tasks/<task>.json), by variant name."""

    def __init__(self, task: str):
        self.task, self.path = task, GOLDEN / f"{task}.json"

    def train(self, preset: str, sets: list[str], out: Path) -> dict:
        """Train `preset` with `sets` in float64 into `out`; its fingerprint."""
        before = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            cfg = gankit.load_config(preset, overrides=[*sets, *COMMON])
            assert cfg.task == self.task, f"{preset} is a {cfg.task} preset"
            run = gankit.train(cfg, str(out))
            return fingerprint(run, self.task)
        finally:
            torch.set_default_dtype(before)

    def mismatches(self, variant: str, got: dict) -> list[str]:
        """Each value group of `got` that differs from the stored one beyond the tolerances."""
        want = json.loads(self.path.read_text())[variant]
        assert sorted(got) == sorted(want), f"{variant}: tensor or scalar names changed"
        bad = []
        for key in want:
            atol = LOSS_ATOL if key.startswith("log.") else ATOL
            try:
                torch.testing.assert_close(torch.tensor(got[key], dtype=torch.float64),
                                           torch.tensor(want[key], dtype=torch.float64), rtol=RTOL, atol=atol)
            except AssertionError as e:
                bad.append(f"{variant} {key}: {' '.join(str(e).split())}")
        return bad

    def check(self, variant: str, got: dict) -> None:
        """Record `got` (GANKIT_RECORD_GOLDEN=1) or fail on every group that moved."""
        if os.environ.get("GANKIT_RECORD_GOLDEN"):
            stored = json.loads(self.path.read_text()) if self.path.exists() else {}
            stored[variant] = got
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(stored, indent=0, sort_keys=True) + "\n")
            pytest.skip("recorded")
        bad = self.mismatches(variant, got)
        assert not bad, "\n".join(bad)

    def caught(self, variant: str, got: dict) -> None:
        """A run with a small change of the maths (`got`) must fail the comparison."""
        if os.environ.get("GANKIT_RECORD_GOLDEN"):
            pytest.skip("recording")
        assert self.mismatches(variant, got), f"{variant}: the change went unnoticed"


def fingerprint(run, task: str) -> dict:
    """First/last 4 values of every floating tensor of every trained network in the run's last
    checkpoint, and every scalar of the task's `stat_names` that metrics.jsonl logged."""
    ck = torch.load(run.checkpoint, map_location="cpu", weights_only=True)
    out = {}
    for net, sd in ck["nets"].items():
        for name, p in sd.items():
            if p.is_floating_point() and p.numel():
                flat = p.detach().flatten()
                out[f"{net}.{name}"] = [float(v) for v in torch.cat([flat[:4], flat[-4:]])]
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if not r.get("eval")]
    for k in get_task(task).stat_names:
        logged = [r[k] for r in rows if k in r]
        if logged:
            out[f"log.{k}"] = logged
    return out


@pytest.fixture
def stored_values(request):
    """`StoredValues` of the task whose folder the test is in (tests/tasks/<task>/)."""
    return StoredValues(Path(request.node.fspath).parent.name)


class Step:
    """What a task's phase function needs of the trainer's step state: the task's objective, its
    networks (forwards unwrapped), extra state, generators, and `update` recording each loss
    instead of stepping an optimiser, so that every network is the same before and after the
    phase and a test can recompute each term by hand from the same networks."""

    def __init__(self, parts, seed: int = 0):
        self.obj, self.nets, self.fwd, self.extra = parts.objective, parts.nets, parts.nets, parts.extra
        self.gens = {"aug": torch.Generator().manual_seed(seed)}
        self.losses: dict[str, list[torch.Tensor]] = {}  # optimiser name -> each loss handed to it

    def update(self, name: str, loss: torch.Tensor) -> None:
        assert loss.dim() == 0 and loss.requires_grad, name
        self.losses.setdefault(name, []).append(loss.detach())


@pytest.fixture
def float64():
    """torch's default dtype float64 for the test (exact hand-computed comparisons)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.fixture
def step_state():
    """`Step`: a phase function's `st` built from a task's `Parts`."""
    return Step


def stats(names, values) -> SimpleNamespace:
    """A phase's returned STATS tensor as attributes."""
    return SimpleNamespace(**dict(zip(names, values)))


@pytest.fixture
def named_stats():
    return stats


def assert_weighted_sum(total: torch.Tensor, terms: dict[str, tuple[float, torch.Tensor]]) -> None:
    """`total` == sum of weight * term (float64, to ~1e-12), and != that sum with any one weight
    1% off: each term carries enough of the total that a wrong weight fails the check."""
    want = sum(w * t for w, t in terms.values())
    torch.testing.assert_close(total, want, rtol=1e-12, atol=1e-14)
    for name, (w, t) in terms.items():
        assert w != 0 and t.abs() > 1e-6, f"{name}: a zero term cannot show its weight"
        off = want + 0.01 * w * t
        assert not torch.allclose(total, off, rtol=1e-12, atol=1e-14), f"{name}: a weight 1% off goes unnoticed"


@pytest.fixture
def weighted_sum():
    """`assert_weighted_sum`."""
    return assert_weighted_sum


class Soundtracks:
    """Videos with a sound track, for the video commands' tests: `write` makes one (a 440 Hz tone
    as long as the frames, in AAC, what phones and cameras record), `assert_kept` checks that an
    output carries it through unchanged."""

    RATE = 48000

    @classmethod
    def write(cls, path: Path, frames, fps: int) -> Path:
        import av
        import numpy as np

        with av.open(str(path), "w") as c:
            v = c.add_stream("libx264", rate=fps)
            v.height, v.width = frames[0].shape[:2]
            v.pix_fmt = "yuv420p"
            a = c.add_stream("aac", rate=cls.RATE, layout="mono")
            t = np.arange(len(frames) * cls.RATE // fps) / cls.RATE
            tone = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                              format="fltp", layout="mono")
            tone.sample_rate, tone.pts = cls.RATE, 0
            for f in frames:
                c.mux(v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
            c.mux(a.encode(tone))
            c.mux(v.encode())
            c.mux(a.encode())
        return path

    @staticmethod
    def _read(path: Path) -> dict:
        import av
        import numpy as np

        with av.open(str(path)) as c:
            v = c.streams.video[0]
            if not c.streams.audio:
                return {"video_s": float(v.duration * v.time_base), "fps": float(v.average_rate)}
            s = c.streams.audio[0]
            packets = [bytes(p) for p in c.demux(s) if p.size]
            c.seek(0)
            samples = np.concatenate([f.to_ndarray() for f in c.decode(s)], axis=1)
            return {"video_s": float(v.duration * v.time_base), "fps": float(v.average_rate),
                    "codec": s.codec_context.name, "rate": s.sample_rate, "channels": s.codec_context.channels,
                    "audio_s": float(s.duration * s.time_base), "packets": packets, "samples": samples}

    @classmethod
    def assert_kept(cls, src: Path, out: Path) -> None:
        """`out` has `src`'s audio, packet for packet and sample for sample, and lasts as long (to a
        frame of the input)."""
        import numpy as np

        a, b = cls._read(src), cls._read(out)
        assert "codec" in b, f"{out}: no audio stream"
        assert (b["codec"], b["rate"], b["channels"]) == (a["codec"], a["rate"], a["channels"]) == ("aac", cls.RATE, 1)
        assert b["audio_s"] == a["audio_s"] and abs(b["video_s"] - a["video_s"]) <= 1 / a["fps"]
        assert b["packets"] == a["packets"] and len(a["packets"]) >= 5
        np.testing.assert_array_equal(b["samples"], a["samples"])
        assert np.abs(a["samples"]).max() > 0.2  # the tone itself, not silence, came through

    @classmethod
    def has_audio(cls, path: Path) -> bool:
        return "codec" in cls._read(path)


@pytest.fixture
def soundtracks():
    """`Soundtracks`: videos with a sound track, and the check that an output kept it."""
    return Soundtracks
