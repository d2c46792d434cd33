"""Fine-tuning with frozen layers (train.freeze_d / train.freeze_g, `gankit.training.freeze`): the
frozen blocks stay bitwise as they were and everything else trains, for every conv arch; a K past
a network's blocks is refused in one line; a fine-tune run keeps its freezing when resumed."""

import os
import subprocess
import sys

import pytest
import torch

import gankit
from gankit.api import resume
from gankit.config import load_config
from gankit.data import load_data
from gankit.models import build_models
from gankit.run import Run
from gankit.tasks.generate.config import ModelConfig
from gankit.training.engine import Engine

CONV = ["data.source=fake:1x28x28:64", "data.resolution=null", "model.g_width=8", "model.d_width=8",
        "model.z_dim=4", "train.batch=8", "log.progress=false", "device=cpu", "train.precision=fp32"]
ARCHS = {"dcgan": ("dcgan", []), "resnet": ("dcgan", ["model.arch=resnet"]),
         # path-length penalty with the mapping network frozen; R1 + R2 every step through D's
         # frozen input blocks (both double backward: several seconds each on a CPU)
         "stylegan2": ("stylegan2", ["model.mapping_layers=2", "model.w_dim=16"]), "r3gan": ("r3gan", [])}
SLOW = pytest.mark.slow


def _engine(preset, sets):
    cfg = load_config(preset, overrides=[*CONV, *sets])
    return Engine.build(cfg, load_data(cfg.data.source, None, None, "cpu"), torch.device("cpu"), mode="eager")


@pytest.mark.parametrize("arch", ["dcgan", "resnet", pytest.param("stylegan2", marks=SLOW),
                                  pytest.param("r3gan", marks=SLOW)])
def test_frozen_blocks_stay_bitwise_and_the_rest_trains(arch):
    preset, sets = ARCHS[arch]
    e = _engine(preset, [*sets, "train.freeze_d=1", "train.freeze_g=1"])
    st = e.st
    frozen = {n: {k for k, p in m.named_parameters() if not p.requires_grad} for n, m in st.nets.items()}
    # exactly the parameters of each network's first block, and none of D's heads
    for n, m in st.nets.items():
        first = {id(p) for p in m.ordered_blocks()[0].parameters()}
        assert frozen[n] == {k for k, p in m.named_parameters() if id(p) in first} != set()
    assert not any(k.startswith("heads.") for k in frozen["D"])
    # the optimisers never see a frozen parameter
    in_opts = {id(p) for o in st.opts.values() for g in o.param_groups for p in g["params"]}
    assert not in_opts & {id(p) for m in st.nets.values() for p in m.parameters() if not p.requires_grad}
    before = {n: {k: p.detach().clone() for k, p in m.named_parameters()} for n, m in st.nets.items()}
    for t in range(3):
        e.step(t)
    for n, m in st.nets.items():
        same = {k for k, p in m.named_parameters() if torch.equal(p, before[n][k])}
        # RpGAN's loss depends on D(real) - D(fake) only: D's output bias gets no gradient at all
        exempt = {"heads.linear.bias"} if arch == "r3gan" and n == "D" else set()
        assert same - exempt == frozen[n], f"{n}: unchanged {sorted(same ^ frozen[n])}"
        assert all(p.requires_grad for k, p in m.named_parameters() if k not in frozen[n])  # G's phase restored D's
    assert e.frozen[0].startswith("frozen: D's first 1 of ")


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet", "stylegan2", "r3gan"])
def test_blocks_cover_each_network_once_in_forward_order(arch):
    """G's blocks are all of G; D's are all of D but its heads; no parameter in two blocks. D's
    first block reads the image (its first parameter's fan-in is the image's channels)."""
    G, D = build_models(ModelConfig(arch=arch, g_width=8, d_width=8, d_hidden=(16, 16), g_hidden=(16,)), (3, 32, 32))
    for net, rest in ((G, set()), (D, {id(p) for p in D.heads.parameters()})):
        ids = [id(p) for b in net.ordered_blocks() for p in b.parameters()]
        assert len(ids) == len(set(ids)) and set(ids) | rest == {id(p) for p in net.parameters()}
        assert len(net.ordered_blocks()) >= 2
    first = next(D.ordered_blocks()[0].parameters())
    assert first.shape[1] in (3, 3 * 32 * 32)


