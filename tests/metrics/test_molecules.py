"""MOSES's metrics (gankit.metrics.molecules) on hand-made molecules: validity and canonical forms
of known SMILES, internal diversity against a hand computation, unique@k and novelty, and FCD's
zero at identical statistics."""

import numpy as np
import pytest

pytest.importorskip("rdkit")

from gankit.data.molecules import canonical, is_valid  # noqa: E402
from gankit.metrics.molecules import chemnet_stats, fcd, fingerprints, frechet, internal_diversity, moses_scores  # noqa: E402


def test_validity_and_canonical_forms_of_known_smiles():
    for s in ("CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "[nH]1cccc1", "Cl"):
        assert is_valid(s), s
    for s in ("", "C1CC", "c1cccc1", "Cl(", "CC(C", "X"):
        assert not is_valid(s), s
    assert canonical("OCC") == "CCO" and canonical("C(C)O") == "CCO"
    assert canonical("C1CC") is None


def test_internal_diversity_matches_a_hand_computation():
    a = np.zeros((1, 1024), bool)
    a[0, :4] = True
    b = np.zeros((1, 1024), bool)
    b[0, 2:6] = True  # shares 2 of 6 bits with a: Tanimoto 1/3
    assert internal_diversity(np.concatenate([a, a])) == pytest.approx(0.0)
    # pairs (a,a) 1, (b,b) 1, (a,b) and (b,a) 1/3: mean 2/3
    assert internal_diversity(np.concatenate([a, b])) == pytest.approx(1 - (2 + 2 / 3) / 4)
    from gankit.data.molecules import mol
    fps = fingerprints([mol("CCO"), mol("c1ccccc1")])
    assert fps.shape == (2, 1024) and fps.dtype == bool and fps.sum() > 0


def test_scores_of_a_small_sample():
    samples = ["CCO", "OCC", "c1ccccc1", "C1CC", "CCN", "CCN"]  # 5 valid, 3 distinct: CCO, c1ccccc1, CCN
    r = moses_scores(samples, train={"CCO"}, fcd_ref=None, ks=(4, 5))
    assert r["valid"] == pytest.approx(5 / 6) and r["n_valid"] == 5
    assert r["unique@4"] == pytest.approx(3 / 4)  # CCO, CCO, c1ccccc1, CCN
    assert r["unique@5"] == pytest.approx(3 / 5)
    assert r["novelty"] == pytest.approx(2 / 3)  # CCO is a training molecule
    assert 0 < r["intdiv1"] < 1 and "fcd" not in r


def test_fcd_is_zero_against_its_own_statistics_and_positive_against_others():
    a = ["CCO", "CCN", "CCC", "CCCl", "c1ccccc1", "Cc1ccccc1", "CC(=O)O", "CCOC(=O)C", "NCCO", "OCCO"]
    b = ["c1ccc2ccccc2c1", "c1ccc(cc1)-c1ccccc1", "C1CCCCC1", "C1CCNCC1", "O=C1CCCCC1", "c1ccncc1",
         "Brc1ccccc1", "Ic1ccccc1", "FC(F)(F)c1ccccc1", "c1ccoc1"]
    ref = chemnet_stats(a)
    assert fcd(a, ref) == pytest.approx(0.0, abs=1e-3)
    assert fcd(b, ref) > 1.0
    assert fcd(b, ref) == pytest.approx(frechet(chemnet_stats(b), ref), rel=1e-6)  # symmetric


def test_frechet_matches_the_closed_form_for_diagonal_gaussians():
    a = {"mu": np.array([0.0, 1.0]), "sigma": np.diag([1.0, 4.0])}
    b = {"mu": np.array([1.0, 1.0]), "sigma": np.diag([4.0, 1.0])}
    # |mu|^2 = 1; tr = 5 + 5 - 2 (sqrt(4) + sqrt(4)) = 2
    assert frechet(a, b) == pytest.approx(3.0)


def test_our_fcd_equals_fcd_torchs():
    from fcd_torch import FCD

    a = ["CCO", "CCN", "CCC", "CCCl", "c1ccccc1", "Cc1ccccc1", "CC(=O)O", "CCOC(=O)C", "NCCO", "OCCO"]
    b = ["c1ccc2ccccc2c1", "C1CCCCC1", "C1CCNCC1", "O=C1CCCCC1", "c1ccncc1", "Brc1ccccc1", "c1ccoc1", "CCCCO"]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = FCD(device="cpu", n_jobs=1)(a, b)
    assert fcd(b, chemnet_stats(a)) == pytest.approx(theirs, rel=1e-4)
