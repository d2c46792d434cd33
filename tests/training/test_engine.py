"""The training step's fast path: the graph-shaped step computes the same function as the eager
step (on CPU bitwise; on CUDA, captured and replayed, to tolerance), it reads nothing back to the
host, and what prevents capture is named."""

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.data import load_data
from gankit.training.engine import Engine, graph_blockers

MLP = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
       "model.z_dim=4", "train.batch=8", "log.progress=false", "device=cpu",
       "train.precision=fp32"]  # exact comparisons between step modes: fp32 on any CPU (auto may pick bf16)
CONV = ["data.source=fake:1x28x28:64", "data.resolution=null", "model.g_width=8", "model.d_width=8",
        "model.z_dim=4", "train.batch=8", "log.progress=false", "device=cpu", "train.precision=fp32"]

# (preset, overrides): dropout + EMA + schedule; BatchNorm; InfoGAN codes; WGAN-GP with n_critic 5
# and the penalty's generator; lazy R1 with DiffAugment; projection D on labels.
CASES = {
    "mlp": ("seed-mlp", MLP + ["train.ema=true", "train.lr_schedule=linear", "train.steps=12"]),
    "dcgan": ("dcgan", CONV),
    "infogan": ("infogan", CONV),
    "wgan-gp": ("wgan-gp", CONV + ["train.n_critic=3"]),
    "r1-diffaug": ("dcgan", CONV + ["model.d_batchnorm=false", "reg.r1=1", "reg.r1_every=2",
                                   "reg.diffaug=translation,cutout"]),
    "cgan": ("cgan", CONV),  # the fake source carries 10 classes
}


def _engine(preset, sets, mode, device="cpu"):
    cfg = load_config(preset, overrides=[*sets, f"device={device}"])
    dev = torch.device(device)
    data = load_data(cfg.data.source, cfg.data.resolution, cfg.data.channels, dev)
    return Engine.build(cfg, data, dev, mode=mode)


def _state(e):
    nets = list(e.st.nets.values()) + [x.G for x in e.st.emas.values()]
    return torch.cat([t.detach().float().flatten() for m in nets for t in m.state_dict().values()])


def _train(e, steps):
    for t in range(steps):
        e.step(t)
    return _state(e), e.st.acc.clone()


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_step_equals_eager_on_cpu(case):
    """The function the CUDA graph captures, run uncaptured, follows the eager step bitwise:
    same batches, latents, dropout masks, penalties and optimiser updates."""
    preset, sets = CASES[case]
    eager = _engine(preset, sets, "eager")  # each build reseeds torch (dropout): build, then train
    w_e, s_e = _train(eager, 6)
    static = _engine(preset, sets, "static")
    w_s, s_s = _train(static, 6)
    assert eager.mode == "eager" and static.mode == "static"
    assert torch.equal(w_e, w_s)
    assert torch.equal(s_e, s_s)
    assert float(s_e[0]) != 0  # the step really ran and summed its losses


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_step_reads_nothing_back(case, monkeypatch, no_host_reads):
    """No host synchronisation inside the captured function: every way a tensor's value reaches
    the host fails while it runs (a CUDA graph would not record such a read)."""
    e = _engine(*CASES[case], mode="static")

    def refuse(*a, **k):
        raise AssertionError("host read inside the graph step")

    for name in ("tolist", "numpy"):  # not through the dispatcher
        monkeypatch.setattr(torch.Tensor, name, refuse)
    with no_host_reads():
        # The whole graph-mode step: the task's draw and the copy into the static buffers
        # (outside the graph: a host read there would stall the CPU every step), the captured
        # phases, the schedules.
        for t in range(3):
            e.step(t)
    monkeypatch.undo()
    assert e.st.guard.total == 0 and float(e.st.acc[0]) != 0


def test_the_host_read_check_catches_a_scalar_argument(no_host_reads):
    """The check above sees a read that happens in C++: a 0-dim tensor given as a Scalar."""
    t = torch.ones(3)
    with pytest.raises(AssertionError, match="host read"), no_host_reads():
        torch._foreach_lerp_([t], [torch.zeros(3)], torch.tensor(0.5))


def test_blockers_are_named():
    cfg = load_config("wgan", overrides=["reg.instance_noise=0.1", "train.compile=true"])
    why = graph_blockers(cfg, torch.device("cpu"))
    assert "CUDA graphs need a CUDA device" in why
    assert any("rmsprop" in w for w in why) and any("instance_noise" in w for w in why)
    assert any("compile" in w for w in why)
    assert graph_blockers(load_config("dcgan"), torch.device("cuda")) == []
    e = _engine(*CASES["mlp"], mode="auto")
    assert e.mode == "eager" and e.describe() == "step: eager (CUDA graphs need a CUDA device)"
    with pytest.raises(ValueError, match="reuse_fakes"):
        _engine("seed-mlp", MLP + ["train.reuse_fakes=false"], mode="static")


def test_run_records_how_its_step_ran(tmp_path):
    gankit.train(load_config("seed-mlp", overrides=[*MLP, "train.steps=2"]), tmp_path / "r")
    assert "step: eager (CUDA graphs need a CUDA device)" in (tmp_path / "r" / "train.log").read_text()


def test_reuse_fakes_off_draws_fresh_latents_for_g():
    """train.reuse_fakes=false (the tutorial's two G forwards): G's update sees new latents, so
    the trajectory differs from the reusing step, and it still trains."""
    w_a, _ = _train(_engine("seed-mlp", MLP, "eager"), 3)
    w_b, s_b = _train(_engine("seed-mlp", MLP + ["train.reuse_fakes=false"], "eager"), 3)
    assert not torch.equal(w_a, w_b) and torch.isfinite(s_b).all()