def test_freezing_past_the_blocks_is_refused_in_one_line():
    with pytest.raises(gankit.GankitError, match=r"^train.freeze_d = 3: network D \(DCGANDiscriminator\) has 2 "
                                                 r"blocks; use 0 to 2$"):
        _engine("dcgan", ["train.freeze_d=3"])
    # G's blocks are the whole of G: freezing them all would leave nothing to train
    with pytest.raises(gankit.GankitError, match=r"^train.freeze_g = 3: network G \(DCGANGenerator\) has 3 blocks "
                                                 r"\(freezing them all would leave nothing to train\); use 0 to 2$"):
        _engine("dcgan", ["train.freeze_g=3"])
    with pytest.raises(gankit.GankitError, match="train.freeze_d = -1 is out of range; expected an integer >= 0"):
        load_config("dcgan", overrides=["train.freeze_d=-1"])


def test_a_fine_tune_starts_from_init_and_keeps_freezing_on_resume(tmp_path, capsys):
    base = gankit.train(load_config("dcgan", overrides=[*CONV, "train.steps=2"]), tmp_path / "base")
    sets = [*CONV, "train.steps=2", "log.ckpt_every=2", f"train.init={base.dir}", "train.freeze_d=2"]
    ft = gankit.train(load_config("dcgan", overrides=sets), tmp_path / "ft")
    log = (ft.dir / "train.log").read_text()
    assert "init: G, D from" in log and "frozen: D's first 2 of 2 blocks" in log
    assert "without train.init" not in capsys.readouterr().err
    done = resume(ft.dir, ["train.steps=4"])
    assert done.step == 4 and done.config.train.freeze_d == 2
    pre = Run.load(base.dir, ema=False).nets["D"].state_dict()
    after = Run.load(done.dir, ema=False).nets["D"].state_dict()
    body = [k for k in pre if k.startswith("body.") and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert body and all(torch.equal(pre[k], after[k]) for k in body)  # the whole body: frozen through the resume
    assert not all(torch.equal(pre[k], after[k]) for k in pre if k.startswith("heads."))  # the head fine-tuned
    # a forced resume with another frozen set: the optimiser's moments would not line up
    with pytest.raises(gankit.GankitError, match="optimiser D updated 2 tensors there and would update 7 here"):
        resume(done.dir, ["train.steps=6", "train.freeze_d=0"], force=True)


@SLOW
def test_data_parallel_training_leaves_frozen_blocks_out(tmp_path):
    """2 processes (DistributedDataParallel, and the flat all-reduce) with D's and G's first
    blocks frozen follow the 1-process run: DDP's reducer never waits for a frozen parameter's
    gradient, and the frozen blocks end as they started."""
    tiny = ["--data", "fake:1x8x8:64", "--set", "data.resolution=null", "--set", "model.g_hidden=[16,16]",
            "--set", "model.d_hidden=[16,16]", "--set", "model.z_dim=4", "--set", "model.d_dropout=0",
            "--set", "train.batch=8", "--set", "log.progress=false", "--device", "cpu",
            "--set", "train.precision=fp32", "--set", "train.freeze_d=1", "--set", "train.freeze_g=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {"start": ["--steps", "0"], "one": ["--steps", "6"], "ddp": ["--nproc", "2", "--steps", "6"],
            "flat": ["--nproc", "2", "--steps", "6", "--set", "train.ddp=false"]}
    for name, extra in runs.items():
        p = subprocess.run([sys.executable, "-m", "gankit", "train", *extra, "--out", str(tmp_path / name), *tiny],
                           env=env, capture_output=True, text=True, timeout=240)
        assert p.returncode == 0, p.stderr[-2000:]
    nets = {n: Run.load(tmp_path / n, ema=False).nets for n in runs}
    for net, first in (("D", "body.1."), ("G", "net.0.")):
        start, one = nets["start"][net].state_dict(), nets["one"][net].state_dict()
        for name in ("ddp", "flat"):
            two = nets[name][net].state_dict()
            for k in start:
                torch.testing.assert_close(two[k], one[k], atol=1e-5, rtol=0)
                assert torch.equal(two[k], start[k]) == k.startswith(first), (name, net, k)
