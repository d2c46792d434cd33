"""TensorBoard event files (log.tensorboard), read back as the TensorBoard server reads them (its
plugin EventAccumulator: every summary a tensor, restarts purged)."""

import json
import sys

import pytest

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.training.tensorboard import Board, scalars

pea = pytest.importorskip("tensorboard.backend.event_processing.plugin_event_accumulator")
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # noqa: E402 - after the skip
from tensorboard.util.tensor_util import make_ndarray  # noqa: E402

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "train.batch=8", "log.progress=false", "log.every=2", "log.grid_every=3", "log.grid_n=4",
        "device=cpu"]


def tiny(steps, *more):
    return load_config("seed-mlp", overrides=[*TINY, f"train.steps={steps}", *more])


def read(folder):
    ea = pea.EventAccumulator(str(folder), size_guidance={pea.TENSORS: 0})
    ea.Reload()
    return ea


def series(ea, tag):
    return [(e.step, make_ndarray(e.tensor_proto).item()) for e in ea.Tensors(tag)]


def steps(ea, tag):
    return [e.step for e in ea.Tensors(tag)]


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def text(ea, tag):
    return [make_ndarray(e.tensor_proto).item().decode() for e in ea.Tensors(f"{tag}/text_summary")]


def png(ea, tag, i):
    return make_ndarray(ea.Tensors(tag)[i].tensor_proto)[2]  # (width, height, PNG bytes)


def test_event_files_hold_the_metrics_grids_and_config(tmp_path):
    run = gankit.train(tiny(5), tmp_path / "r")
    ea, logged = read(run.dir / "tensorboard"), rows(run.dir)
    names = {k for r in logged for k, v in r.items() if isinstance(v, (int, float)) and k not in ("step", "time")}
    assert set(ea.PluginTagToContent("scalars")) == names and {"loss_d", "loss_g", "lr_g", "steps_per_s"} <= names
    for name in names:
        assert series(ea, name) == [(r["step"], pytest.approx(r[name], rel=1e-6)) for r in logged if name in r]
    assert ea.Tensors("loss_d")[0].wall_time == pytest.approx(logged[0]["time"])
    assert set(ea.PluginTagToContent("images")) == {"samples", "data"}
    assert steps(ea, "samples") == [0, 3, 5] and steps(ea, "data") == [0]
    assert png(ea, "samples", -1) == (run.dir / "samples" / "step_000005.png").read_bytes()
    config = text(ea, "config")
    assert len(config) == 1 and "source: fake:1x8x8:64" in config[0] and "steps: 5" in config[0]
    start = HParamsPluginData.FromString(ea.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["train.batch"].number_value == 8 and hparams["data.source"].string_value == "fake:1x8x8:64"
    assert "model.z_dim" in hparams and not any(k.startswith("translate.") for k in hparams)  # another task's
    assert f"tensorboard --logdir {run.dir / 'tensorboard'}" in (run.dir / "train.log").read_text()


def test_evaluation_rows_are_scalars_under_eval_and_text_with_their_protocol(tmp_path):
    row = {"step": 6, "eval": True, "fid": 12.5, "kid": 0.01, "sigma25": {"psnr": 30.0, "ssim": 0.9},
           "protocol": {"feature_net": "mnist-lenet", "n": 100}, "time": 1.7e9}
    assert scalars(row) == {"eval/fid": 12.5, "eval/kid": 0.01, "eval/sigma25/psnr": 30.0, "eval/sigma25/ssim": 0.9}
    board = Board(tmp_path / "tb", 0, {"task": "generate"})
    board.log(row)
    board.close()
    ea = read(tmp_path / "tb")
    assert series(ea, "eval/sigma25/psnr") == [(6, 30.0)]
    (shown,) = text(ea, "evaluation")
    assert json.loads(shown.strip("`\n")) == row  # every score and the whole protocol


def test_resume_hides_what_the_abandoned_steps_wrote(tmp_path):
    gankit.train(tiny(4, "log.ckpt_every=4"), tmp_path / "r")
    # A call that went on past the checkpoint at 4 and died before the next one: its events are
    # on disk (flushed), its metrics.jsonl rows are forgotten on resume.
    lost = Board(tmp_path / "r" / "tensorboard", 4, {})
    lost.log({"step": 6, "loss_d": 99.0})
    lost.log({"step": 6, "eval": True, "fid": 1.0, "protocol": {}})
    lost.close()
    run = gankit.train(tiny(9, "log.ckpt_every=4"), tmp_path / "r", resume=True)
    ea, logged = read(run.dir / "tensorboard"), rows(run.dir)
    assert [r["step"] for r in logged] == [2, 4, 6, 8, 9]
    assert series(ea, "loss_d") == [(r["step"], pytest.approx(r["loss_d"], rel=1e-6)) for r in logged]
    assert steps(ea, "eval/fid") == []  # written by no later call: only the purge hides it
    assert steps(ea, "samples") == [0, 3, 4, 6, 9]
    assert steps(ea, "config/text_summary") == [0, 5]  # the abandoned call's config is hidden too


def test_rollback_rewinds_the_events(tmp_path):
    board = Board(tmp_path / "tb", 0, {})
    for step, v in ((2, 1.0), (4, 2.0), (6, 3.0)):
        board.log({"step": step, "loss_d": v, "acc": v})
    board.rewind(4)  # back to the checkpoint at 4; step 6 is redone, "acc" is not logged again
    board.log({"step": 6, "loss_d": 5.0})
    board.close()
    ea = read(tmp_path / "tb")
    assert series(ea, "loss_d") == [(2, 1.0), (4, 2.0), (6, 5.0)]
    assert steps(ea, "acc") == [2, 4]


def test_off_writes_none(tmp_path):
    run = gankit.train(tiny(3, "log.tensorboard=false"), tmp_path / "r")
    assert not (run.dir / "tensorboard").exists() and "TensorBoard" not in (run.dir / "train.log").read_text()


def test_without_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # its import now fails
    with pytest.raises(GankitError, match=r"^log.tensorboard=true: the tensorboard package does not import .*; "
                                          r"pip install 'gankit\[tensorboard\]'"):
        gankit.train(tiny(3, "log.tensorboard=true"), tmp_path / "needed")
    assert not (tmp_path / "needed").exists()  # refused before anything was written
    run = gankit.train(tiny(3, "log.progress=true"), tmp_path / "auto")
    assert not (run.dir / "tensorboard").exists()
    said = [line for line in (run.dir / "train.log").read_text().splitlines() if "TensorBoard" in line]
    assert len(said) == 1 and "TensorBoard: off, the tensorboard package does not import" in said[0]
    assert capsys.readouterr().err.count("TensorBoard: off") == 1


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # what Python would print
def test_a_full_disk_ends_the_event_files_not_the_run(tmp_path, monkeypatch, capsys):
    import errno

    from tensorboard.summary.writer.record_writer import RecordWriter

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RecordWriter, "write", full)  # what the writer's thread calls for every event
    run = gankit.train(tiny(6), tmp_path / "r")
    assert run.step == 6 and [r["step"] for r in rows(run.dir)] == [2, 4, 6]
    err = capsys.readouterr().err
    refused = [ln for ln in err.splitlines() if "cannot write" in ln]
    assert len(refused) == 1 and refused[0].endswith("; training goes on without it")
    assert refused[0].startswith(f"gankit: cannot write {run.dir / 'tensorboard'}: no space left on device")
    assert (run.dir / "train.log").read_text().count("cannot write") == 1
