"""The text task's user surface: its `gankit sample` flags (temperature, topic, prefix, the
lines to a file or, for SMILES runs, a CSV or an SDF of 3-D conformers), and its Python API
(`gankit.api.sample_sdf`). No torch at import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import err

USAGE = "gankit sample {run} --n 20 --temperature 0.8"
API = ("sample_sdf",)


def sample_flags(g) -> None:
    g.add_argument("--temperature", type=float, metavar="T",
                   help="softmax temperature (default 1: the model's distribution; lower: safer lines)")
    g.add_argument("--topic", metavar="NAME|K", help="topic-conditional runs: lines of this topic only")
    g.add_argument("--prefix", metavar="TEXT", help="every line starts with TEXT")
    g.add_argument("--txt", metavar="FILE", help="write the lines to FILE (UTF-8) instead of printing them (default "
                   "20 lines)")
    g.add_argument("--smiles", metavar="CSV", help="SMILES runs: write the molecules to CSV (columns SMILES, valid)")
    g.add_argument("--sdf", metavar="FILE", help="SMILES runs: embed each valid molecule in 3-D (RDKit ETKDGv3, "
                   "hydrogens added, MMFF94 or else UFF optimisation) and write them to FILE as SDF; prints the "
                   "fractions parsed and embedded, failures by reason, and the MMFF94 energies beside MOSES test "
                   "molecules'")
    g.add_argument("--sdf-ref", type=int, metavar="N", help="--sdf: MOSES test molecules embedded for the "
                   "comparison (default 100, cached; 0: none)")


def sample(args: argparse.Namespace, run) -> int:
    from gankit.tasks.text.infer import sample_text
    from gankit.util import write_text_atomic

    for flag in ("smiles", "sdf"):
        if getattr(args, flag) and run.config.text.kind != "smiles":
            raise err(f"--{flag}: {args.run} was trained on text, not SMILES (text.kind {run.config.text.kind}); "
                      "use --txt")
    if args.sdf_ref is not None and (args.sdf_ref < 0 or not args.sdf):
        raise err(f"--sdf-ref {args.sdf_ref}: expected a number of molecules >= 0, with --sdf")
    if args.sdf:
        from gankit.tasks.text.embed3d import check_writable

        check_writable(Path(args.sdf))  # before sampling and embedding, which take a while
    lines = sample_text(run, 20 if args.n is None else args.n,
                        1.0 if args.temperature is None else args.temperature, args.seed, args.topic, args.prefix)
    if args.sdf:
        from gankit.tasks.text.embed3d import moses_reference, report_lines, write_sdf

        r = write_sdf(lines, args.sdf, 0 if args.seed is None else args.seed)
        n_ref = 100 if args.sdf_ref is None else args.sdf_ref
        ref = moses_reference(n_ref) if n_ref else None
        print(f"{args.sdf} ({len(lines)} samples, {round(r['embedded'] * len(lines))} molecules in 3-D)")
        for ln in report_lines(r, ref):
            print(f"  {ln}")
    if args.smiles:
        from gankit.data.molecules import is_valid

        ok = [is_valid(ln) for ln in lines]  # SMILES have no commas or quotes: plain CSV
        write_text_atomic(Path(args.smiles), "SMILES,valid\n" + "".join(f"{ln},{int(v)}\n" for ln, v in zip(lines, ok)))
        print(f"{args.smiles} ({len(lines)} molecules, {sum(ok)} valid)")
    if args.txt:
        write_text_atomic(Path(args.txt), "".join(ln + "\n" for ln in lines))
        print(f"{args.txt} ({len(lines)} lines)")
    elif not (args.smiles or args.sdf):
        for ln in lines:
            print(ln)
    return 0


# -- the Python API (gankit.api.sample_sdf) ---------------------------------------------------------

def sample_sdf(run_path: str | Path, out: str | Path, n: int = 100, temperature: float = 1.0, seed: int = 0,
               ref: int = 100, device: str = "cpu", ema: bool = True) -> dict:
    """n molecules from a SMILES run embedded in 3-D and written to `out` as SDF
    (`gankit.tasks.text.embed3d`); returns the report, with the MOSES test molecules' under "ref"
    (`ref` of them; 0: none)."""
    from gankit.api import load
    from gankit.errors import GankitError
    from gankit.tasks.text.embed3d import check_writable, moses_reference, write_sdf
    from gankit.tasks.text.infer import sample_text

    run = load(run_path, device=device, ema=ema)
    run.need("text", "3-D molecules")
    if run.config.text.kind != "smiles":
        raise GankitError(f"{run_path}: trained on text, not SMILES (text.kind {run.config.text.kind}); no molecules "
                          "to embed")
    check_writable(Path(out))
    r = write_sdf(sample_text(run, n, temperature, seed), out, seed)
    if ref:
        r["ref"] = moses_reference(ref)
    return r
