"""Longer translation trainings (make test-slow): the shipped presets learn, on held-out data."""

from __future__ import annotations

import pytest

import gankit
from gankit.config import load_config
from gankit.tasks.translate.evaluation import evaluate_translation

pytestmark = pytest.mark.slow


def test_pix2pix_learns_edges_to_digits(tmp_path):
    """400 steps of the preset: the digits drawn from held-out edge maps keep their label
    (the feature network reads most of them) and are close to the real digits in L1."""
    cfg = load_config("pix2pix", overrides=["train.steps=400", "log.progress=false", "device=cpu"])
    run = gankit.train(cfg, str(tmp_path / "p"))
    r = evaluate_translation(run.config, run.nets, 2000)
    assert r["label_acc"] > 0.8 and r["l1"] < 0.1 and r["psnr"] > 15, r


def test_cyclegan_adapts_mnistm_digits_for_an_mnist_classifier(tmp_path):
    """300 steps: the MNIST feature network, at chance on raw MNIST-M digits, reads MNIST-M digits
    translated to MNIST style (G_ba) far better (pixel-level domain adaptation)."""
    cfg = load_config("cyclegan", overrides=["train.steps=300", "log.progress=false", "device=cpu"])
    run = gankit.train(cfg, str(tmp_path / "c"))
    r = evaluate_translation(run.config, run.nets, 1000)
    assert r["label_acc_b_raw"] < 0.2 and r["label_acc_ba"] > max(0.2, 2 * r["label_acc_b_raw"]), r
