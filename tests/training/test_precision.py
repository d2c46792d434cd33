"""train.precision (gankit.training.precision): explicit settings are obeyed and never measured;
auto on a CPU without native bf16 is fp32 unmeasured; with native bf16 the run's own step is
measured once (bf16 only when faster by the margin) and the verdict cached per CPU, torch, threads
and config signature; runs too short to repay a probe are fp32; a resumed run keeps its precision;
the probe leaves the run's numbers untouched; train.log says what was chosen and why."""

import json

import pytest
import torch

import gankit
from gankit import util
from gankit.config import load_config
from gankit.data import load_data
from gankit.tasks import get_task
from gankit.tasks.generate.phases import Objective
from gankit.training import precision as P

CPU = torch.device("cpu")
TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "train.batch=8", "log.progress=false", "train.steps=2", "device=cpu"]
GEN = get_task("generate")


class Probe:
    """A stand-in for `measure`: fixed timings, and a count of calls."""

    def __init__(self, fp32_ms: float, bf16_ms: float):
        self.ms, self.calls = {"fp32": fp32_ms, "bf16": bf16_ms}, 0

    def __call__(self, cfg, data, device):
        self.calls += 1
        return dict(self.ms)


def _never(*a, **k):
    raise AssertionError("probed")


@pytest.fixture
def native(monkeypatch, tmp_cache):
    """A CPU that reports native bf16, with an empty gankit cache."""
    monkeypatch.setattr(P, "native_bf16_cpu", lambda: "avx512_bf16")
    return tmp_cache


def _choose(overrides=(), steps_left=10_000, probe=_never, ckpt=None):
    cfg = load_config("seed-mlp", overrides=[*TINY, *overrides])
    data = load_data(cfg.data.source, None, None)
    return P.choose(cfg, data, CPU, GEN, steps_left, ckpt, probe=probe)


def test_explicit_settings_are_obeyed_and_never_measured(native):
    assert _choose(["train.precision=fp32"]).name == "fp32"
    c = _choose(["train.precision=bf16"])
    assert (c.name, c.why) == ("bf16", "train.precision bf16 (native: avx512_bf16)")
    text = get_task("translate")
    assert not text.honours_precision
    cfg = load_config("seed-mlp", overrides=TINY)
    assert P.choose(cfg, None, CPU, text, 10_000, probe=_never).name == "fp32"


def test_auto_measures_without_native_bf16_too(monkeypatch, tmp_cache):
    monkeypatch.setattr(P, "native_bf16_cpu", lambda: None)
    c = _choose(probe=Probe(10.0, 200.0))
    assert c.name == "fp32" and "(no native bf16, capability" in c.why and "measured now" in c.why
    assert (tmp_cache / P.CACHE_NAME).exists()


def test_auto_measures_once_then_reads_the_cache(native):
    fast = Probe(fp32_ms=10.0, bf16_ms=5.0)
    c = _choose(probe=fast)
    assert (c.name, c.fp32_ms, c.bf16_ms, fast.calls) == ("bf16", 10.0, 5.0, 1)
    assert "measured now" in c.why and "fp32 10.00 ms/step, bf16 5.00 ms/step" in c.why
    saved = json.loads((native / P.CACHE_NAME).read_text())
    (key, entry), = saved.items()
    assert P.cpu_model() in key and torch.__version__ in key and entry["choice"] == "bf16"
    again = _choose()  # the cache answers: probing again would raise
    assert again.name == "bf16" and "cached" in again.why
    # what does not change the step's cost shares the entry; what does gets its own measurement
    assert _choose(["seed=7", "train.lr_g=1e-3", "log.every=5"]).name == "bf16"
    other = Probe(10.0, 5.0)
    _choose(["train.batch=16"], probe=other)
    assert other.calls == 1 and len(json.loads((native / P.CACHE_NAME).read_text())) == 2


@pytest.mark.parametrize("fp32_ms, bf16_ms, want", [(10.0, 9.5, "fp32"), (10.0, 9.0, "bf16"), (10.0, 12.0, "fp32")])
def test_bf16_only_when_faster_by_the_margin(native, fp32_ms, bf16_ms, want):
    assert _choose(probe=Probe(fp32_ms, bf16_ms)).name == want


def test_short_runs_are_not_measured(native):
    c = _choose(steps_left=P.MIN_STEPS - 1)
    assert c.name == "fp32" and "too few" in c.why
    assert not (native / P.CACHE_NAME).exists()


