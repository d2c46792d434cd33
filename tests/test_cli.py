"""The `gankit` command, end to end: in-process through `main` and once as a real subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main

FAKE = ["--data", "fake:1x8x8:64", "--set", "data.resolution=null", "--set", "model.g_hidden=[16]",
        "--set", "model.d_hidden=[16]", "--set", "train.batch=8", "--set", "log.grid_n=4",
        "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *FAKE, "--steps", "3", "--out", str(out)]) == 0
    return out


def test_train_smoke_prints_paths(fake_run, capsys):
    assert (fake_run / "samples" / "step_000003.png").exists()
    assert (fake_run / "loss.png").exists() and (fake_run / "progress.gif").exists()
    assert (fake_run / "report.html").exists()


def test_report_one_run_and_a_comparison(fake_run, tmp_path, capsys, monkeypatch):
    (fake_run / "report.html").unlink()
    assert main(["report", str(fake_run)]) == 0
    assert capsys.readouterr().out.strip() == str(fake_run / "report.html") and (fake_run / "report.html").exists()
    assert main(["report", str(fake_run), "--out", str(tmp_path / "one.html")]) == 0
    assert (tmp_path / "one.html").read_text().count('id="step-slider"') == 1
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(fake_run), str(fake_run)]) == 0  # several runs: ./compare.html by default
    page = (tmp_path / "compare.html").read_text()
    assert page.split('id="compare-table"')[1].split("</table>")[0].count("<tr") == 3  # a header and a row per run


def test_sample_grid_npz_dir_interpolate(fake_run, tmp_path, capsys):
    grid, npz, d, interp = tmp_path / "g.png", tmp_path / "s.npz", tmp_path / "each", tmp_path / "i.png"
    assert main(["sample", str(fake_run), "--n", "9", "--seed", "1", "--out", str(grid),
                 "--npz", str(npz), "--dir", str(d)]) == 0
    assert Image.open(grid).size[0] > 8
    x = np.load(npz)["x"]
    assert x.shape == (9, 1, 8, 8) and x.dtype == np.uint8
    files = sorted(d.glob("*.png"))
    assert len(files) == 9 and np.array_equal(np.asarray(Image.open(files[4])), x[4, 0])
    assert main(["sample", str(fake_run), "--n", "9", "--seed", "1", "--npz", str(tmp_path / "t.npz")]) == 0
    assert np.array_equal(np.load(tmp_path / "t.npz")["x"], x)  # same seed, same samples
    assert main(["sample", str(fake_run), "--interpolate", "--n", "12", "--frames", "6",
                 "--out", str(interp)]) == 0
    w, h = Image.open(interp).size
    assert w > h  # 2 rows of 6


def test_resume_continues(fake_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(fake_run, run)
    assert main(["train", "--resume", str(run), "--steps", "5", "--no-progress"]) == 0
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 5
    assert main(["train", "--resume", str(run), "--set", "train.batch=4"]) == 2
    assert "config differs" in capsys.readouterr().err


def test_presets_and_data_info(tmp_path, capsys):
    assert main(["presets"]) == 0
    assert "seed-mlp" in capsys.readouterr().out
    assert main(["presets", "seed-mlp"]) == 0
    assert "d_dropout: 0.3" in capsys.readouterr().out
    prev = tmp_path / "p.png"
    assert main(["data", "info", "fake:3x8x8:20", "--preview", str(prev)]) == 0
    out = capsys.readouterr().out
    assert "count:    20" in out and "(3, 8, 8)" in out and "range:    [0, 255]" in out and prev.exists()


@pytest.mark.parametrize("argv, words", [
    (["train", "--preset", "nope"], "unknown preset 'nope'"),
    (["train", "--data", "cifar"], "unknown data source 'cifar'"),
    (["train", "--set", "train.batch=0"], "train.batch = 0 is out of range"),
    (["train", "--set", "bogus=1"], "unknown key bogus"),
    (["train", "--config", "missing.yaml"], "missing.yaml' does not exist"),
    (["sample", "no/such/run"], "run directory no/such/run does not exist"),
    (["data", "info", "./nothing-here"], "no such file or folder"),
    (["report", "no/such/run"], "no/such/run"),
    (["serve", "no/such/run", "--port", "70000"], "--port 70000: expected 0 (a free port) to 65535"),
    (["serve", "no/such/run", "--max-samples", "0"], "--max-samples 0: expected a number >= 1"),
    (["serve", "no/such/run"], "no/such/run"),
    (["train", *FAKE, "--set", "train.batch=1000", "--out", "OUT"], "batch size 1000 is larger than the dataset"),
])
def test_user_errors_are_one_line_exit_2(argv, words, tmp_path, capsys):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # `train` may announce itself first
    assert last.startswith("gankit: error:") and words in last, err
    assert "Traceback" not in err and err.count("gankit: error:") == 1
    assert not (tmp_path / "o").exists()  # a refused command leaves no directory behind


# Every command that writes: a path the machine refuses is one line naming it, exit 2.
WRITERS = {
    "sample-out": ["sample", "RUN", "--out", "OUT.png"],
    "sample-npz": ["sample", "RUN", "--npz", "OUT.npz"],
    "sample-dir": ["sample", "RUN", "--dir", "OUT"],
    "export": ["export", "RUN", "--out", "OUT.safetensors"],
    "export-folder": ["export", "RUN", "--out", "OUT"],
    "report": ["report", "RUN", "--out", "OUT.html"],
    "train": ["train", *FAKE, "--steps", "1", "--out", "OUT"],
}


@pytest.mark.parametrize("argv", WRITERS.values(), ids=WRITERS.keys())
def test_an_output_under_a_file_is_one_line_naming_the_path(argv, fake_run, tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where a folder is expected")
    argv = [str(fake_run) if a == "RUN" else a.replace("OUT", str(blocker / "x")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert last.startswith(f"gankit: error: cannot write {blocker / 'x'}") and "Traceback" not in err
    assert last.endswith(f": {blocker} is a file, not a folder") and err.count("gankit: error:") == 1
    assert sorted(tmp_path.iterdir()) == [blocker]


def test_a_read_only_or_full_disk_is_one_line_and_leaves_no_partial_file(fake_run, tmp_path, monkeypatch, capsys):
    """Mocked writers (root ignores chmod): PIL on a read-only folder, safetensors and numpy on a
    disk that fills up mid-file."""
    import errno
    from pathlib import Path

    from safetensors import SafetensorError

    from gankit import export

    def read_only(self, fp, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(fp))

    def full_safetensors(state, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    def full_npz(f, **arrays):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", read_only)
    monkeypatch.setattr(export, "save_file", full_safetensors)
    monkeypatch.setattr(np, "savez_compressed", full_npz)
    for flag, name, words in [("--out", "g.png", "read-only file system"),
                              ("--npz", "g.npz", "no space left on device ("),
                              (None, "g.safetensors", "no space left on device (")]:
        out = tmp_path / name
        argv = ["export", str(fake_run), "--out", str(out)] if flag is None else ["sample", str(fake_run), flag, str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"gankit: error: cannot write {out}: {words}") and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_console_script_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gankit", "train", *FAKE, "--steps", "2", "--out",
                        str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"samples:   {tmp_path / 'r' / 'samples' / 'step_000002.png'}" in r.stdout
    assert "loss plot:" in r.stdout and "animation:" in r.stdout


def test_short_mnist_run_writes_every_file(tmp_path, capsys):
    out = tmp_path / "mnist"
    assert main(["train", "--data", "mnist", "--steps", "40", "--out", str(out), "--no-progress",
                 "--set", "log.every=10", "--set", "log.grid_every=20", "--set", "log.ckpt_every=20"]) == 0
    for name in ["config.yaml", "metrics.jsonl", "loss.png", "progress.gif", "checkpoints/last.pt",
                 "samples/step_000000.png", "samples/step_000020.png", "samples/step_000040.png"]:
        assert (out / name).is_file(), name
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    # D learns to tell MNIST from an untrained G within 40 steps: the loop really trains.
    assert rows[-1]["acc_real"] > 0.6 and rows[-1]["d_real"] > rows[-1]["d_fake"]
    gif = Image.open(out / "progress.gif")
    assert gif.n_frames == 3
    stdout = capsys.readouterr().out
    assert str(out / "samples" / "step_000040.png") in stdout
    assert main(["data", "info", "mnist", "--preview", str(tmp_path / "p.png")]) == 0
    assert "count:    60000" in capsys.readouterr().out


def test_sample_conditional_and_infogan_flags(tmp_path, capsys):
    small = ["--data", "fake:1x28x28:64", "--set", "model.g_width=4", "--set", "model.d_width=4",
             "--set", "train.batch=8", "--steps", "2", "--no-progress", "--device", "cpu"]
    cg, ig = tmp_path / "cgan", tmp_path / "info"
    assert main(["train", "--preset", "cgan", *small, "--out", str(cg)]) == 0
    assert main(["train", "--preset", "infogan", *small, "--out", str(ig)]) == 0
    grid = tmp_path / "byclass.png"
    assert main(["sample", str(cg), "--n", "20", "--out", str(grid)]) == 0
    w, h = Image.open(grid).size
    assert h > w  # 10 class rows of 2
    assert main(["sample", str(cg), "--class", "3", "--n", "5", "--npz", str(tmp_path / "c3.npz")]) == 0
    assert np.load(tmp_path / "c3.npz")["x"].shape == (5, 1, 28, 28)
    assert main(["sample", str(cg), "--no-ema", "--n", "5", "--npz", str(tmp_path / "raw.npz")]) == 0
    assert main(["sample", str(ig), "--code", "7", "--n", "5", "--npz", str(tmp_path / "k.npz")]) == 0
    capsys.readouterr()
    assert main(["sample", str(cg), "--class", "10"]) == 2
    assert "class 10 is out of range; this run has classes 0..9" in capsys.readouterr().err
    assert main(["sample", str(ig), "--class", "1"]) == 2
    assert "--class needs a conditional run" in capsys.readouterr().err
    assert main(["sample", str(cg), "--code", "1"]) == 2
    assert "--code needs an InfoGAN run" in capsys.readouterr().err
