"""The `gankit` command: a thin layer over the Python API.

    gankit train --preset seed-mlp --data mnist --steps 2000 --out runs/mnist
    gankit sample runs/mnist --n 64 --out grid.png
    gankit presets
    gankit data info mnist

A user's mistake prints one line, ``gankit: error: ...``, and exits with status 2; so does a
write the machine refuses (a full disk, a read-only folder: ``gankit: error: cannot write PATH: WHY``).

The commands live in groups, each module adding its subparsers (`add(sub)`) with their handlers:

    train      train (--resume, --nproc)
    sample     sample: the shared command; its flags and handlers are the tasks'
    tasks      each task's own commands (translate, repair, project, ...), from the task folders'
               surface.py through the registry (`gankit.cli.tasks`)
    evaluate   eval, features train, bench, augment-eval
    tools      report, serve, export, presets, data info
    dataset    dataset: a folder, zip, .npz or video made into a dataset zip
    common     what they share: flags, overrides, the command line, the end-of-run summary, err
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from gankit.errors import GankitError

    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from gankit.threads import apply_cpu_budget

    apply_cpu_budget()  # no more threads than the CPUs (or the container's quota) this process gets
    try:
        return args.func(args) or 0
    except GankitError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a write the machine refused where no writer said so: one line too
        from gankit.disk import error

        refused = error(e, getattr(e, "filename", None) or getattr(args, "out", None) or getattr(args, "resume", None)
                        or "the output")
        if refused is None:
            raise  # our bug: the traceback is for us
        print(f"gankit: error: {refused}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    from gankit.cli import dataset, evaluate, sample, tools, train
    from gankit.cli.tasks import surfaces
    from gankit.version import __version__

    p = argparse.ArgumentParser(prog="gankit", description="Train, evaluate and apply GANs.")
    p.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")
    train.add(sub)
    sample.add(sub)
    for surface in surfaces().values():
        if hasattr(surface, "commands"):
            surface.commands(sub)
    for group in (evaluate, tools, dataset):
        group.add(sub)
    return p


if __name__ == "__main__":
    sys.exit(main())
