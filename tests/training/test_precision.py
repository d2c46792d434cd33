"""train.precision: auto picks bf16 only where it is native (CUDA with bf16, a CPU with the
avx512_bf16 / amx_bf16 flags), fp32 elsewhere; train.log says which and why; an explicit bf16
where it is emulated warns once."""

import torch

import gankit
from gankit import util
from gankit.config import load_config
from gankit.tasks.generate.phases import Objective

CPU = torch.device("cpu")
TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "train.batch=8", "log.progress=false", "train.steps=2", "device=cpu"]


def test_auto_is_bf16_only_with_native_bf16(monkeypatch):
    monkeypatch.setattr(util, "native_bf16_cpu", lambda: None)
    assert util.resolve_precision("auto", CPU)[0] == "fp32"
    chosen, why = util.resolve_precision("bf16", CPU)
    assert chosen == "bf16" and "without native bf16" in why and "slower" in why
    monkeypatch.setattr(util, "native_bf16_cpu", lambda: "avx512_bf16")
    assert util.resolve_precision("auto", CPU) == ("bf16", "auto: native bf16 on this CPU (avx512_bf16)")
    assert util.resolve_precision("fp32", CPU)[0] == "fp32"  # an explicit fp32 is kept everywhere
    assert Objective.from_config(load_config("dcgan"), 0, CPU).bf16
    monkeypatch.setattr(util, "native_bf16_cpu", lambda: None)
    assert not Objective.from_config(load_config("dcgan"), 0, CPU).bf16  # the default is auto


def test_the_flag_reader_finds_bf16_in_cpuinfo(monkeypatch, tmp_path):
    import builtins

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: real_open(fake if p == "/proc/cpuinfo" else p, *a, **k))
    assert util.native_bf16_cpu() is None
    fake.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert util.native_bf16_cpu() == "avx512_bf16"


def test_train_log_records_the_choice_and_emulated_bf16_warns(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(util, "native_bf16_cpu", lambda: None)
    run = gankit.train(load_config("seed-mlp", overrides=TINY), tmp_path / "auto")
    assert "precision: fp32 (auto: no native bf16 on this CPU" in (run.dir / "train.log").read_text()
    capsys.readouterr()
    run = gankit.train(load_config("seed-mlp", overrides=[*TINY, "train.precision=bf16"]), tmp_path / "bf16")
    err = capsys.readouterr().err
    assert err.count("expect ~20x slower steps than fp32") == 1 and "auto picks fp32 here" in err
    assert "precision: bf16 (train.precision bf16 on a CPU without native bf16" in (run.dir / "train.log").read_text()