def test_non_finite_update_is_skipped_on_the_device():
    """Fused Adam's found_inf: a NaN gradient leaves weights, moments and step count unchanged,
    and the guard counts it without having synchronised."""
    e = _engine("seed-mlp", MLP, "eager")
    guard, D, opt_d, data = e.st.guard, e.st.nets["D"], e.st.opts["D"], e.st.data
    assert guard.on_device
    _train(e, 2)
    d_before = torch.cat([t.flatten() for t in D.state_dict().values()])
    moments = [s["exp_avg"].clone() for s in opt_d.state.values()]
    steps = [s["step"].clone() for s in opt_d.state.values()]
    real = data.x.clone()
    data.x = data.x.float() * float("nan")  # D's loss and gradients NaN this step
    data.to_model = lambda xb: xb
    e.step(2)
    data.x = real
    assert torch.equal(torch.cat([t.flatten() for t in D.state_dict().values()]), d_before)
    assert all(torch.equal(a, s["exp_avg"]) for a, s in zip(moments, opt_d.state.values()))
    assert [s["step"] for s in opt_d.state.values()] == steps
    # G's update saw only fakes (D treats examples independently): it was finite and applied.
    assert guard.total == 1 and guard.consecutive == 1
    e.step(3)
    assert guard.consecutive == 0 and guard.total == 1


@pytest.mark.parametrize("case", ["dcgan", "wgan-gp"])
def test_channels_last_computes_the_same_step(case):
    preset, sets = CASES[case]
    w0, _ = _train(_engine(preset, sets, "eager"), 3)
    w1, _ = _train(_engine(preset, sets + ["train.channels_last=true"], "eager"), 3)
    torch.testing.assert_close(w1, w0, atol=1e-4, rtol=1e-4)


def test_compile_computes_the_same_step():
    """torch.compile'd forwards (inductor, CPU) train to the same weights as eager, within
    float tolerance (kernels are fused differently)."""
    sets = MLP + ["model.d_dropout=0"]
    w0, _ = _train(_engine("seed-mlp", sets, "eager"), 3)
    e = _engine("seed-mlp", sets + ["train.compile=true"], "eager")
    assert "torch.compile" in e.describe()
    w1, _ = _train(e, 3)
    torch.testing.assert_close(w1, w0, atol=1e-5, rtol=1e-4)


def test_compile_with_a_penalty_falls_back_with_a_reason(capsys):
    e = _engine("wgan-gp", CONV + ["train.compile=true"], "eager")
    assert "double backward" in capsys.readouterr().err
    assert "+ torch.compile" not in e.describe()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", ["mlp", "dcgan", "wgan-gp", "r1-diffaug"])
def test_cuda_graph_step_matches_eager_on_cuda(case):
    """On CUDA: the captured step, replayed, against the eager step, to float tolerance (the
    graph reorders nothing, but eager and captured kernels may pick different algorithms)."""
    preset, sets = CASES[case]
    sets = [s for s in sets if not s.startswith("device=")]
    g = _engine(preset, sets, "auto", "cuda")
    assert g.mode == "graph", g.why
    w_g, s_g = _train(g, 12)  # 3 warm-up runs per variant, capture, replays
    e = _engine(preset, sets, "eager", "cuda")
    e.st.gens["aug"] = None  # the captured step draws penalties' and augmentation's noise from the default generator
    w_e, s_e = _train(e, 12)
    assert g.runner._graphs  # really captured
    torch.testing.assert_close(w_g, w_e, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(s_g, s_e, atol=1e-3, rtol=1e-3)


def _checkpoint_copy(e, step):
    import io

    buf = io.BytesIO()
    from gankit.training.checkpoint import pack

    torch.save(pack(e.st, step), buf)  # a copy, as a checkpoint on disk is
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def test_loading_a_checkpoint_drops_captured_graphs():
    """A rollback or resume loads new optimiser moments, learning-rate and EMA tensors; a graph
    captured before would keep updating the old ones, so loading drops it."""
    e = _engine(*CASES["mlp"], mode="static")
    _train(e, 2)
    e.runner._graphs[(False,)], e.runner._runs[(False,)] = object(), 3  # as after a capture on CUDA
    e.load(_checkpoint_copy(e, 2))
    assert e.runner._graphs == {} and e.runner._runs == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_run_rolls_back_like_eager():
    """Graph mode: train, keep a checkpoint, train on, roll back to it with a halved learning
    rate (what recover does), train on: the same as the eager step doing the same."""

    preset, sets = CASES["mlp"]
    sets = [s for s in sets if not s.startswith("device=")]
    results = []
    for mode in ("auto", "eager"):
        e = _engine(preset, sets, mode, "cuda")
        _train(e, 8)
        ck = _checkpoint_copy(e, 8)
        for t in range(8, 12):
            e.step(t)
        e.load(ck)
        e.scale_lrs(0.5)
        for t in range(8, 16):
            e.step(t)
        results.append(_state(e))
        assert (e.mode == "graph") == (mode == "auto")
    torch.testing.assert_close(results[0], results[1], atol=1e-4, rtol=1e-3)


def test_optimizer_state_moves_between_step_modes():
    """A checkpoint's optimiser state loads into either step mode: a tensor learning rate (what
    a captured step keeps) becomes a float for an eager step, and back."""
    e = _engine(*CASES["mlp"], mode="eager")
    _train(e, 2)
    ck = _checkpoint_copy(e, 2)
    ck["opts"]["G"]["param_groups"][0]["lr"] = torch.tensor(1e-3)  # as a CUDA-graph run saves it
    e.load(ck)
    lr = e.st.opts["G"].param_groups[0]["lr"]
    assert lr == pytest.approx(1e-3) and isinstance(lr, float)
    _train(e, 1)
