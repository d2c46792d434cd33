"""MOSES's metrics of generated molecules (Polykovskiy et al. 2020), for SMILES runs.

    valid      fraction of samples RDKit parses into a molecule
    unique@k   distinct canonical SMILES among the first k valid samples, over k
    novelty    distinct valid samples not in MOSES's training set (or the run's training lines),
               over the distinct valid samples
    intdiv1    internal diversity: 1 - the mean Tanimoto similarity of Morgan fingerprints (radius
               2, 1,024 bits) over all pairs of valid samples, self-pairs included, as MOSES
    fcd        Frechet ChemNet Distance of the valid samples' ChemNet activations to the reference's
               (ChemNet and its SMILES tokeniser from fcd_torch, whose wheel ships the weights, so
               FCD runs offline; the distance computed here); against
               MOSES's test set through the statistics MOSES precomputed and ships
               (moses/dataset/data/test_stats.npz)

As in MOSES's `get_all_metrics`, invalid samples count against `valid` only; the other metrics
are of the valid, canonicalised samples. FCD is biased upward at small sample counts (a 512 x 512
covariance): compare numbers at the same n, which the protocol records; MOSES reports 30,000.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from gankit.data.molecules import chem, mol
from gankit.errors import GankitError


def fingerprints(mols) -> np.ndarray:
    """(N, 1024) bool Morgan fingerprints, radius 2."""
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    return np.stack([gen.GetFingerprintAsNumPy(m).astype(bool) for m in mols]) if mols else np.zeros((0, 1024), bool)


def internal_diversity(fps: np.ndarray, block: int = 2048) -> float:
    """1 - mean Tanimoto similarity over all ordered pairs of rows of `fps` (self-pairs included)."""
    x = fps.astype(np.float32)
    counts = x.sum(1)
    total = 0.0
    for i in range(0, len(x), block):
        inter = x[i:i + block] @ x.T  # (b, N) common bits
        union = counts[i:i + block, None] + counts[None, :] - inter
        total += float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).sum())  # two empty prints: equal
    return 1.0 - total / (len(x) ** 2)


@lru_cache(maxsize=2)
def _chemnet(device: str):
    try:
        import fcd_torch
        from fcd_torch.utils import load_imported_model
    except ImportError:
        raise GankitError("the FCD needs fcd_torch: pip install fcd_torch (make installs it)") from None
    path = Path(fcd_torch.__file__).parent / "ChemNet_v0.13_pretrained.pt"  # shipped in the wheel
    model = load_imported_model(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval().to(device)


def chemnet_activations(smiles: list[str], device: str = "cpu", batch: int = 512) -> np.ndarray:
    """(N, 512) ChemNet activations of `smiles` (canonicalised and tokenised by fcd_torch, as FCD's
    reference implementation)."""
    from fcd_torch.utils import SmilesDataset
    from torch.utils.data import DataLoader

    model = _chemnet(str(device))
    out = []
    with torch.no_grad():
        for x in DataLoader(SmilesDataset(smiles, canonize=True), batch_size=batch):
            out.append(model(x.transpose(1, 2).float().to(device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 512))


def chemnet_stats(smiles: list[str], device: str = "cpu") -> dict:
    """{"mu", "sigma"} of the ChemNet activations: what MOSES's test_stats.npz holds for its test set."""
    if len(smiles) < 2:
        raise GankitError(f"the FCD needs at least 2 molecules ({len(smiles)} given)")
    act = chemnet_activations(smiles, device)
    return {"mu": act.mean(0), "sigma": np.cov(act.T)}


def frechet(a: dict, b: dict) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)): the Frechet distance of two Gaussians."""
    from scipy import linalg

    covmean = linalg.sqrtm(a["sigma"] @ b["sigma"])
    if not np.isfinite(covmean).all():  # nearly singular product: offset the diagonals, as FID does
        off = np.eye(len(a["sigma"])) * 1e-6
        covmean = linalg.sqrtm((a["sigma"] + off) @ (b["sigma"] + off))
    diff = a["mu"] - b["mu"]
    return float(diff @ diff + np.trace(a["sigma"]) + np.trace(b["sigma"]) - 2 * np.trace(covmean.real))


def moses_test_fcd_stats() -> dict:
    """MOSES's precomputed ChemNet statistics of its test set: {"mu": (512,), "sigma": (512, 512)}."""
    from gankit.data.corpus import moses_dir

    return np.load(moses_dir() / "test_stats.npz", allow_pickle=True)["stats"].item()["FCD"]


