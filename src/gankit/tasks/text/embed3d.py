"""Generated SMILES in three dimensions: a conformer per molecule, optimised by a force field, as SDF.

For each line (`embed`):
    parse       RDKit; a string that does not parse is counted "invalid SMILES"
    one piece   a SMILES of several disconnected fragments ("CCO.Cl") is counted "several fragments",
                not embedded: their relative placement would be arbitrary, and so their energy
    hydrogens   added explicitly (a conformer places every atom)
    embed       ETKDG version 3 (Wang et al. 2020) from a fixed seed; where it finds no coordinates,
                once more from random starting coordinates (RDKit's advice); else "embedding failed"
    optimise    MMFF94 (Halgren 1996) when it has parameters for every atom, else UFF (Rappe et
                al. 1992), else "no force-field parameters"; up to MAX_ITERS iterations, the
                energy (kcal/mol) after it; each molecule's SDF properties say which field, the
                energy and whether the optimisation converged

`summary` is the report: fractions parsed and embedded, failures by reason, and the MMFF94 energy
distribution (median and quartiles, in total and per heavy atom: a larger molecule has more
terms) of the molecules MMFF94 optimised; UFF energies are on another scale and only counted.
`moses_reference(n)` runs the same on a fixed sample of MOSES's test molecules (cached), the
numbers a generator's are read against.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gankit import disk
from gankit.data.molecules import chem
from gankit.errors import GankitError

MAX_ITERS = 2000  # force-field iterations; RDKit's default 200 leaves many drug-sized molecules unconverged
REASONS = ("invalid SMILES", "several fragments", "embedding failed", "no force-field parameters")


@dataclass
class Embedded:
    index: int  # the line's position among the samples
    smiles: str  # as generated
    mol: object  # RDKit molecule with hydrogens and one optimised conformer
    field: str  # "MMFF94" or "UFF"
    energy: float  # kcal/mol after optimisation
    converged: bool
    heavy_atoms: int


def embed(smiles: str, seed: int = 0, index: int = 0) -> Embedded | str:
    """One SMILES embedded and optimised, or the reason it was not (one of REASONS)."""
    from rdkit.Chem import AllChem

    Chem = chem()
    m = Chem.MolFromSmiles(smiles) if smiles else None
    if m is None or m.GetNumAtoms() == 0:
        return "invalid SMILES"
    if len(Chem.GetMolFrags(m)) > 1:
        return "several fragments"
    mh = Chem.AddHs(m)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mh, params) < 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mh, params) < 0:
            return "embedding failed"
    if AllChem.MMFFHasAllMoleculeParams(mh):
        field = "MMFF94"
        props = AllChem.MMFFGetMoleculeProperties(mh, mmffVariant="MMFF94")
        ff = AllChem.MMFFGetMoleculeForceField(mh, props)
    elif AllChem.UFFHasAllMoleculeParams(mh):
        field, ff = "UFF", AllChem.UFFGetMoleculeForceField(mh)
    else:
        return "no force-field parameters"
    ff.Initialize()
    converged = ff.Minimize(maxIts=MAX_ITERS) == 0
    return Embedded(index, smiles, mh, field, float(ff.CalcEnergy()), converged, m.GetNumHeavyAtoms())


def embed_all(lines: list[str], seed: int = 0) -> tuple[list[Embedded], Counter]:
    """Every line embedded (in order), and the failures counted by reason."""
    done, failed = [], Counter()
    for i, s in enumerate(lines):
        r = embed(s, seed, i)
        if isinstance(r, str):
            failed[r] += 1
        else:
            done.append(r)
    return done, failed


def _quartiles(x: list[float]) -> dict | None:
    if not x:
        return None
    q1, med, q3 = np.percentile(np.asarray(x), [25, 50, 75])
    return {"q1": round(float(q1), 2), "median": round(float(med), 2), "q3": round(float(q3), 2)}


def summary(n: int, done: list[Embedded], failed: Counter) -> dict:
    """The report of `n` lines: fractions, failures by reason, force fields, MMFF94 energies."""
    mmff = [e for e in done if e.field == "MMFF94"]
    return {"n": n, "parsed": round((n - failed["invalid SMILES"]) / n, 4) if n else 0.0,
            "embedded": round(len(done) / n, 4) if n else 0.0,
            "failures": {r: failed[r] for r in REASONS},
            "fields": {"MMFF94": len(mmff), "UFF": len(done) - len(mmff)},
            "converged": sum(e.converged for e in done),
            "mmff_energy": _quartiles([e.energy for e in mmff]),
            "mmff_energy_per_heavy_atom": _quartiles([e.energy / e.heavy_atoms for e in mmff])}


def sdf_text(done: list[Embedded]) -> str:
    """The molecules as one SDF: coordinates in Angstrom, hydrogens included; properties SMILES
    (as generated), sample (its index), force_field, energy_kcal_mol, converged."""
    buf = io.StringIO()
    w = chem().SDWriter(buf)
    for e in done:
        m = chem().Mol(e.mol)
        m.SetProp("_Name", f"sample_{e.index}")
        m.SetProp("SMILES", e.smiles)
        m.SetIntProp("sample", e.index)
        m.SetProp("force_field", e.field)
        m.SetDoubleProp("energy_kcal_mol", round(e.energy, 4))
        m.SetProp("converged", "yes" if e.converged else "no")
        w.write(m)
    w.close()
    return buf.getvalue()


def check_writable(path: Path) -> None:
    """Refuse, in one line and before any work, an output path that cannot be written."""
    if path.is_dir():
        raise GankitError(f"--sdf {path}: is a folder; give a file name such as {path / 'molecules.sdf'}")
    probe = path.with_name(f".{path.name}.probe")
    with disk.naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
    disk.remove(probe)


def write_sdf(lines: list[str], path: str | Path, seed: int = 0) -> dict:
    """Embed `lines`, write the embedded ones to `path` as SDF (atomically) and return the report."""
    path = Path(path)
    check_writable(path)
    done, failed = embed_all(lines, seed)
    with disk.atomic(path) as tmp:
        tmp.write_text(sdf_text(done), encoding="utf-8")
    return summary(len(lines), done, failed)


def moses_reference(n: int, seed: int = 0) -> dict:
    """`summary` of n molecules drawn (seed 0) from MOSES's test set, embedded as above; cached
    under gankit's cache folder by n, seed and RDKit's version."""
    import rdkit

    from gankit.data.corpus import moses_smiles
    from gankit.util import cache_dir, write_text_atomic

    key = cache_dir() / "moses3d" / f"test-n{n}-seed{seed}-rdkit{rdkit.__version__}.json"
    if key.is_file():
        return json.loads(key.read_text(encoding="utf-8"))
    pool = moses_smiles("test")
    sample = random.Random(0).sample(pool, min(n, len(pool)))
    r = summary(len(sample), *embed_all(sample, seed))
    r["source"] = f"{len(sample)} of MOSES's {len(pool)} test molecules (random.Random(0))"
    write_text_atomic(key, json.dumps(r, indent=1))
    return r


def report_lines(r: dict, ref: dict | None = None) -> list[str]:
    """The report as lines for a terminal."""
    n = r["n"]
    fails = ", ".join(f"{k} {v}" for k, v in r["failures"].items() if v) or "none"
    out = [f"parsed {r['parsed']:.1%} of {n}, embedded in 3-D {r['embedded']:.1%}; not embedded: {fails}",
           f"force fields: MMFF94 {r['fields']['MMFF94']}, UFF {r['fields']['UFF']} (no MMFF94 parameters); "
           f"converged in {MAX_ITERS} iterations: {r['converged']}"]

    def energy(tag: str, s: dict) -> str:
        e, a = s["mmff_energy"], s["mmff_energy_per_heavy_atom"]
        if e is None:
            return f"{tag}: no MMFF94 energies"
        return (f"{tag}: MMFF94 energy median {e['median']:.1f} kcal/mol (quartiles {e['q1']:.1f}, {e['q3']:.1f}); "
                f"per heavy atom {a['median']:.2f} ({a['q1']:.2f}, {a['q3']:.2f})")

    out.append(energy("samples", r))
    if ref is not None:
        out.append(energy(f"MOSES test ({ref['n']} molecules, embedded {ref['embedded']:.1%})", ref))
    return out
