"""The tasks' own commands and flags, reached through the registry (`gankit.tasks.TASKS`).

Each task folder has a `surface.py`, its user surface, which imports no torch at module level
(`gankit --help` reads every one). What it may define:

    USAGE            one line: how to use a trained run of this task, `{run}` standing for the
                     run directory (printed after training, shown by the report and the page)
    commands(sub)    add its own subcommands (`gankit translate`, `gankit repair`, ...)
    sample_flags(g)  add its flags of `gankit sample` to the argparse group `g`
    sample(args, run)  `gankit sample` for its runs (absent: its runs are used by USAGE instead)
    API              names of its functions that `gankit.api` offers (`gankit.api.translate`)
    SHARED_SAMPLE_FLAGS  flags of another task's `gankit sample` group that its runs also read, with
                     the same meaning (`--class` for conditional audio runs)
    RUN_COMMANDS     {command: handler(args, run) -> int}: what its runs do in a command another
                     task registers and that takes a RUN (`gankit speak RUN --digit 7` with a
                     digit-conditional audio run; the command's owner hands over, `run_command`)

Nothing here names a task: a new task's surface.py appears in `gankit --help` by its registry line.
"""

from __future__ import annotations

from types import ModuleType


def surfaces() -> dict[str, ModuleType]:
    """task name -> its surface module, in registry order (tasks without one are left out)."""
    from gankit.tasks import task_parts

    return task_parts("surface")


def surface(task: str) -> ModuleType | None:
    from gankit.tasks import task_part

    return task_part(task, "surface")


def usage(task: str, run_dir) -> str:
    """The run's task's USAGE line for `run_dir`."""
    s = surface(task)
    return s.USAGE.format(run=run_dir) if s is not None and hasattr(s, "USAGE") else f"gankit report {run_dir}"


def run_command(task: str, command: str):
    """The handler(args, run) a task's surface offers for its runs in `command`, a command another
    task registers (its RUN_COMMANDS), or None."""
    s = surface(task)
    return getattr(s, "RUN_COMMANDS", {}).get(command) if s is not None else None
