"""Configs written before each task owned its config section (issue 27) load unchanged.

tests/golden/pre27/ was recorded with the code before that change: presets.json holds
`to_dict(load_config(preset))` for every preset then shipped (and "" for the defaults), configs/
one run directory's config.yaml per task, v1-dcgan.json the config resolved from
tests/golden/v1-dcgan's config.yaml and its checkpoint.

Tasks registered since (denoise) add their own sections to every config, and fields added since
(NEW_FIELDS) appear in theirs: a config resolves to what it did then plus those, at their
defaults, and nothing else moves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gankit.config import RunConfig, from_dict, load_config, to_dict

GOLDEN = Path(__file__).parent / "golden"
PRESETS = json.loads((GOLDEN / "pre27" / "presets.json").read_text())


def as_then(got: dict, want: dict) -> dict:
    """`got` without the sections added since `want` was recorded, after checking that those are
    exactly the sections of tasks registered since, at their defaults."""
    added = set(got) - set(want)
    assert added <= set(NEW_SECTIONS), f"sections that appeared: {sorted(added - set(NEW_SECTIONS))}"
    default = to_dict(RunConfig())
    assert all(got[k] == default[k] for k in added)
    got = {k: v for k, v in got.items() if k in want}
    for section, fields in NEW_FIELDS.items():  # fields added since: present, at their defaults, then dropped
        if section in want:
            assert all(got[section][f] == default[section][f] for f in fields), section
            got[section] = {k: v for k, v in got[section].items() if k not in fields}
    return got


NEW_SECTIONS = ("denoise", "recon", "vocoder")  # sections of the tasks registered after the fixtures were recorded
# fields added to existing sections since (issue 28: the streaming data path, gradient accumulation)
NEW_FIELDS = {"data": ("load", "memory_budget", "workers", "prefetch", "mirror"), "train": ("batch_gpu",)}
NEW_FIELDS["model"] = ("cbase", "cmax", "mbstd_group")  # issue 28: channel widths at large sizes, paper256's mbstd
NEW_FIELDS["log"] = ("tensorboard",)  # issue 29: TensorBoard event files
NEW_FIELDS["train"] += ("freeze_d", "freeze_g")  # issue 29: fine-tuning with frozen layers
NEW_FIELDS["text"] = ("d_pretrain_lr", "objective", "objective_weight")  # issue 31: ORGAN's objectives
NEW_FIELDS["eval"] = ("memorization", "held_out")  # issue 30: the memorisation check on small labelled sets
NEW_FIELDS["audio"] = ("aux_fakes",)  # issue 31: AC-GAN's classifier on real clips only (audio runs)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_resolves_as_before(preset):
    cfg = load_config(preset=preset) if preset else from_dict({})
    got, want = as_then(to_dict(cfg), PRESETS[preset]), PRESETS[preset]
    assert got == want
    # each section keeps its keys' order; the sections are now the shared ones, then each task's
    assert all(list(got[k]) == list(want[k]) for k in want if isinstance(want[k], dict))


@pytest.mark.parametrize("path", sorted((GOLDEN / "pre27" / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_saved_run_config_loads_as_before(path):
    d = yaml.safe_load(path.read_text())
    assert as_then(to_dict(from_dict(d, origin=str(path))), PRESETS[path.stem]) == PRESETS[path.stem]
    assert from_dict(d) == load_config(preset=path.stem)


def test_v1_run_directory_and_checkpoint_load_as_before():
    torch = pytest.importorskip("torch")
    want = json.loads((GOLDEN / "pre27" / "v1-dcgan.json").read_text())
    run = GOLDEN / "v1-dcgan"
    got = to_dict(from_dict(yaml.safe_load((run / "config.yaml").read_text())))
    assert as_then(got, want["config.yaml"]) == want["config.yaml"]
    ck = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert as_then(to_dict(from_dict(ck["config"])), want["last.pt"]) == want["last.pt"]
