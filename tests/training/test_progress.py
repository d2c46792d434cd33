"""Progress on stderr: a live bar on a terminal, one plain line per log step anywhere else."""

import io
import json
import re

import gankit
from gankit.config import load_config
from gankit.training.progress import Progress

TINY = ["data.source=fake:1x8x8:64", "data.resolution=null", "model.g_hidden=[16]", "model.d_hidden=[16]",
        "model.z_dim=4", "train.batch=8", "log.every=2", "log.grid_every=3", "log.grid_n=4", "device=cpu",
        "log.tensorboard=false"]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def steps(p: Progress, n: int, row: dict) -> None:
    for _ in range(n):
        p.advance()
    p.show(row)


def test_not_a_terminal_one_plain_line_per_log_step():
    out = io.StringIO()
    p = Progress(10, initial=2, stream=out)
    steps(p, 3, {"loss_d": 1.23456, "loss_g": 0.5, "acc": 0.75, "steps_per_s": 812.4})
    steps(p, 5, {"loss_d": 1.0, "loss_g": 0.25, "acc": 0.5, "steps_per_s": 0.8512})
    p.close()
    text = out.getvalue()
    assert "\r" not in text
    first, last = text.splitlines()
    assert re.fullmatch(r"step  5/10  50%  loss_D 1\.235 loss_G 0\.500 acc_D 0\.75  812 steps/s  ETA \d\d:\d\d", first)
    assert last == "step 10/10 100%  loss_D 1.000 loss_G 0.250 acc_D 0.50  0.85 steps/s  ETA 00:00"


def test_disabled_prints_nothing_and_a_terminal_keeps_the_bar():
    quiet = io.StringIO()
    p = Progress(4, enabled=False, stream=quiet)
    steps(p, 4, {"loss_d": 1.0, "steps_per_s": 9.0})
    p.close()
    assert quiet.getvalue() == ""
    tty = Terminal()
    p = Progress(4, stream=tty)
    steps(p, 4, {"loss_d": 1.0, "steps_per_s": 9.0})
    p.close()
    assert "\r" in tty.getvalue() and "4/4" in tty.getvalue() and "step 4/4" not in tty.getvalue()  # tqdm's bar


def test_a_redirected_training_run_logs_one_line_per_log_step(tmp_path, capsys):
    cfg = load_config("seed-mlp", overrides=[*TINY, "train.steps=7"])
    run = gankit.train(cfg, tmp_path / "r")  # stderr is captured here: not a terminal
    err = capsys.readouterr().err
    logged = [json.loads(line)["step"] for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    shown = [int(m.group(1)) for m in re.finditer(r"^step +(\d+)/7 ", err, re.M)]
    assert "\r" not in err and logged == shown == [2, 4, 6, 7]
