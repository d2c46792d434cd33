"""Molecules beyond SMILES strings: the property objectives against RDKit, ORGAN's mixed reward,
SeqGAN's D pretraining at its own rate (counted, and resumed exactly), and 3-D embedding to SDF
through `gankit sample --sdf` with its failures counted by reason."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytest.importorskip("rdkit")

import gankit  # noqa: E402
from gankit.cli import main  # noqa: E402
from gankit.config import load_config  # noqa: E402
from gankit.data.text import EOS, PAD  # noqa: E402
from gankit.errors import GankitError  # noqa: E402
from gankit.metrics.molecules import LOGP_RANGE, molecule_property, property_reward  # noqa: E402
from gankit.models.text import LSTMGenerator, one_hot  # noqa: E402
from gankit.tasks.text.embed3d import embed, sdf_text, write_sdf  # noqa: E402
from gankit.tasks.text.phases import rewards  # noqa: E402
from gankit.training.checkpoint import load_checkpoint  # noqa: E402

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
MOLS = ["CCO", "CCN", "CCC", "CCCl", "c1ccccc1", "Cc1ccccc1", "CC(=O)O", "CCOC(=O)C", "NCCO", "OCCO",
        "CCCO", "CCCN", "c1ccncc1", "C1CCCCC1", "C1CCNCC1", "O=C1CCCCC1", "Brc1ccccc1", "c1ccoc1", "CCCCO", "CC(C)O"]
TINY = ["text.hidden=16", "text.emb=8", "text.d_filters=4", "text.max_len=24", "train.batch=8", "text.layers=1",
        "log.progress=false", "device=cpu", "log.every=1", "log.grid_every=1000", "text.grid_lines=2",
        "text.rollouts=2", "text.rollout_every=6"]
ORGAN = ["text.pretrain_steps=1", "text.d_pretrain_steps=2", "text.d_pretrain_lr=1e-3", "text.objective=qed"]


@pytest.fixture
def smiles_file(tmp_path):
    f = tmp_path / "mols.txt"
    f.write_text("\n".join(MOLS) + "\n", encoding="utf-8")
    return f


def test_properties_are_rdkits_and_rewards_map_onto_0_1():
    import os
    import sys

    from rdkit import Chem, RDConfig
    from rdkit.Chem import QED, Crippen

    sys.path.insert(0, os.path.join(RDConfig.RDContribDir, "SA_Score"))
    import sascorer

    m = Chem.MolFromSmiles(ASPIRIN)
    assert molecule_property(m, "qed") == pytest.approx(QED.qed(m)) and 0.5 < QED.qed(m) < 0.6
    assert molecule_property(m, "logp") == pytest.approx(Crippen.MolLogP(m)) == pytest.approx(1.31, abs=0.01)
    assert molecule_property(m, "sa") == pytest.approx(sascorer.calculateScore(m)) and 1 < molecule_property(m, "sa") < 3
    lo, hi = LOGP_RANGE
    assert property_reward(lo, "logp") == 0 and property_reward(hi, "logp") == 1
    assert property_reward((lo + hi) / 2, "logp") == pytest.approx(0.5) and property_reward(99.0, "logp") == 1
    assert property_reward(5.0, "sa") == 0 and property_reward(1.5, "sa") == 1  # easy to make: high reward
    assert property_reward(3.25, "sa") == pytest.approx(0.5) and property_reward(0.7, "qed") == 0.7
    assert property_reward(None, "qed") == 0  # an invalid molecule
    with pytest.raises(GankitError, match="expected one of qed, logp, sa"):
        molecule_property(m, "mw")


def test_organs_reward_mixes_d_and_the_objective_by_lambda():
    """R = (1 - w) sigmoid(D(y)) + w O(y) on the whole line; w = 0 is SeqGAN's reward."""
    torch.manual_seed(0)
    G = LSTMGenerator(7, 4, 8)
    seq = torch.tensor([[4, 5, 6, 4, EOS, PAD], [5, 5, 5, 5, 5, 5]])

    class Count5(torch.nn.Module):
        def forward(self, x, y=None):
            return x[:, :, 5].sum(1) - 3.0

    def score(ids):  # an objective: the share of token 4 in the line
        return (ids == 4).float().mean(1)

    d = torch.sigmoid(Count5()(one_hot(seq, 7)))  # (2,)
    for w in (0.0, 0.3, 1.0):
        q, o = rewards(G, Count5(), seq, None, rollouts=3, every=4, gen=torch.Generator().manual_seed(0),
                       score=score, weight=w)
        torch.testing.assert_close(o, torch.tensor([2 / 6, 0.0]))
        torch.testing.assert_close(q[:, -1], (1 - w) * d + w * o)
    q0, _ = rewards(G, Count5(), seq, None, rollouts=3, every=4, gen=torch.Generator().manual_seed(0))
    q1, _ = rewards(G, Count5(), seq, None, rollouts=3, every=4, gen=torch.Generator().manual_seed(0),
                    score=score, weight=0.0)
    torch.testing.assert_close(q0, q1)


