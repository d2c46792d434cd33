"""ORGAN with a property objective against CharRNN sampled as is and CharRNN filtered to the same
property, and the 3-D embedding of each model's samples beside MOSES test molecules.

    # the two runs (CharRNN by MLE; ORGAN from its weights: D pretrained, then REINFORCE on D + QED)
    OMP_NUM_THREADS=1 .venv/bin/python -m gankit train --preset charrnn --out runs/mp-charrnn \\
        --set train.steps=1000
    OMP_NUM_THREADS=1 .venv/bin/python -m gankit train --preset organ-qed --out runs/mp-organ-qed \\
        --set train.init=runs/mp-charrnn --set text.pretrain_steps=0 --set text.rollout_every=16 \\
        --set train.steps=2100
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/molecules_property.py --charrnn runs/mp-charrnn \\
        --organ runs/mp-organ-qed --n 3000 --embed 300 --json benchmarks/results/molecules-property.json
    # or the CharRNN and MOSES rows first, while ORGAN trains, then the rest:
    #   ... --charrnn runs/mp-charrnn --property qed --n 3000 --embed 300 --json part.json
    #   ... --charrnn runs/mp-charrnn --organ runs/mp-organ-qed --reuse part.json --n 3000 --embed 300 --json ...
    .venv/bin/python benchmarks/molecules_property.py --table benchmarks/results/molecules-property.json

Rows, each from --n samples at temperature 1 (seed 0):
    charrnn             CharRNN's samples as they come
    charrnn, filtered   CharRNN's samples (seeds 1, 2, ...) kept only when valid and their property
                        reaches the ORGAN row's mean (the threshold), until --n are kept or
                        --max-draw x --n are drawn; `kept` is the fraction of draws kept, the price
    organ               the ORGAN run's samples as they come
Columns: valid (of the samples), unique (distinct canonical / valid), novelty (distinct not in
MOSES's training set / distinct), the mean raw property (QED, logP or SA) of the valid, unique,
novel molecules, and FCD against MOSES's test statistics (`gankit.metrics.molecules`) of the
valid samples (biased upward at small n: compare rows at the same n only).

3-D: the first --embed samples of each model and --embed MOSES test molecules through
`gankit.tasks.text.embed3d` (ETKDGv3 seed 0, MMFF94 else UFF, 2,000 iterations): fractions
parsed and embedded, failures by reason, MMFF94 energies (quartiles, kcal/mol; and per heavy
atom), and the seconds per embedded molecule (a timing: re-run alone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gankit
from gankit.data.corpus import moses_smiles
from gankit.data.molecules import mol
from gankit.metrics.molecules import fcd, molecule_property, moses_test_fcd_stats
from gankit.tasks.text.embed3d import embed_all, summary
from gankit.tasks.text.infer import sample_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine, training_seconds  # noqa: E402


def scores(samples: list[str], prop: str, train: set[str], ref: dict) -> dict:
    """valid, unique, novelty, the mean property of the valid unique novel molecules, FCD/Test."""
    Chem = __import__("rdkit.Chem", fromlist=["Chem"])
    mols = {}
    valid = []
    for s in samples:
        m = mol(s)
        if m is not None:
            c = Chem.MolToSmiles(m)
            valid.append(c)
            mols.setdefault(c, m)
    distinct = set(valid)
    novel = [c for c in distinct if c not in train]
    values = [molecule_property(mols[c], prop) for c in novel]
    return {"n": len(samples), "valid": len(valid) / max(len(samples), 1), "unique": len(distinct) / max(len(valid), 1),
            "novelty": len(novel) / max(len(distinct), 1), "n_scored": len(novel),
            f"mean_{prop}": sum(values) / len(values) if values else float("nan"), "fcd": fcd(valid, ref)}


def filtered(run, n: int, prop: str, threshold: float, max_draw: int, higher: bool) -> tuple[list[str], float]:
    """CharRNN's valid samples whose property reaches `threshold` (above it; below for SA, where
    lower is easier), drawn in batches of n from seeds 1, 2, ...; and the fraction of draws kept."""
    kept, drawn, seed = [], 0, 1
    while len(kept) < n and drawn < max_draw * n:
        for s in sample_text(run, n, 1.0, seed):
            m = mol(s)
            if m is not None and len(kept) < n:
                v = molecule_property(m, prop)
                if (v >= threshold) if higher else (v <= threshold):
                    kept.append(s)
        drawn, seed = drawn + n, seed + 1
    return kept, len(kept) / drawn


def embedding(lines: list[str]) -> dict:
    t0 = time.perf_counter()
    done, failed = embed_all(lines, 0)
    r = summary(len(lines), done, failed)
    r["seconds_per_molecule"] = (time.perf_counter() - t0) / max(len(lines), 1)
    return r


def measure(args) -> dict:
    """Every row; with --reuse, the CharRNN and MOSES rows of an earlier call on the same
    CharRNN run, --n, --embed and --property (measured while the ORGAN run trained)."""
    cr = gankit.load(args.charrnn)
    organ = gankit.load(args.organ) if args.organ else None
    prop = organ.config.text.objective if organ else args.property
    if prop == "none":
        sys.exit(f"{args.organ}: trained without text.objective; nothing to compare")
    higher = prop != "sa"
    train, ref = set(moses_smiles("train")), moses_test_fcd_stats()
    a = sample_text(cr, args.n, 1.0, 0)
    old = json.loads(Path(args.reuse).read_text()) if args.reuse else None
    if old and (old["property"], old["n"], old["embed"], old["runs"]["charrnn"]["step"]) != \
            (prop, args.n, args.embed, cr.step):
        sys.exit(f"--reuse {args.reuse}: measured with another property, --n, --embed or CharRNN step")
    rows = {"charrnn": old["rows"]["charrnn"] if old else scores(a, prop, train, ref)}
    three_d = {"MOSES test": old["embedding"]["MOSES test"]} if old else {}
    if not old:
        pool = moses_smiles("test")
        three_d["MOSES test"] = embedding(__import__("random").Random(0).sample(pool, args.embed))
    three_d["charrnn"] = old["embedding"]["charrnn"] if old else embedding(a[:args.embed])
    runs = {"charrnn": cr}
    if organ is not None:
        c = sample_text(organ, args.n, 1.0, 0)
        rows["organ"] = scores(c, prop, train, ref)
        threshold = rows["organ"][f"mean_{prop}"]
        b, kept = filtered(cr, args.n, prop, threshold, args.max_draw, higher)
        rows["charrnn, filtered"] = {**scores(b, prop, train, ref), "kept": kept, "threshold": threshold}
        three_d["organ"] = embedding(c[:args.embed])
        runs["organ"] = organ
    return {"property": prop, "n": args.n, "embed": args.embed, "rows": rows, "embedding": three_d,
            "runs": {k: {"dir": str(r.dir), "step": r.step, "train_seconds": training_seconds(r.dir),
                         "config": {k2: getattr(r.config.text, k2) for k2 in
                                    ("method", "pretrain_steps", "d_pretrain_steps", "d_pretrain_lr", "objective",
                                     "objective_weight", "adv_lr", "rollouts", "rollout_every")}}
                     for k, r in runs.items()},
            "machine": machine(), "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d")}


def composition(lines: list[str]) -> dict:
    """What the valid molecules are made of: the share with an aromatic ring, mean heavy atoms, and
    the share of characters that are aromatic carbons `c` (over all lines)."""
    ms = [m for m in map(mol, lines) if m is not None]
    return {"valid": len(ms), "aromatic_ring": sum(any(a.GetIsAromatic() for a in m.GetAtoms()) for m in ms) / len(ms),
            "heavy_atoms": sum(m.GetNumHeavyAtoms() for m in ms) / len(ms),
            "c_chars": sum(x.count("c") for x in lines) / max(sum(map(len, lines)), 1)}


def table(path: str) -> str:
    r = json.loads(Path(path).read_text())
    p = r["property"]
    out = [f"| model | samples | kept | valid | unique | novelty | mean {p} (valid unique novel) | FCD/Test |",
           "|---|---|---|---|---|---|---|---|"]
    for name, s in r["rows"].items():
        kept = f"{s['kept']:.3f}" if "kept" in s else ""
        out.append(f"| {name} | {s['n']} | {kept} | {s['valid']:.3f} | {s['unique']:.3f} | {s['novelty']:.3f} | "
                   f"{s[f'mean_{p}']:.3f} | {s['fcd']:.2f} |")
    out += ["", "| molecules | n | parsed | embedded | failures | MMFF94 / UFF | MMFF94 energy, kcal/mol: median (q1, q3) "
            "| per heavy atom | s / molecule |", "|---|---|---|---|---|---|---|---|---|"]
    for name, e in r["embedding"].items():
        fails = ", ".join(f"{k} {v}" for k, v in e["failures"].items() if v) or "none"
        en, pa = e["mmff_energy"], e["mmff_energy_per_heavy_atom"]
        energy = "none" if en is None else f"{en['median']:.1f} ({en['q1']:.1f}, {en['q3']:.1f})"
        per_atom = "none" if pa is None else f"{pa['median']:.2f} ({pa['q1']:.2f}, {pa['q3']:.2f})"
        out.append(f"| {name} | {e['n']} | {e['parsed']:.3f} | {e['embedded']:.3f} | {fails} | "
                   f"{e['fields']['MMFF94']} / {e['fields']['UFF']} | {energy} | {per_atom} | "
                   f"{e['seconds_per_molecule']:.3f} |")
    m = r["machine"]
    out += ["", f"Machine: {m['cpu']}, torch {m['torch']} ({m['cpu_capability']}), {m['threads']} threads."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--charrnn", help="a trained CharRNN run (preset charrnn)")
    ap.add_argument("--organ", help="an ORGAN run trained with text.objective (preset organ-qed)")
    ap.add_argument("--n", type=int, default=3000, help="samples per row")
    ap.add_argument("--max-draw", type=int, default=10, help="filtered row: at most this many x --n drawn")
    ap.add_argument("--embed", type=int, default=300, help="molecules embedded in 3-D per model")
    ap.add_argument("--property", default="qed", choices=("qed", "logp", "sa"),
                    help="without --organ: the property of the CharRNN row (with it: the ORGAN run's objective)")
    ap.add_argument("--reuse", metavar="JSON", help="take the CharRNN and MOSES rows from this earlier result")
    ap.add_argument("--composition", nargs="+", metavar="RUN",
                    help="print the composition of 2,000 samples (seed 0) of each RUN and of MOSES test molecules")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--table", help="print a results JSON as Markdown tables")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    if args.composition:
        for run in args.composition:
            print(run, composition(sample_text(gankit.load(run), 2000, 1.0, 0)))
        print("MOSES test", composition(moses_smiles("test")[:2000]))
        return
    if not args.charrnn:
        ap.error("--charrnn is needed (or --table)")
    r = measure(args)
    text = json.dumps(r, indent=1)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
