"""The memorisation check on small labelled sets: when it runs (eval.memorization), per class,
and its place in every evaluation (in training and `gankit eval`)."""

from __future__ import annotations

import json

import pytest
import torch

from gankit.data import Dataset, lesions
from gankit.errors import GankitError
from gankit.metrics import memorization_classes as mc


def test_decide_rule():
    assert mc.decide("auto", True, True, 10_000)[0]
    off, why = mc.decide("auto", True, True, 10_001)
    assert not off and "10,001" in why
    assert not mc.decide("auto", False, True, 100)[0]  # unconditional: not by default
    assert not mc.decide("auto", True, False, 100)[0]
    assert mc.decide(True, False, False, 10**6)[0]
    assert not mc.decide(False, True, True, 10)[0]


def _labelled(n_per: int, seed: int, classes=("a", "b")) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n_per * len(classes), 1, 8, 8), generator=g, dtype=torch.uint8)
    return Dataset(x, torch.arange(len(classes)).repeat(n_per), f"set{seed}", classes=list(classes))


def test_per_class_flags_the_copied_class_only():
    train, held = _labelled(30, 0), _labelled(30, 1)
    ref = mc.Reference(train.x, train.y, held.x, held.y, train.classes, "train", "held")
    fresh = _labelled(60, 2).x[:60]
    copies = train.x[train.y == 0][torch.arange(60) % 30]  # class a: copies of a's training images
    samples, labels = torch.cat([copies, fresh]), torch.tensor([0] * 60 + [1] * 60)
    out = mc.check(samples, labels, ref, None)  # pictures: the slow test below
    assert out["classes"]["a"]["copying"] and not out["classes"]["b"]["copying"] and out["copying"]
    assert out["protocol"]["train_n"] == {"a": 30, "b": 30} and out["protocol"]["n"] == {"a": 60, "b": 60}
    row = mc.row_items(out)
    assert row["a/mem_copying"] == 1 and row["b/mem_copying"] == 0 and row["mem_copying"] == 1
    assert row["a/mem_share"] == 1.0 and row["b/mem_share"] < row["b/mem_limit"]
    assert row["memorization"].startswith("a: pixel: COPYING SUSPECTED")
    # class b's samples copy class a's images: not a copy *within* b, so b's check (against b's
    # training images) does not see it; the per-class protocol says what is compared
    json.dumps(out)


def test_reference_matches_classes_by_name(tmp_path, monkeypatch):
    train = _labelled(4, 0, ("normal", "lesion"))
    held = _labelled(3, 1, ("lesion", "other", "normal"))  # other order, and a class training lacks
    monkeypatch.setattr("gankit.data.load_data", lambda source, **kw: held)
    ref = mc.reference(train, "held")
    assert len(ref.held) == 6  # "other" dropped
    lesion_rows = held.x[held.y == 0]
    assert torch.equal(ref.held[ref.held_y == 1], lesion_rows)  # "lesion" is index 1 in training
    monkeypatch.setattr("gankit.data.load_data", lambda source, **kw: Dataset(held.x, None, "plain"))
    with pytest.raises(GankitError, match="no class labels"):
        mc.reference(train, "plain")


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(lesions, "TRAIN_COUNT", 16)
    monkeypatch.setattr(lesions, "TEST_COUNT", 8)


def _cfg(*more):
    from gankit.config import load_config

    return load_config(preset="phantom-lesion", overrides=[*more])


def test_in_training_reference_follows_the_key(small, monkeypatch):
    from gankit.data import load_data
    from gankit.tasks.generate.evaluation import InTrainingEval

    data = load_data("phantoms-lesion", resolution=64, channels=1)
    ref, why = InTrainingEval._memorization_reference(_cfg(), data)
    assert ref is not None and ref.classes == ["normal", "lesion"] and len(ref.held) == 8 and "16" in why
    assert InTrainingEval._memorization_reference(_cfg("eval.memorization=false"), data) == (None, "off (eval.memorization false)")
    monkeypatch.setattr(mc, "SMALL_SET", 10)  # a "large" set: 16 > 10
    ref, why = InTrainingEval._memorization_reference(_cfg(), data)
    assert ref is None and "16" in why
    ref, _ = InTrainingEval._memorization_reference(_cfg("eval.memorization=true"), data)
    assert ref is not None
    nolabel = Dataset(data.x, data.y, "phantoms-lesion", classes=data.classes)
    cfg = _cfg("data.source=elsewhere/", "eval.memorization=true")
    with pytest.raises(GankitError, match="eval.held_out"):
        InTrainingEval._memorization_reference(cfg, nolabel)


@pytest.mark.slow
def test_every_evaluation_of_a_small_labelled_run(small, tmp_path, tmp_cache):
    """A tiny conditional run on the lesion phantoms: its in-training evaluation rows and
    `gankit eval` carry the per-class check; eval.memorization false (or --memorization false) drops it."""
    from gankit import api

    cfg = _cfg("data.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch=8", "train.steps=2",
               "eval.every=2", "eval.n=40", "eval.metrics=fid", "log.every=1", "log.progress=false", "device=cpu")
    run = api.train(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ev = [r for r in rows if r.get("eval")][-1]
    assert {"normal/mem_share", "lesion/mem_share", "normal/mem_copying", "mem_copying"} <= set(ev)
    assert ev["protocol"]["memorization"]["held_out"] == "phantoms-lesion:test"
    assert "memorisation check" in (tmp_path / "run" / "train.log").read_text()
    assert 'id="memorization"' in (tmp_path / "run" / "report.html").read_text()
    assert (tmp_path / "run" / "memorization" / "lesion" / "nearest.png").is_file()
    assert json.loads((tmp_path / "run" / "memorization" / "memorization.json").read_text())["protocol"]["per_class"]
    r = api.evaluate(str(run.dir), ["fid"], n=40, ref="phantoms-lesion:test")
    assert set(r["memorization"]["classes"]) == {"normal", "lesion"}
    r = api.evaluate(str(run.dir), ["memorization"], n=40)  # asked for: per class as well
    assert set(r["memorization"]["classes"]) == {"normal", "lesion"}
    assert r["memorization"]["protocol"]["rule"].startswith("asked for")
    r = api.evaluate(str(run.dir), ["fid"], n=40, ref="phantoms-lesion:test", memorization=False)
    assert "memorization" not in r and r["protocol"]["memorization"].startswith("off")
