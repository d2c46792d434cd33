"""`gankit augment-eval`: the low-data GAN sees only its n images, the record has every arm, the
files are written, classical augmentation is label-preserving, and bad inputs are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.apps.augment_eval import classifier, protocol
from gankit.cli import main


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ae") / "out"
    rc = main(["augment-eval", "--quick", "--n", "20", "--ratios", "0.5,1", "--out", str(out)])
    assert rc == 0
    return out, json.loads((out / "augment_eval.json").read_text())


def test_the_gan_trains_on_the_n_images_only(quick_run):
    out, rec = quick_run
    gan = rec["results"]["20"]["gan"]
    assert gan["data_source"] == "mnist@20" and gan["n_images"] == 20
    from gankit.run import Run

    run = Run.load(out / "gan-n20")
    assert run.config.data.source == "mnist@20" and run.conditional
    assert "data: mnist@20: 20 examples" in (out / "gan-n20" / "train.log").read_text()


def test_the_record_has_every_arm_with_mean_and_std(quick_run):
    out, rec = quick_run
    r = rec["results"]["20"]
    assert set(r["arms"]) == set(protocol.ARMS)
    for arm, a in r["arms"].items():
        assert 0 <= a["mean"] <= 1 and a["std"] >= 0 and len(a["accs"]) == 1, arm
    for arm in protocol.RATIO_ARMS:
        a = r["arms"][arm]
        assert set(a["ratios"]) == {"0.5", "1"} and a["chosen_ratio"] in (0.5, 1.0)
        assert all("mean" in v and "std" in v and "mean" in v["val"] for v in a["ratios"].values())
    assert set(r["vs_classical"]) == {"synth", "classical+synth", "synth-only"}
    p = rec["protocol"]
    assert p["gan"]["steps"] == protocol.QUICK.gan_steps and p["classifier"]["steps"] == protocol.QUICK.recipe.steps
    assert p["test_images"] == protocol.QUICK.test_n and rec["summary"].startswith("synthetic vs classical")


def test_the_table_and_plot_are_written(quick_run):
    out, rec = quick_run
    md = (out / "augment_eval.md").read_text()
    assert "| 20 |" in md and "(val-chosen)" in md and "5 synthetic only" in md
    png = (out / "augment_eval.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_classical_augmentation_changes_images_keeps_labels_and_shape():
    from gankit.data import load_data

    d = load_data("mnist@20")
    x = d.to_model(d.x)
    g = torch.Generator().manual_seed(0)
    xa, ya = classifier.classical_augment(x, d.y, g)
    assert xa.shape == x.shape and torch.equal(ya, d.y)
    assert xa.min() >= -1 - 1e-5 and xa.max() <= 1 + 1e-5
    changed = (xa - x).abs().flatten(1).mean(1)
    assert (changed > 0.01).all()  # every image moved
    # mass is roughly kept: a digit is distorted, not erased
    ink, ink_a = (x + 1).sum((1, 2, 3)), (xa + 1).sum((1, 2, 3))
    assert ((ink_a / ink - 1).abs() < 0.35).all()
    # zero-strength parameters are the identity
    same, _ = classifier.classical_augment(x, None, g, classifier.Classical(shift=0, rotate=0, alpha=0))
    assert torch.allclose(same, x, atol=1e-4)


def _folder(root, classes, per=4, seed=0):
    g = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per):
            Image.fromarray(g.integers(0, 255, (28, 28), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_a_labelled_folder_works(tmp_path):
    train = _folder(tmp_path / "train", ["a", "b"], per=5)
    test = _folder(tmp_path / "test", ["a", "b"], per=3, seed=1)
    out = tmp_path / "out"
    assert main(["augment-eval", "--quick", "--n", "8", "--ratios", "1", "--data", str(train), "--test", str(test),
                 "--out", str(out)]) == 0
    rec = json.loads((out / "augment_eval.json").read_text())
    gan = rec["results"]["8"]["gan"]
    assert gan["n_images"] == 8 and gan["data_source"].endswith("n8.npz")
    assert rec["protocol"]["test_images"] == 6 and rec["protocol"]["classes"] == ["a", "b"]


@pytest.mark.parametrize("args, words", [
    (["--n", "70000"], "larger than the data"),
    (["--n", "105"], "not a multiple of the 10 classes"),
    (["--ratios", "0,1"], "must be > 0"),
    (["--ratios", "-1"], "must be > 0"),
    (["--n", "10"], "at least 2 images per class"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, args, words):
    out = tmp_path / "out"
    assert main(["augment-eval", "--quick", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gankit: error:") and words in err[0], err
    assert not out.exists()


def test_a_test_folder_with_other_classes_is_refused(tmp_path, capsys):
    train = _folder(tmp_path / "train", ["a", "b"])
    test = _folder(tmp_path / "test", ["a", "c"])
    assert main(["augment-eval", "--quick", "--n", "4", "--data", str(train), "--test", str(test),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classes differ" in err[0] and "only in test: c" in err[0], err


def test_the_help_states_the_budgets(capsys):
    with pytest.raises(SystemExit):
        main(["augment-eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    f = protocol.FULL
    for words in (f"{f.gan_steps} steps at batch min(64, n)", f"width {f.recipe.width}",
                  f"{f.recipe.steps} Adam steps of batch {f.recipe.batch}", f"lr {f.recipe.lr:g}",
                  f"GAN {protocol.QUICK.gan_steps} steps", f"{protocol.QUICK.test_n} test images"):
        assert words in text, words
