"""Proof that refactors move nothing: every preset family, tiny and seeded, trained a few CPU
steps through the public API; slices of G's and D's parameters and the logged losses are
compared with values recorded before the task-layer refactor (tests/golden/stored_values.json).

Regenerate (only when a change of the numbers is intended, and say so in the commit):
    GANKIT_RECORD_GOLDEN=1 .venv/bin/python -m pytest tests/test_stored_values.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import gankit

GOLDEN = Path(__file__).parent / "golden" / "stored_values.json"

# preset -> overrides that make it tiny; 6 steps each, on CPU, seed 0
TINY_CONV = ["model.g_width=8", "model.d_width=8", "train.batch=8"]
FAMILIES = {
    "seed-mlp": ["data.source=fake:1x28x28:64", "model.g_hidden=[16,32]", "model.d_hidden=[32,16]", "train.batch=8"],
    "mlp-bn": ["data.source=fake:1x28x28:64", "model.g_hidden=[16,32]", "model.d_hidden=[32,16]", "train.batch=8"],
    "dcgan": ["data.source=fake:1x28x28:64", *TINY_CONV],
    "wgan": ["data.source=fake:1x28x28:64", *TINY_CONV, "train.n_critic=2"],
    "wgan-gp": ["data.source=fake:1x28x28:64", *TINY_CONV, "train.n_critic=2"],
    "lsgan": ["data.source=fake:1x28x28:64", *TINY_CONV],
    "sngan": ["data.source=fake:1x28x28:64", *TINY_CONV, "train.n_critic=2"],
    "cgan": ["data.source=fake:1x28x28:64", *TINY_CONV],
    "acgan": ["data.source=fake:1x28x28:64", *TINY_CONV],
    "infogan": ["data.source=fake:1x28x28:64", *TINY_CONV],
    "toy-mlp": ["model.g_hidden=[16,16]", "model.d_hidden=[16,16]", "train.batch=16"],
    "toy-r1": ["model.g_hidden=[16,16]", "model.d_hidden=[16,16]", "train.batch=16", "reg.r1_every=2"],
    # lazy R1 and path length inside the 6 steps; style mixing, noise inputs and w_avg as the preset's
    "stylegan2": ["data.source=fake:1x28x28:64", *TINY_CONV, "model.z_dim=16", "model.w_dim=16",
                  "model.mapping_layers=2", "reg.r1_every=2", "reg.pl_every=2"],
}
STEPS = 6


def _fingerprint(run_dir: Path) -> dict:
    """First/last 4 values of every parameter of G (EMA when kept) and D, and the losses logged."""
    run = gankit.load(str(run_dir))
    out = {}
    for tag, net in (("G", run.G), ("D", run.discriminator())):
        for name, p in net.state_dict().items():
            if p.is_floating_point() and p.numel():
                flat = p.detach().flatten()
                out[f"{tag}.{name}"] = [float(v) for v in torch.cat([flat[:4], flat[-4:]])]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    out["losses"] = [[r["loss_d"], r["loss_g"]] for r in rows if "loss_d" in r]
    return out


def _train(preset: str, tmp_path: Path) -> dict:
    sets = FAMILIES[preset] + [f"train.steps={STEPS}", "log.every=2", "log.grid_every=1000",
                               "log.progress=false", "device=cpu", "seed=0",
                               "train.precision=fp32"]  # the stored values are fp32 maths, on any CPU
    cfg = gankit.load_config(preset, overrides=sets)
    gankit.train(cfg, str(tmp_path / preset))
    return _fingerprint(tmp_path / preset)


@pytest.mark.parametrize("preset", sorted(FAMILIES))
def test_preset_family_matches_stored_values(preset, tmp_path):
    got = _train(preset, tmp_path)
    if os.environ.get("GANKIT_RECORD_GOLDEN"):
        stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        stored[preset] = got
        GOLDEN.write_text(json.dumps(stored, indent=0, sort_keys=True) + "\n")
        pytest.skip("recorded")
    want = json.loads(GOLDEN.read_text())[preset]
    assert sorted(got) == sorted(want), "parameter names changed"
    for key in want:
        torch.testing.assert_close(torch.tensor(got[key], dtype=torch.float64),
                                   torch.tensor(want[key], dtype=torch.float64),
                                   rtol=1e-5, atol=1e-6, msg=lambda m, k=key: f"{preset} {k}: {m}")
