"""Reading a run directory into a plain `RunData`: what `gankit.training` wrote, as far as it got.

Every file is optional except that a run has a config.yaml or a metrics.jsonl: a run that has
not written its first checkpoint or grid, a metrics.jsonl cut short mid-line, an unreadable
config or manifest all become notes in `missing` / `warnings`, never exceptions. Only bytes are
read (images stay encoded, checkpoints are never opened), so reading is cheap enough to repeat at
every grid step of a training run. No torch here: see gankit.report.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import GankitError

# train.log lines worth a look before anything else; case-insensitive substrings.
WARN_WORDS = ("warning", "roll", "non-finite", "nonfinite", "skipped", "damaged", "not written", "corrupt",
              "diverged")
_WARN = re.compile("|".join(re.escape(w) for w in WARN_WORDS), re.IGNORECASE)
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$")
_SAMPLE = re.compile(r"^step_(\d+)\.png$")
_CKPT_STEP = re.compile(r"^(?:step_|new-)(\d+)\.pt$")
NOT_PLOTTED = {"step", "epoch", "time", "eval"}  # bookkeeping, not curves
MAX_LOG_LINES = 5000  # the tail of train.log shown; the warnings box scans all of it


@dataclass
class LogLine:
    time: str  # "YYYY-MM-DD HH:MM:SS", "" for a line without a timestamp
    text: str
    warning: bool


@dataclass
class Checkpoint:
    file: str
    role: str  # "last", "best", "periodic", "damaged" (in corrupt/), "listed but missing"
    step: int | None
    size: int | None
    sha256: str | None  # from manifest.json; files are never hashed here (they can be GBs)


@dataclass
class RunData:
    """One run directory as read. Curves are the run's current history: rows a rollback undid are
    dropped, so every list of rows has strictly increasing steps."""

    path: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)  # {} when config.yaml is absent or unreadable
    config_text: str | None = None  # config.yaml as written, None when absent
    config_error: str | None = None
    train_rows: list[dict] = field(default_factory=list)
    eval_rows: list[dict] = field(default_factory=list)
    bad_metric_lines: int = 0
    last_line_cut: bool = False  # the final metrics.jsonl line is incomplete (being written)
    log: list[LogLine] = field(default_factory=list)  # the tail of train.log (MAX_LOG_LINES)
    log_total: int = 0  # lines in train.log
    warnings: list[str] = field(default_factory=list)  # warning lines of train.log, then our own findings
    commands: list[str] = field(default_factory=list)  # "command:" lines: the start, then any resumes
    data_lines: list[str] = field(default_factory=list)  # "data:" lines, prefix removed
    precision: list[str] = field(default_factory=list)  # "precision:" lines (one per start or resume), prefix removed
    samples: list[tuple[int, Path]] = field(default_factory=list)  # (step, png), by step
    sample_audio: dict[int, Path] = field(default_factory=dict)  # step -> the grid's clips (an audio run's .wav)
    data_png: Path | None = None
    gif: Path | None = None
    gif_size: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    manifest_error: str | None = None
    missing: list[str] = field(default_factory=list)

    def cfg(self, *keys: str, default: Any = None) -> Any:
        """config[keys[0]][keys[1]]..., or `default` where the config lacks it (or is garbled)."""
        d: Any = self.config
        for k in keys:
            if not isinstance(d, dict) or k not in d:
                return default
            d = d[k]
        return d

    @property
    def task(self) -> str:
        return str(self.cfg("task", default="?"))

    @property
    def preset(self) -> str:
        return str(self.cfg("preset", default="?"))

    @property
    def total_steps(self) -> int | None:
        s = self.cfg("train", "steps")
        return s if isinstance(s, int) and not isinstance(s, bool) else None

    @property
    def steps_done(self) -> int:
        """The newest step anything on disk was written at (a metrics row, a grid, a checkpoint)."""
        steps = [r["step"] for r in self.train_rows[-1:] + self.eval_rows[-1:]]
        steps += [s for s, _ in self.samples[-1:]]
        steps += [c.step for c in self.checkpoints if c.role == "last" and c.step is not None]
        return max(steps, default=0)


def read_run(run_dir: str | Path) -> RunData:
    """Everything the report shows of `run_dir`; GankitError when it is no run directory at all."""
    path = Path(run_dir)
    if not path.exists():
        raise GankitError(f"run directory {path} does not exist")
    if not path.is_dir():
        raise GankitError(f"{path} is not a directory; give a run directory (the --out of `gankit train`)")
    if not (path / "config.yaml").is_file() and not (path / "metrics.jsonl").is_file():
        raise GankitError(f"{path} is not a gankit run: expected config.yaml or metrics.jsonl in it "
                          "(what `gankit train` writes)")
    run = RunData(path=path, name=path.resolve().name)
    _read_config(run)
    _read_metrics(run)
    _read_log(run)
    _read_images(run)
    _read_checkpoints(run)
    return run


def _read_config(run: RunData) -> None:
    f = run.path / "config.yaml"
    if not f.is_file():
        run.missing.append("config.yaml (the resolved config) is absent")
        return
    run.config_text = f.read_text(errors="replace")
    try:
        cfg = yaml.safe_load(run.config_text)
    except yaml.YAMLError as e:
        run.config_error = "config.yaml could not be read: " + " ".join(str(e).split())[:200]
    else:
        if isinstance(cfg, dict):
            run.config = cfg
        else:
            run.config_error = f"config.yaml could not be read: it holds a {type(cfg).__name__}, not a mapping"
    if run.config_error:
        run.missing.append(run.config_error)


def _read_metrics(run: RunData) -> None:
    f = run.path / "metrics.jsonl"
    if not f.is_file():
        run.missing.append("metrics.jsonl is absent: no training curves yet")
        return
    text = f.read_text(errors="replace")
    lines = text.split("\n")
    train: list[dict] = []
    evals: list[dict] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not _is_int(row.get("step")):
            # The trainer appends whole lines; one without its newline is being written right now.
            if i == len(lines) - 1 and not text.endswith("\n"):
                run.last_line_cut = True
            else:
                run.bad_metric_lines += 1
            continue
        _append(evals if row.get("eval") is True else train, row)
    run.train_rows, run.eval_rows = train, evals
    if run.bad_metric_lines:
        run.warnings.append(f"metrics.jsonl: {run.bad_metric_lines} line(s) are not JSON rows with a step; "
                            "they were left out")
    if not train:
        run.missing.append("metrics.jsonl has no training rows yet")
    nonfinite = next((r["nonfinite"] for r in reversed(train) if _is_num(r.get("nonfinite"))), 0)
    if nonfinite:
        run.warnings.append(f"metrics.jsonl: {nonfinite:g} non-finite update(s) skipped so far (nonfinite)")
    every = run.cfg("eval", "every")
    if not evals and _is_int(every) and every > 0:
        run.missing.append(f"no evaluation yet (eval.every = {every})")


def _append(rows: list[dict], row: dict) -> None:
    """Add `row` to a history with increasing steps. A step at or before the newest one means the
    run went back (a rollback, or a resume before `forget_after`): what came after it is undone."""
    while rows and rows[-1]["step"] >= row["step"]:
        rows.pop()
    rows.append(row)


def _read_log(run: RunData) -> None:
    f = run.path / "train.log"
    if not f.is_file():
        run.missing.append("train.log is absent")
        return
    lines = f.read_text(errors="replace").splitlines()
    run.log_total = len(lines)
    parsed = []
    for raw in lines:
        m = _LOG_LINE.match(raw)
        when, text = (m.group(1), m.group(2)) if m else ("", raw)
        parsed.append(LogLine(when, text, bool(_WARN.search(text))))
        if text.startswith("command:"):
            run.commands.append(text[len("command:"):].strip())
        elif text.startswith("data:"):
            run.data_lines.append(text[len("data:"):].strip())
        elif text.startswith("precision:"):
            run.precision.append(text[len("precision:"):].strip())
    # train.log's own warnings first: they are what the user most needs to see.
    run.warnings[:0] = [f"{ln.time} {ln.text}".strip() for ln in parsed if ln.warning]
    run.log = parsed[-MAX_LOG_LINES:]


def _read_images(run: RunData) -> None:
    d = run.path / "samples"
    if d.is_dir():
        found = ((_SAMPLE.match(p.name), p) for p in d.iterdir())
        run.samples = sorted((int(m.group(1)), p) for m, p in found if m and p.is_file())
        run.sample_audio = {step: p.with_suffix(".wav") for step, p in run.samples if p.with_suffix(".wav").is_file()}
    if not run.samples:
        run.missing.append("no sample grids yet (samples/step_NNNNNN.png)")
    if (run.path / "data.png").is_file():
        run.data_png = run.path / "data.png"
    gif = run.path / "progress.gif"
    if gif.is_file():
        run.gif, run.gif_size = gif, gif.stat().st_size
    else:
        run.missing.append("progress.gif (the animation, written when training ends)")


def _read_checkpoints(run: RunData) -> None:
    d = run.path / "checkpoints"
    if not d.is_dir():
        run.missing.append("no checkpoints yet (checkpoints/)")
        return
    entries: dict[str, dict] = {}
    mf = d / "manifest.json"
    if mf.is_file():
        try:
            listed = json.loads(mf.read_text())["checkpoints"]
            entries = {e["file"]: e for e in listed if isinstance(e, dict) and isinstance(e.get("file"), str)}
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            run.manifest_error = f"checkpoints/manifest.json could not be read ({type(e).__name__})"
            run.warnings.append(run.manifest_error)
    else:
        run.manifest_error = "checkpoints/manifest.json is absent"
    on_disk = {p.name: p for p in d.glob("*.pt") if p.is_file() and not p.name.startswith(".")}  # not a write in progress
    for name in sorted(set(on_disk) | set(entries), key=_ckpt_order):
        e, p = entries.get(name, {}), on_disk.get(name)
        m = _CKPT_STEP.match(name)
        step = e.get("step") if _is_int(e.get("step")) else (int(m.group(1)) if m else None)
        role = {"last.pt": "last", "best.pt": "best"}.get(name, "periodic")
        if name == "best.pt" and step is None:
            step = _best_step(d / "best.json")
        if p is None:
            role = "listed but missing"
            run.warnings.append(f"checkpoints/{name} is listed in manifest.json but missing")
        run.checkpoints.append(Checkpoint(name, role, step, p.stat().st_size if p else e.get("size"),
                                          e.get("sha256") if isinstance(e.get("sha256"), str) else None))
    corrupt = d / "corrupt"
    if corrupt.is_dir():
        for p in sorted(corrupt.iterdir()):
            m = _CKPT_STEP.match(p.name)
            run.checkpoints.append(Checkpoint(f"corrupt/{p.name}", "damaged", int(m.group(1)) if m else None,
                                              p.stat().st_size if p.is_file() else None, None))
    if not any(c.role in ("last", "best", "periodic") for c in run.checkpoints):
        run.missing.append("no checkpoints yet (checkpoints/ holds no .pt file)")


def _best_step(path: Path) -> int | None:
    """The step best.pt was copied at, from the best.json training writes beside it (older runs: none)."""
    try:
        step = json.loads(path.read_text()).get("step")
    except (OSError, ValueError, AttributeError):
        return None
    return step if _is_int(step) else None


def _ckpt_order(name: str) -> tuple:
    """Periodic checkpoints by step, then last.pt, then best.pt."""
    m = _CKPT_STEP.match(name)
    return (0, int(m.group(1)), name) if m else (1, {"last.pt": 0, "best.pt": 1}.get(name, 2), name)


# -- the numbers in rows -------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def scalars(row: dict) -> dict[str, float]:
    """The row's plottable numbers by name; nested dicts of numbers flattened as "a/b". NaN and
    infinities are kept (a curve shows a gap there)."""
    out: dict[str, float] = {}
    for k, v in row.items():
        if k in NOT_PLOTTED or k == "protocol":
            continue
        if _is_num(v):
            out[k] = float(v)
        elif isinstance(v, dict):
            for k2, v2 in scalars(v).items():
                out[f"{k}/{k2}"] = v2
    return out


def series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of `key` over the rows that have it."""
    xs, ys = [], []
    for r in rows:
        v = scalars(r).get(key) if "/" in key else r.get(key)
        if _is_num(v):
            xs.append(float(r["step"]))
            ys.append(float(v))
    return xs, ys


def keys(rows: list[dict]) -> list[str]:
    """Every numeric key of any row, in first-seen order."""
    seen: dict[str, None] = {}
    for r in rows:
        for k in scalars(r):
            seen.setdefault(k)
    return list(seen)


def finite(v: float) -> bool:
    return not (math.isnan(v) or math.isinf(v))