def test_a_damaged_or_unwritable_cache_costs_nothing_but_a_probe(native, monkeypatch):
    (native).mkdir(parents=True, exist_ok=True)
    (native / P.CACHE_NAME).write_text("{not json")
    assert _choose(probe=Probe(10.0, 5.0)).name == "bf16"
    assert json.loads((native / P.CACHE_NAME).read_text())  # rewritten whole

    def refuse(path, text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(P, "write_text_atomic", refuse)
    c = _choose(["train.batch=16"], probe=Probe(10.0, 5.0))
    assert c.name == "bf16" and "not written (Permission denied)" in c.why


def test_a_resumed_run_keeps_its_precision(native):
    c = _choose(ckpt={"precision": "bf16", "step": 5}, steps_left=10)
    assert c.name == "bf16" and "as chosen when this run started" in c.why
    assert _choose(ckpt={"step": 5}, steps_left=10).name == "fp32"  # older checkpoints: decided anew


def test_the_real_probe_times_both_precisions(monkeypatch):
    cfg = load_config("seed-mlp", overrides=TINY)
    data = load_data(cfg.data.source, None, None)
    steps = []
    from gankit.training import engine

    class Counting(engine.Engine):
        def step(self, t):
            steps.append(self.st.precision)
            super().step(t)

    monkeypatch.setattr(engine, "Engine", Counting)
    monkeypatch.setattr(P, "CLEAR", 1e9)  # never decided early: the alternating rounds run
    ms = P.measure(cfg, data, CPU, seconds=0.2)
    assert set(ms) == {"fp32", "bf16"} and all(v > 0 for v in ms.values())
    assert steps.count("fp32") == steps.count("bf16") >= 3
    steps.clear()
    monkeypatch.setattr(P, "CLEAR", 0.5)  # any difference is decisive: one warm-up and one timed step each
    P.measure(cfg, data, CPU, seconds=0.2)
    assert sorted(steps) == ["bf16", "bf16", "fp32", "fp32"]


def test_the_objective_follows_the_resolved_precision():
    assert Objective.from_config(load_config("dcgan", overrides=["train.precision=bf16"]), 0, CPU).bf16
    assert not Objective.from_config(load_config("dcgan", overrides=["train.precision=fp32"]), 0, CPU).bf16
    assert P.static(load_config("dcgan"), CPU) == "fp32"  # auto without a measurement: fp32 on a CPU


def test_train_log_and_checkpoint_record_the_choice_and_resume_keeps_it(native, monkeypatch, tmp_path):
    monkeypatch.setattr(P, "MIN_STEPS", 1)
    monkeypatch.setattr(P, "measure", Probe(10.0, 5.0))
    cfg = load_config("seed-mlp", overrides=[*TINY, "train.steps=4"])
    run = gankit.train(cfg, tmp_path / "run")
    log = (run.dir / "train.log").read_text()
    assert "precision: bf16 (auto, measured now on this CPU (avx512_bf16)" in log
    assert "fp32 10.00 ms/step, bf16 5.00 ms/step, bf16 2.00x fp32's speed" in log
    assert torch.load(run.dir / "checkpoints" / "last.pt", weights_only=True)["precision"] == "bf16"
    monkeypatch.setattr(P, "measure", Probe(10.0, 20.0))  # now fp32 would win: the run keeps bf16
    gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=6"]), tmp_path / "run", resume=True)
    assert "precision: bf16 (auto, as chosen when this run started" in (run.dir / "train.log").read_text()


def test_the_probe_leaves_the_run_untouched(native, monkeypatch, tmp_path):
    """A run that measured (and chose fp32) is bitwise the run that was told fp32."""
    monkeypatch.setattr(P, "MIN_STEPS", 1)
    monkeypatch.setattr(P, "MARGIN", 1e9)  # whatever the timings: fp32
    real = P.measure
    monkeypatch.setattr(P, "measure", lambda cfg, data, device: real(cfg, data, device, seconds=0.2))
    a = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=4"]), tmp_path / "auto")
    assert "measured now" in (a.dir / "train.log").read_text()
    b = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.steps=4", "train.precision=fp32"]), tmp_path / "fp32")
    wa, wb = (torch.load(r.dir / "checkpoints" / "last.pt", weights_only=True)["nets"]["G"] for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_emulated_bf16_warns_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(P, "native_bf16_cpu", lambda: None)
    run = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.precision=bf16"]), tmp_path / "bf16")
    err = capsys.readouterr().err
    assert err.count("expect ~20x slower steps than fp32") == 1 and "auto picks fp32 here" in err
    assert "precision: bf16 (train.precision bf16 on a CPU without native bf16" in (run.dir / "train.log").read_text()


def test_the_flag_reader_finds_bf16_in_cpuinfo(monkeypatch, tmp_path):
    import builtins

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: real_open(fake if p == "/proc/cpuinfo" else p, *a, **k))
    assert util.native_bf16_cpu() is None
    fake.write_text("processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert util.native_bf16_cpu() == "avx512_bf16"
    assert P.cpu_model() == "Some CPU 9000"
