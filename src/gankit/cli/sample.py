"""`gankit sample RUN`: what a trained run makes from noise, written or printed.

The command is shared; its flags are the tasks': each task's surface adds its own to a group of
the help (`sample_flags`) and draws its runs' samples (`sample`). A flag of another task's group
is refused in one line naming the task it belongs to, unless the run's task lists the flag in its
surface's SHARED_SAMPLE_FLAGS (one flag, one meaning: `--class K` picks a conditional run's class
for generation and audio runs alike)."""

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
    owners: dict[str, tuple[str, str]] = {}  # flag dest -> (the task whose group added it, the flag)
    for task, surface in surfaces().items():
        if hasattr(surface, "sample_flags"):
            group = s.add_argument_group(f"{task} runs")
            surface.sample_flags(group)  # a flag two tasks both add is argparse's conflict error
            owners.update({a.dest: (task, a.option_strings[0]) for a in group._group_actions})
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
    shared = getattr(s, "SHARED_SAMPLE_FLAGS", ())  # other tasks' flags its runs also read (audio: --class)
    given = [(task, flag) for dest, (task, flag) in args.flag_owners.items()
             if task != run.task and flag not in shared and getattr(args, dest, None) not in (None, False)]
    if given:
        raise err(f"{', '.join(flag for _, flag in given)}: for {given[0][0]} runs; {args.run} is a {run.task!r} run "
                  "(`gankit sample --help` lists each task's flags)")
    return s.sample(args, run)
