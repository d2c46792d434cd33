"""The text task's user surface: its `gankit sample` flags (temperature, topic, prefix, the
lines to a file or, for SMILES runs, a CSV). No torch at import: `gankit --help` reads this file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gankit.cli.common import err

USAGE = "gankit sample {run} --n 20 --temperature 0.8"


def sample_flags(g) -> None:
    g.add_argument("--temperature", type=float, metavar="T",
                   help="softmax temperature (default 1: the model's distribution; lower: safer lines)")
    g.add_argument("--topic", metavar="NAME|K", help="topic-conditional runs: lines of this topic only")
    g.add_argument("--prefix", metavar="TEXT", help="every line starts with TEXT")
    g.add_argument("--txt", metavar="FILE", help="write the lines to FILE (UTF-8) instead of printing them (default "
                   "20 lines)")
    g.add_argument("--smiles", metavar="CSV", help="SMILES runs: write the molecules to CSV (columns SMILES, valid)")


def sample(args: argparse.Namespace, run) -> int:
    from gankit.tasks.text.infer import sample_text
    from gankit.util import write_text_atomic

    lines = sample_text(run, 20 if args.n is None else args.n,
                        1.0 if args.temperature is None else args.temperature, args.seed, args.topic, args.prefix)
    if args.smiles:
        from gankit.data.molecules import is_valid

        if run.config.text.kind != "smiles":
            raise err(f"--smiles: {args.run} was trained on text, not SMILES (text.kind {run.config.text.kind}); "
                      "use --txt")
        ok = [is_valid(ln) for ln in lines]  # SMILES have no commas or quotes: plain CSV
        write_text_atomic(Path(args.smiles), "SMILES,valid\n" + "".join(f"{ln},{int(v)}\n" for ln, v in zip(lines, ok)))
        print(f"{args.smiles} ({len(lines)} molecules, {sum(ok)} valid)")
    if args.txt:
        write_text_atomic(Path(args.txt), "".join(ln + "\n" for ln in lines))
        print(f"{args.txt} ({len(lines)} lines)")
    elif not args.smiles:
        for ln in lines:
            print(ln)
    return 0
