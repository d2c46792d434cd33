"""Stored values of the text methods, MLE, RelGAN, SeqGAN and LatentGAN, each through its phase
switch (tests/golden/tasks/text.json, see tests/tasks/conftest.py), and proof that the comparison
catches a learning rate or a penalty weight 1% off."""

import pytest

SMALL = ["text.hidden=16", "text.emb=8", "text.d_filters=4", "text.max_len=24", "train.batch=8", "text.grid_lines=2",
         "train.steps=4"]
VARIANTS = {
    "mle": ("text-mle", []),
    "relgan": ("relgan", ["text.pretrain_steps=2"]),
    "seqgan": ("seqgan", ["text.pretrain_steps=2", "text.d_pretrain_steps=1", "text.rollouts=2", "text.rollout_every=6"]),
    "latentgan": ("latentgan", ["text.pretrain_steps=2", "train.n_critic=2", "model.z_dim=4", "text.latent=6",
                                "text.kind=text"]),
}
LINES = ["the cat sat", "a dog ran far", "cats like milk", "dogs dig holes", "the sun is warm",
         "rain falls down", "we read books", "birds can fly", "fish swim deep", "trees grow tall"]


def _train(variant, tmp_path, stored_values, *change):
    (tmp_path / "corpus").mkdir(exist_ok=True)
    (tmp_path / "corpus" / "lines.txt").write_text("\n".join(LINES * 2) + "\n", encoding="utf-8")
    preset, sets = VARIANTS[variant]
    return stored_values.train(preset, [*SMALL, *sets, f"data.source={tmp_path / 'corpus'}", *change], tmp_path / "run")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_text_matches_stored_values(variant, tmp_path, stored_values):
    stored_values.check(variant, _train(variant, tmp_path, stored_values))


@pytest.mark.parametrize("variant, change", [
    ("mle", "train.lr_g=0.00202"),  # 2e-3 -> 2.02e-3
    ("relgan", "text.adv_lr=0.000101"),  # the adversarial phase's own Adam, 1e-4 -> 1.01e-4
    ("latentgan", "reg.gp=10.1"),  # the code critic's gradient penalty, 10 -> 10.1
])
def test_stored_values_catch_small_changes(variant, change, tmp_path, stored_values):
    stored_values.caught(variant, _train(variant, tmp_path, stored_values, change))
