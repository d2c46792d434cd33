"""`gankit sample RUN`: what a trained run makes from noise, written or printed.

The command is shared; its flags are the tasks': each task's surface adds its own to a group of
the help (`sample_flags`) and draws its runs' samples (`sample`). A flag of another task's group
is refused in one line naming the task it belongs to."""

from __future__ import annotations

import argparse

from gankit.cli.common import err

def add(sub) -> None:
    from gankit.cli.tasks import surfaces

    s = sub.add_parser("sample", help="draw samples from a trained run",
                       description="Draw samples from a trained run: images, clips or lines, as the run's task makes "
                       "them. The flags below the common ones belong to the runs named in their group's title.")
    s.add_argument("run", metavar="RUN", help="run directory, checkpoint .pt, or exported .safetensors")
    s.add_argument("--n", type=int, help="number of samples (default: the task's)")
    s.add_argument("--seed", type=int, help="random seed (default: fresh each time)")
    s.add_argument("--no-ema", action="store_true",
                   help="sample from the raw generator instead of its EMA (runs trained with train.ema)")
    s.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    owners: dict[str, list[str]] = {}  # flag dest -> the tasks whose group added it
    for task, surface in surfaces().items():
        if not hasattr(surface, "sample_flags"):
            continue
        before = {a.dest for a in s._actions}
        surface.sample_flags(s.add_argument_group(f"{task} runs"))
        for dest in {a.dest for a in s._actions} - before:
            owners.setdefault(dest, []).append(task)
    s.set_defaults(func=cmd_sample, flag_owners=owners)


def cmd_sample(args: argparse.Namespace) -> int:
    from gankit import api
    from gankit.cli.tasks import surface, usage

    if args.n is not None and args.n < 1:
        raise err(f"--n {args.n}: expected a number of samples >= 1")
    run = api.load(args.run, device=args.device, ema=not args.no_ema)
    s = surface(run.task)
    if s is None or not hasattr(s, "sample"):
        raise err(f"gankit sample draws from runs that generate; {args.run} is a {run.task!r} run: "
                  f"{usage(run.task, args.run)}")
    given = [dest for dest, tasks in args.flag_owners.items()
             if run.task not in tasks and getattr(args, dest, None) not in (None, False)]
    if given:
        flags = ", ".join("--" + d.replace("_", "-") for d in sorted(given))
        owner = "/".join(args.flag_owners[sorted(given)[0]])
        raise err(f"{flags}: for {owner} runs; {args.run} is a {run.task!r} run (`gankit sample --help` lists "
                  "each task's flags)")
    return s.sample(args, run)
