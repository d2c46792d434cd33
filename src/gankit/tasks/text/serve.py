"""The text task's `gankit serve` panel: new lines at a temperature, with a prefix or a topic.
Found by `gankit serve` through the registry (`gankit.tasks.task_part(task, "serve")`)."""

from __future__ import annotations

from gankit.apps.serve.models import MAX_SEED, Field, Float, Int, Panel, Result, stem, Str
from gankit.run import Run


def sample_lines(run: Run, p: dict, images: dict) -> Result:
    from gankit.tasks.text.infer import sample_text

    lines = sample_text(run, p["n"], p["temperature"], p["seed"], p.get("topic"), p["prefix"] or None)
    return Result(None, f"{stem(run)}-seed{p['seed']}-t{p['temperature']:g}.txt", text=lines)


def panels(run: Run, max_samples: int) -> dict[str, Panel]:
    what = "SMILES strings" if run.config.text.kind == "smiles" else "lines"
    fields: dict[str, Field] = {"n": Int(1, max_samples, min(10, max_samples)), "seed": Int(0, MAX_SEED, 0),
                                "temperature": Float(0.05, 5.0, run.config.text.temperature),
                                "prefix": Str(run.config.text.max_len * 8)}
    topics = list(run.data_meta.get("classes") or []) if run.G.topic is not None else []
    if topics:
        fields["topic"] = Int(0, len(topics) - 1, None)  # None: any topic
    return {"lines": Panel("Sample", f"new {what} at a softmax temperature (lower: safer, higher: more varied), "
                           "optionally starting with a prefix", fields, sample_lines, extra={"topics": topics})}