def test_d_pretraining_runs_its_steps_at_its_own_rate_and_resumes_exactly(smiles_file, tmp_path):
    def cfg(steps):
        return load_config("organ", overrides=[*TINY, *ORGAN, f"data.source={smiles_file}", f"train.steps={steps}"])

    full = gankit.train(cfg(5), str(tmp_path / "full"))
    ck = load_checkpoint(full.dir / "checkpoints" / "last.pt")
    rows = [__import__("json").loads(x) for x in (full.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["mle"] + ["d"] * 2 + ["gan"] * 2
    assert all(0 <= r["qed"] <= 1 for r in rows[-2:]) and rows[0]["lr_d_pre"] == 1e-3
    steps = {k: max((int(s["step"]) for s in v["state"].values()), default=0) for k, v in ck["opts"].items()}
    assert steps["D_pre"] == 2 and steps["D"] == 2  # the pretraining's Adam, then the adversarial one
    gankit.train(cfg(2), str(tmp_path / "part"))  # stops inside D's pretraining
    part = gankit.train(cfg(5), str(tmp_path / "part"), resume=True)
    a, b = ck["nets"], load_checkpoint(part.dir / "checkpoints" / "last.pt")["nets"]
    assert a.keys() == b.keys() and all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_objective_settings_are_checked_in_one_line():
    with pytest.raises(GankitError, match="text.objective = 'qed' is ORGAN's reward, for text.method seqgan with "
                                          "text.kind smiles"):
        load_config("seqgan", overrides=["text.objective=qed"])
    with pytest.raises(GankitError, match="text.d_pretrain_lr is the rate of SeqGAN's D pretraining"):
        load_config("relgan", overrides=["text.d_pretrain_lr=1e-3"])
    with pytest.raises(GankitError, match="text.objective_weight.*a number from 0 to 1"):
        load_config("organ", overrides=["text.objective=sa", "text.objective_weight=1.5"])


def test_embedding_counts_each_failure_and_writes_an_sdf_with_coordinates(tmp_path):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    e = embed(ASPIRIN, seed=0)
    assert e.field == "MMFF94" and e.converged and e.heavy_atoms == 13
    assert e.mol.GetNumAtoms() == 21 and e.mol.GetConformer().Is3D()  # hydrogens added
    ff = AllChem.MMFFGetMoleculeForceField(e.mol, AllChem.MMFFGetMoleculeProperties(e.mol))
    assert ff.CalcEnergy() == pytest.approx(e.energy)  # the energy of the written coordinates
    assert embed(ASPIRIN, seed=0).energy == e.energy  # fixed seed: the same conformer
    assert embed("CC[Te]C").field == "UFF"  # MMFF94 has no tellurium
    assert embed("CCO.Cl") == "several fragments" and embed("C1CC") == "invalid SMILES" and embed("") == "invalid SMILES"
    out = tmp_path / "a" / "m.sdf"
    r = write_sdf([ASPIRIN, "CCO.Cl", "C1CC(", "CC[Te]C"], out)
    assert r["parsed"] == 0.75 and r["embedded"] == 0.5 and r["fields"] == {"MMFF94": 1, "UFF": 1}
    assert r["failures"] == {"invalid SMILES": 1, "several fragments": 1, "embedding failed": 0,
                             "no force-field parameters": 0}
    assert r["mmff_energy"]["median"] == round(e.energy, 2)
    back = list(Chem.SDMolSupplier(str(out), removeHs=False))
    assert [m.GetProp("SMILES") for m in back] == [ASPIRIN, "CC[Te]C"]
    assert [m.GetProp("force_field") for m in back] == ["MMFF94", "UFF"] and back[1].GetIntProp("sample") == 3
    assert back[0].GetConformer().GetPositions() == pytest.approx(e.mol.GetConformer().GetPositions(), abs=1e-4)
    assert sdf_text([]) == ""


def test_cli_sample_sdf_and_its_bad_input(smiles_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    sets = [x for s in TINY for x in ("--set", s)]
    assert main(["train", "--preset", "charrnn", "--data", str(smiles_file), "--steps", "2", "--out", str(run),
                 *sets]) == 0
    capsys.readouterr()
    out = tmp_path / "m.sdf"
    assert main(["sample", str(run), "--n", "5", "--seed", "0", "--sdf", str(out), "--sdf-ref", "0"]) == 0
    text = capsys.readouterr().out
    assert f"{out} (5 samples, " in text and "parsed " in text and "embedded in 3-D" in text
    assert out.exists() and text.count("MOSES test") == 0
    if importlib.util.find_spec("moses") is not None:  # the comparison with MOSES test molecules, cached
        assert main(["sample", str(run), "--n", "2", "--sdf", str(out), "--sdf-ref", "2"]) == 0
        assert "MOSES test (2 molecules, embedded 100.0%): MMFF94 energy median" in capsys.readouterr().out
        assert len(list((tmp_path / "cache" / "moses3d").glob("test-n2-seed0-*.json"))) == 1
    (tmp_path / "file").write_text("x")
    bad = tmp_path / "file" / "m.sdf"  # a folder on the way that is a file
    assert main(["sample", str(run), "--n", "2", "--sdf", str(bad)]) == 2
    e = capsys.readouterr().err.strip()
    assert len(e.splitlines()) == 1 and "cannot write" in e and not bad.exists()
    assert main(["sample", str(run), "--n", "2", "--sdf", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["sample", str(run), "--sdf-ref", "3"]) == 2
    assert "with --sdf" in capsys.readouterr().err
    text_file = tmp_path / "t.txt"
    text_file.write_text("".join(f"line number {i}\n" for i in range(20)), encoding="utf-8")
    assert main(["train", "--preset", "text-mle", "--data", str(text_file), "--steps", "1", "--out",
                 str(tmp_path / "t"), *sets]) == 0
    assert main(["sample", str(tmp_path / "t"), "--sdf", str(tmp_path / "x.sdf")]) == 2
    assert "trained on text, not SMILES" in capsys.readouterr().err and not (tmp_path / "x.sdf").exists()