def fcd(valid: list[str], ref: dict, device: str = "cpu") -> float:
    return frechet(ref, chemnet_stats(valid, device)) if len(valid) >= 2 else float("nan")


def moses_scores(samples: list[str], train: set[str] | None, fcd_ref: dict | None, device: str = "cpu",
                 ks: tuple[int, ...] = (1000, 10_000)) -> dict:
    """The metrics above for `samples` (SMILES strings), novelty against `train` (canonical
    SMILES; None: not scored), FCD against `fcd_ref` ({mu, sigma}; None: not scored)."""
    if not samples:
        raise GankitError("no samples to score")
    mols = [mol(s) for s in samples]
    good = [m for m in mols if m is not None]
    valid = [chem().MolToSmiles(m) for m in good]
    r: dict = {"valid": len(valid) / len(samples), "n_valid": len(valid)}
    for k in ks:
        if len(valid) >= min(k, len(samples)):  # MOSES warns when fewer than k are valid; we leave it out
            head = valid[:k]
            r[f"unique@{k // 1000}k" if k >= 1000 else f"unique@{k}"] = len(set(head)) / max(len(head), 1)
    if valid:
        distinct = set(valid)
        if train is not None:
            r["novelty"] = len(distinct - train) / len(distinct)
        r["intdiv1"] = internal_diversity(fingerprints(good))
        if fcd_ref is not None:
            r["fcd"] = fcd(valid, fcd_ref, device)
    return r


# ---- molecular properties, the objectives a SMILES run can be trained toward ----------------------
#   qed    quantitative estimate of drug-likeness (Bickerton et al. 2012), RDKit's QED.qed: in [0, 1]
#   logp   Wildman-Crippen logP (RDKit's Crippen.MolLogP), unbounded; higher: more lipophilic
#   sa     synthetic accessibility (Ertl & Schuffenhauer 2009) from RDKit's Contrib sascorer, which
#          the rdkit wheel ships with its fragment scores: 1 (easy) to 10 (hard)
# A reward must lie in [0, 1] to mix with D's probability, so `property_reward` maps each as ORGAN's
# and MolGAN's code do: logP linearly from [-2.12, 6.04] (the range they clip to) onto [0, 1],
# SA from [5, 1.5] onto [0, 1] (easy is high), both clipped; QED as it is; invalid molecules 0.

PROPERTIES = ("qed", "logp", "sa")
LOGP_RANGE = (-2.12178879609, 6.0429063424)
SA_RANGE = (5.0, 1.5)  # the SA score mapped to reward 0, and to reward 1


@lru_cache(maxsize=1)
def _sascorer():
    import importlib.util
    import os

    from rdkit import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.isfile(path):
        raise GankitError(f"the SA score needs RDKit's Contrib sascorer, which this rdkit install lacks ({path}); "
                          "use text.objective qed or logp")
    spec = importlib.util.spec_from_file_location("gankit_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def molecule_property(m, name: str) -> float:
    """The raw property `name` (qed, logp, sa) of the RDKit molecule `m`."""
    if name == "qed":
        from rdkit.Chem import QED

        return float(QED.qed(m))
    if name == "logp":
        from rdkit.Chem import Crippen

        return float(Crippen.MolLogP(m))
    if name == "sa":
        return float(_sascorer().calculateScore(m))
    raise GankitError(f"molecular property {name!r}: expected one of {', '.join(PROPERTIES)}")


def property_reward(value: float | None, name: str) -> float:
    """The raw property mapped onto the [0, 1] reward (None, an invalid molecule: 0)."""
    if value is None:
        return 0.0
    lo, hi = {"qed": (0.0, 1.0), "logp": LOGP_RANGE, "sa": SA_RANGE}[name]
    return float(min(max((value - lo) / (hi - lo), 0.0), 1.0))
