"""Proof that refactors move nothing: every preset family, tiny and seeded, trained a few CPU
steps through the public API; slices of G's and D's parameters and the logged losses are
compared with stored values (tests/golden/stored_values.json).

Why this holds on any x86-64 CPU and still catches a change of the maths:

- The reference runs compute in float64 (torch's default dtype set to float64: every network,
  batch, latent, loss and optimiser state follows it, `gankit.util.full`). Different CPUs run
  different kernels (AVX-512, AVX2, SSE; MKL and oneDNN pick theirs by ISA; thread counts change
  the summation order), so results differ in the last bits. In float32 those bits are ~1e-7 of a
  value, and Adam turns them into full-size updates where a gradient is mathematically zero and
  numerically only rounding noise (a bias followed by BatchNorm): m / (sqrt(v) + eps) is +-1 when
  |g| >> eps = 1e-8, so the bias moves by +-lr (2e-4) in a direction the rounding picked. That is
  how the float32 values recorded on an AVX-512 AMD EPYC failed on an Intel Xeon (mlp-bn
  G.net.0.bias, sngan) and on an AVX2-only EPYC (dcgan D.body.0.bias). In float64 the noise is
  ~1e-16, far below Adam's eps, so such a bias moves by ~1e-11, and every other value differs by
  ~1e-15 relative.
- Measured (this file's `test_stored_values_hold_with_other_kernels` runs it every time): the
  same runs with torch's kernels forced to the generic ISA, MKL to SSE4.2, oneDNN to SSE4.1 and
  one thread instead of two differ by at most 1.1e-8 relative to max(|value|, 1e-3) in float64
  (sngan's bias before BatchNorm, absolute 1.1e-11; every other family <= 1e-11), and by up to
  0.54 in float32 (sngan), 5.2e-4 (mlp-bn).
- The tolerance, rtol 1e-7 and atol 1e-9, is ~100x above that spread and ~1e4x below what a
  small change of the maths moves: a loss weight or a learning rate 1% off moves parameters by
  ~1e-5 after 6 Adam steps (`test_stored_values_catch_small_changes` shows both are caught).
  Logged losses are rounded to 6 decimals in metrics.jsonl, so they are compared to within one
  unit of that place.

Same-machine tests stay bitwise (eager == static, exact resume: tests/training/).

Regenerate (only when a change of the numbers is intended, and say so in the commit):
    GANKIT_RECORD_GOLDEN=1 .venv/bin/python -m pytest tests/test_stored_values.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
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
RTOL, ATOL = 1e-7, 1e-9  # see the module docstring: ~100x the measured cross-kernel spread in float64
LOSS_ATOL = 1.5e-6  # losses are logged rounded to 6 decimals
# Another CPU's kernels on this one: torch's generic (non-SIMD) kernels, MKL and oneDNN limited to
# SSE, one thread (other summation orders).
OTHER_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "ONEDNN_MAX_CPU_ISA": "SSE41", "OMP_NUM_THREADS": "1"}


@contextmanager
def float64():
    """torch's default dtype float64 for the block (networks, batches, latents, losses)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


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


def _train(preset: str, tmp_path: Path, extra: tuple[str, ...] = ()) -> dict:
    sets = FAMILIES[preset] + [f"train.steps={STEPS}", "log.every=2", "log.grid_every=1000",
                               "log.progress=false", "device=cpu", "seed=0",
                               "train.precision=fp32", *extra]  # full precision, no bf16 forwards
    with float64():
        cfg = gankit.load_config(preset, overrides=sets)
        gankit.train(cfg, str(tmp_path / preset))
        return _fingerprint(tmp_path / preset)


def _mismatches(preset: str, got: dict, want: dict) -> list[str]:
    """Each value group of `got` that differs from `want` beyond the tolerances, as a line."""
    assert sorted(got) == sorted(want), f"{preset}: parameter names changed"
    bad = []
    for key in want:
        atol = LOSS_ATOL if key == "losses" else ATOL
        try:
            torch.testing.assert_close(torch.tensor(got[key], dtype=torch.float64),
                                       torch.tensor(want[key], dtype=torch.float64), rtol=RTOL, atol=atol)
        except AssertionError as e:
            bad.append(f"{preset} {key}: {' '.join(str(e).split())}")
    return bad


def _stored(preset: str) -> dict:
    return json.loads(GOLDEN.read_text())[preset]


@pytest.mark.parametrize("preset", sorted(FAMILIES))
def test_preset_family_matches_stored_values(preset, tmp_path):
    got = _train(preset, tmp_path)
    if os.environ.get("GANKIT_RECORD_GOLDEN"):
        stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        stored[preset] = got
        GOLDEN.write_text(json.dumps(stored, indent=0, sort_keys=True) + "\n")
        pytest.skip("recorded")
    bad = _mismatches(preset, got, _stored(preset))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("preset, change", [
    ("wgan-gp", "reg.gp=10.1"),  # one loss term's weight 1% off (10 -> 10.1)
    ("dcgan", "train.lr_d=0.000202"),  # one learning rate 1% off (2e-4 -> 2.02e-4)
])
def test_stored_values_catch_small_changes(preset, change, tmp_path):
    """A change of the maths this small fails the comparison (the test above can fail)."""
    default = gankit.load_config(preset, overrides=FAMILIES[preset])
    key, value = change.split("=")
    section, name = key.split(".")
    assert float(value) == pytest.approx(1.01 * getattr(getattr(default, section), name))
    bad = _mismatches(preset, _train(preset, tmp_path, (change,)), _stored(preset))
    assert bad, f"{change} went unnoticed"


@pytest.mark.skipif(bool(os.environ.get("GANKIT_RECORD_GOLDEN") or os.environ.get("ATEN_CPU_CAPABILITY")),
                    reason="recording, or already running with forced kernels")
def test_stored_values_hold_with_other_kernels():
    """The comparison passes with another CPU's kernels: this file's main test in a child process
    whose torch, MKL and oneDNN run generic / SSE code on one thread."""
    env = {**os.environ, **OTHER_KERNELS}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                        "-k", "matches_stored_values"], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert f"{len(FAMILIES)} passed" in r.stdout, r.stdout[-1000:]
