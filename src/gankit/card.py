"""The model card of an exported folder (`gankit export RUN --out DIR`): ``README.md`` with the
YAML front matter the Hugging Face Hub reads (library_name, license, tags, pipeline_tag), then
what the run recorded about itself: the task, the data (source, and its hash where one was
recorded), the training budget, every evaluation in metrics.jsonl with its protocol, and the
task's intended use and limits (`Task.card`). Nothing is invented: what the run did not record
is said to be unrecorded, and the license is the user's (`--license`) or "unknown".
Nothing is uploaded; the folder is ready for `huggingface-cli upload` as it is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from gankit.run import Run
from gankit.tasks import get_task

_TIME = re.compile(r"training time: ([0-9.]+) s for the steps of this call, up to step (\d+)")


def eval_rows(run_dir: Path, step: int) -> list[dict]:
    """The evaluation rows of the run's metrics.jsonl up to `step` (the exported checkpoint's)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash: the rest still counts
            continue
        if isinstance(row, dict) and row.get("eval") and row.get("step", 0) <= step:
            rows.append(row)
    return rows


def scores(row: dict) -> dict[str, float]:
    """An evaluation row's numbers by dotted name (nested groups flattened), protocol and step aside."""
    out: dict[str, float] = {}

    def walk(prefix: str, v) -> None:
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, (int, float)):
            out[prefix] = v
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)

    walk("", {k: v for k, v in row.items() if k not in ("step", "eval", "protocol")})
    return out


def training_time(run_dir: Path, step: int) -> float | None:
    """Seconds of training (evaluation, grids and checkpoints excluded) train.log records for the
    calls that reached at most `step`; None when it records none."""
    path = run_dir / "train.log"
    if not path.is_file():
        return None
    found = [(float(t), int(s)) for t, s in _TIME.findall(path.read_text(errors="replace"))]
    kept = [t for t, s in found if s <= step]
    return sum(kept) if kept else None


def _data_lines(run_dir: Path) -> list[str]:
    """train.log's data lines (source, counts, conversions, hashes), first call only, unrepeated."""
    path = run_dir / "train.log"
    if not path.is_file():
        return []
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        text = raw[20:] if len(raw) > 20 and raw[4] == "-" else raw  # drop "YYYY-MM-DD HH:MM:SS "
        if text.startswith("data: ") and text[6:] not in lines:
            lines.append(text[6:])
    return lines


def _hash(data_meta: dict, source: str) -> str | None:
    """The data's content hash where one was recorded: in the checkpoint's data description, or
    the `gankit dataset` archive the run read (its dataset.json's sha256)."""
    for k in ("sha256", "hash"):
        if isinstance(data_meta.get(k), str):
            return data_meta[k]
    path = Path(source)
    if path.suffix == ".zip" and path.is_file():
        try:
            from gankit.data.archive import ImageArchive

            h = ImageArchive(path).info.get("sha256")
            return h if isinstance(h, str) else None
        except Exception:  # an unreadable archive: the card says no hash was recorded
            return None
    return None


def model_card(run: Run, run_dir: Path, license: str = "unknown", onnx_files: list[str] | None = None,
               onnx_notes: dict[str, list[str]] | None = None) -> str:
    """README.md text for an export of `run` (read from `run_dir`)."""
    cfg, task = run.config, get_task(run.task)
    card = task.card(cfg, run.data_meta)
    # a run stopped before its first adversarial step (or with none in its config) is no GAN
    adversarial = card.gan_start is not None and run.step > card.gan_start
    never = "its config has no adversarial phase" if card.gan_start is None else \
        f"they begin after step {card.gan_start:,}"
    tags = ["gankit", *(["gan"] if adversarial else []), run.task, *card.tags] + (["onnx"] if onnx_files else [])
    front = {"library_name": "gankit", "license": license, "tags": list(dict.fromkeys(tags))}
    if card.pipeline_tag:
        front["pipeline_tag"] = card.pipeline_tag
    name = run_dir.name
    out = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
           f"# {name}", "",
           (f"A GAN for the `{run.task}` task trained with gankit" if adversarial else
            f"A network for the `{run.task}` task trained with gankit on its non-adversarial losses only (no "
            f"adversarial step: {never})")
           + (f" ({', '.join(card.tags)})" if card.tags else "") + f", exported at step {run.step} "
           f"({'EMA' if run.ema else 'raw'} weights of {', '.join(task.exported_nets(cfg))}).", ""]

    out += ["## Task", "", f"`{run.task}`: {card.what}.", ""]

    source = cfg.data.source
    digest = _hash(run.data_meta, str(source))
    out += ["## Data", "", f"- source: `{source}`",
            f"- content hash: `{digest}`" if digest else "- content hash: not recorded by the run"]
    out += [f"- {line}" for line in _data_lines(run_dir)]
    out += [""]

    batch = cfg.train.batch
    secs = training_time(run_dir, run.step)
    out += ["## Training", "", f"- steps: {run.step:,} at batch {batch} ({run.step * batch:,} examples seen)",
            f"- training time: {secs:.1f} s (train.log; evaluation, grids and checkpoints excluded)"
            if secs is not None else "- training time: not recorded",
            f"- seed: {cfg.seed}; the resolved config is `config.json`'s \"config\"", ""]

    rows = eval_rows(run_dir, run.step)
    out += ["## Metrics", ""]
    if not rows:
        out += ["The run recorded no evaluation (metrics.jsonl has no evaluation row up to this step).", ""]
    else:
        # a protocol differs from row to row mostly by its step and run name, said once here
        protocols: list[str] = []
        table = ["| step | metric | value | protocol |", "|---|---|---|---|"]
        for row in rows:
            p = {k: v for k, v in (row.get("protocol") or {}).items() if k not in ("step", "run")}
            text = json.dumps(p, sort_keys=True)
            if text not in protocols:
                protocols.append(text)
            for k, v in scores(row).items():
                table.append(f"| {row.get('step')} | {k} | {v:.6g} | P{protocols.index(text) + 1} |")
        out += ["Every evaluation in the run's metrics.jsonl up to the exported step; a score holds under its "
                "protocol only.", "", *table, ""]
        out += [f"- P{i + 1}: `{text}`" for i, text in enumerate(protocols)] + [""]

    out += ["## Intended use", "", card.intended_use, "", "## Limits", "", card.limits, ""]

    out += ["## Files", "", "- `model.safetensors`: the weights (no pickle; nothing runs when loaded)",
            "- `config.json`: the resolved config, the data description and what loading needs; "
            "`gankit.load(\"DIR\")` rebuilds the run from the two"]
    for f in onnx_files or []:
        out.append(f"- `{f}`: the network as ONNX, checked against PyTorch when written")
        for note in (onnx_notes or {}).get(f, []):
            out.append(f"  - {note}")
    out += ["", f"License: {license}.", ""]
    return "\n".join(out)
