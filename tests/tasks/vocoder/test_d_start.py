"""vocoder.d_start: the discriminators train on G's output before G meets them (the "warm"
steps, d_start to gan_start). A warm step moves D and leaves G's update exactly that of a
spectral-only step; the phases follow the steps; the log reports D's scalars without G's
adversarial ones; a d_start after gan_start is refused in one line."""

from __future__ import annotations

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.training.engine import Engine

from .test_vocoder import TINY


def _engine(folder, *extra):
    cfg = load_config("hifigan-cpu", overrides=[*TINY, f"data.source={folder}", *extra])
    task = gankit.tasks.get_task("vocoder")
    return Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode="eager"), task


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


def test_a_warm_step_trains_d_and_gives_g_the_spectral_step(folder):
    warm, task = _engine(folder, "vocoder.d_start=0", "vocoder.gan_start=2")
    cold, _ = _engine(folder, "vocoder.gan_start=2")
    d0 = {n: _params(warm.st.nets[n]) for n in ("MPD", "MSD")}
    assert task.flags(warm.st.cfg, 0) == "warm" and task.flags(cold.st.cfg, 0) == "mel"
    warm.step(0)
    cold.step(0)
    for a, b in zip(warm.st.nets["G"].parameters(), cold.st.nets["G"].parameters()):
        assert torch.equal(a, b)  # D's update never reaches G's gradient
    for n, before in d0.items():
        assert any(not torch.equal(a, b) for a, b in zip(before, warm.st.nets[n].parameters())), f"{n} did not move"
        assert all(torch.equal(a, b) for a, b in zip(before, cold.st.nets[n].parameters())), f"{n} moved cold"
    acc = dict(zip(task.stat_names, warm.st.acc.tolist()))
    assert acc["d_steps"] == 1.0 and acc["gan_steps"] == 0.0 and acc["loss_d"] > 0 and acc["adv_g"] == 0.0
    row = task.log_row(warm.st.cfg, warm.st, acc, 1)
    assert {"loss_d", "d_real", "d_fake"} <= set(row) and not {"adv_g", "fm"} & set(row)
    cold_row = task.log_row(cold.st.cfg, cold.st, dict(zip(task.stat_names, cold.st.acc.tolist())), 1)
    assert "loss_d" not in cold_row


@pytest.mark.parametrize("d_start, gan_start, want", [
    (None, 2, ["mel", "mel", "gan", "gan"]),
    (1, 3, ["mel", "warm", "warm", "gan"]),
    (0, 0, ["gan", "gan", "gan", "gan"]),
    (2, 2, ["mel", "mel", "gan", "gan"]),
])
def test_phases_follow_d_start_and_gan_start(d_start, gan_start, want):
    cfg = load_config("vocos-cpu", overrides=[f"vocoder.gan_start={gan_start}"]
                      + ([f"vocoder.d_start={d_start}"] if d_start is not None else []))
    task = gankit.tasks.get_task("vocoder")
    assert [task.flags(cfg, t) for t in range(4)] == want


@pytest.mark.parametrize("extra, words", [
    (["vocoder.d_start=500", "vocoder.gan_start=400"], r"vocoder.d_start 500 is after vocoder.gan_start 400; "
                                                        r"expected a step <= gan_start"),
    (["vocoder.d_start=-1"], r"vocoder.d_start = -1 is out of range; expected an integer >= 0, or null"),
])
def test_a_bad_d_start_is_refused_in_one_line(extra, words):
    with pytest.raises(GankitError, match=words) as e:
        load_config("vocos-cpu", overrides=extra)
    assert "\n" not in str(e.value)
