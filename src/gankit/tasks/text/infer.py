"""Using a trained text run: lines sampled at a temperature, optionally of one topic or after a
prefix (`gankit sample RUN --n 20 --temperature 0.8`)."""

from __future__ import annotations

import torch

from gankit.data.text import split
from gankit.errors import GankitError
from gankit.tasks.text.evaluation import sample_lines
from gankit.tasks.text.task import vocab_of


def check_temperature(t: float | None) -> None:
    if t is not None and not t > 0:
        raise GankitError(f"--temperature {t}: expected a number > 0 (1: the model's own distribution, "
                          "lower: safer lines, higher: more varied ones)")


def topic_index(run, topic: str | int | None) -> int | None:
    """A topic's class index from its name or number; one line when the run has no such topic."""
    if topic is None:
        return None
    classes = run.data_meta.get("classes") or []
    if run.G.topic is None:
        raise GankitError(f"{run.dir}: a topic needs a topic-conditional text run (model.conditional); this one "
                          "has no topics")
    if isinstance(topic, int) or str(topic).isdigit():
        k = int(topic)
        if not 0 <= k < len(classes):
            raise GankitError(f"topic {k}: this run has topics 0 to {len(classes) - 1}")
        return k
    if topic not in classes:
        raise GankitError(f"topic {topic!r}: not one of the run's topics ({', '.join(classes[:8])}...)")
    return classes.index(topic)


def sample_text(run, n: int, temperature: float = 1.0, seed: int | None = None, topic: str | int | None = None,
                prefix: str | None = None) -> list[str]:
    """n lines from a text run; with `prefix`, each line starts with it."""
    run.need("text", "text sampling")
    if n < 1:
        raise GankitError(f"number of lines must be >= 1, got {n}")
    check_temperature(temperature)
    vocab = vocab_of(run.data_meta)
    label = topic_index(run, topic)
    seed = int(torch.randint(2**62, ()).item()) if seed is None else seed
    length = run.config.text.max_len + 1
    n_classes = len(run.data_meta.get("classes") or []) if run.G.topic is not None else 0
    if not prefix:
        return sample_lines(run.G, vocab, n, length, temperature, seed, run.device, n_classes, label)
    toks = split(prefix, vocab.level)
    ix = vocab.index()
    missing = sorted({t for t in toks if t not in ix})
    if missing:
        raise GankitError(f"prefix: {', '.join(map(repr, missing[:5]))} not in the run's {vocab.level} vocabulary "
                          f"of {len(vocab)} tokens; use tokens the run was trained on")
    if len(toks) >= length:
        raise GankitError(f"prefix: {len(toks)} tokens; this run's lines have at most {length - 1}")
    ids = torch.tensor([ix[t] for t in toks], dtype=torch.int64)
    g = torch.Generator(device=run.device).manual_seed(seed)
    y = None
    if n_classes:
        y = torch.full((n,), label, device=run.device) if label is not None else \
            torch.randint(n_classes, (n,), device=run.device, generator=g)
    out = run.G.sample(n, length, temperature, y, g, prefix=ids)
    return [vocab.decode(s) for s in out.cpu()]
