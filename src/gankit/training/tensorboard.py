"""TensorBoard event files of a run (`log.tensorboard`), in RUN/tensorboard/, written by rank 0.

What they hold, fed by `gankit.training.artifacts.Artifacts` (docs/ecosystem-tensorboard.md):
    scalars      every number of every metrics.jsonl row, under its own key (loss_d, lr_g,
                 steps_per_s ...); an evaluation row's (`"eval": true`) under eval/KEY, nested
                 scores as eval/KEY/INNER; a row's `step` is the events' step, its `time` their
                 wall time
    samples      the task's grid at its step: the PNG in samples/, read back (no task code)
    data         data.png, once
    evaluation   each evaluation row as text, its protocol included
    config       the resolved config as YAML text, once per training call (at step 0, or at the
                 first step a resumed call trains), and its values as hparams at step 0
                 (TensorBoard's HPARAMS tab; without the sections of the other tasks)

Each training call opens a new event file. A resumed run (or one rolled back after non-finite
updates) opens it with purge_step = the step after its checkpoint: TensorBoard then hides what
the abandoned steps wrote, as metrics.jsonl forgets their rows (`Artifacts.forget_after`). Events
are flushed at every checkpoint and on close; a crash loses at most what came after the last
flush (TensorBoard reads a file up to a truncated last record).
"""

from __future__ import annotations

import atexit
import importlib
import json
import re
import threading
import time
from pathlib import Path

import yaml

from gankit import disk
from gankit.errors import GankitError
from gankit.tasks import TASKS

INSTALL = "pip install 'gankit[tensorboard]' (or pip install tensorboard)"


def missing() -> str | None:
    """Why event files cannot be written here (the tensorboard package does not import), or None."""
    try:
        importlib.import_module("torch.utils.tensorboard")  # ImportError without the tensorboard package
    except ImportError as e:
        return f"the tensorboard package does not import ({e})".replace("\n", " ")
    return None


def check(setting) -> None:
    """log.tensorboard=true where the package is missing: the user's mistake, said before the run starts."""
    if setting is True and (why := missing()):
        raise GankitError(f"log.tensorboard=true: {why}; {INSTALL}, or set log.tensorboard=auto (on only where "
                          "it is installed) or false")


def _hparams(d: dict, prefix: str = "") -> dict:
    """The config flattened to dotted keys with the values TensorBoard's hparams take (number,
    string, bool); lists as their YAML text, null as "null"."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_hparams(v, key + "."))
        elif v is None:
            out[key] = "null"
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = yaml.safe_dump(v, default_flow_style=True).strip()
    return out


def scalars(row: dict) -> dict[str, float]:
    """The scalars of one metrics.jsonl row, by their TensorBoard tag (see the module docstring)."""
    prefix = "eval/" if row.get("eval") is True else ""
    out: dict[str, float] = {}

    def add(d: dict, at: str) -> None:
        for k, v in d.items():
            if k in ("step", "time", "eval", "protocol") and not at:
                continue
            if isinstance(v, dict):
                add(v, f"{at}{k}/")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{prefix}{at}{k}"] = float(v)

    add(row, "")
    return out


def _hush_writer_thread() -> None:
    """TensorBoard writes events from a thread of its own, which dies on a write the machine
    refuses (a full disk) and has Python print its traceback; the same error reaches the run at
    its next event, where `Artifacts` says it in one line. This hook drops that traceback alone:
    any other thread's exception goes on to the hook that was there."""
    previous = threading.excepthook
    if getattr(previous, "_gankit_tensorboard", False):
        return

    def hook(args):
        if not (type(args.thread).__module__ == "tensorboard.summary.writer.event_file_writer"
                and disk.reason(args.exc_value, ".") is not None):
            previous(args)

    hook._gankit_tensorboard = True
    threading.excepthook = hook


class Board:
    """One training call's event file in `dir`, from `step` on. Every method may raise what the
    machine says (a full disk): the caller (`Artifacts`) warns once and drops the board."""

    def __init__(self, dir: Path, step: int, config: dict):
        self.dir = dir
        self.writer = self._open(step)
        if step == 0:  # a run's start: its settings, for the HPARAMS tab (once: resumes keep them)
            from torch.utils.tensorboard.summary import hparams

            # the sections named after another task are its own settings, unused by this run
            mine = {k: v for k, v in config.items() if k not in set(TASKS) - {config.get("task")}}
            _, start, _ = hparams(_hparams(mine), {})  # no experiment summary: TensorBoard infers one
            self.writer.file_writer.add_summary(start)
        # at the first step this call writes (where a later resume's purge starts): a call that is
        # abandoned takes its config with it
        self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```",
                             step + 1 if step else 0)
        # a run ended by an error is not closed by the loop: its last events go to disk at exit
        atexit.register(self.close)

    def _open(self, step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.dir.mkdir(parents=True, exist_ok=True)
        _hush_writer_thread()
        stamps = [int(m.group(1)) for p in self.dir.glob("events.out.tfevents.*")
                  if (m := re.match(r"events\.out\.tfevents\.(\d+)\.", p.name))]
        # TensorBoard reads a folder's event files in name order, which starts with the second the
        # file was opened: a new file must not share the second of an older one, or its purge
        # could be read before the events it hides (only a run resumed within a second: tests).
        if stamps and time.time() < max(stamps) + 1:
            time.sleep(max(stamps) + 1.01 - time.time())
        # purge_step: events at steps >= it in the older files are the abandoned steps' (resume,
        # rollback); a run starting again from step 0 redoes step 0's grid, so it purges from 0.
        # Every file gets one, a fresh run's too: TensorBoard takes the first it reads for the
        # session's start, and only those after it for restarts.
        return SummaryWriter(str(self.dir), purge_step=step + 1 if step else 0, flush_secs=60)

    def log(self, row: dict) -> None:
        step, wall = row["step"], row.get("time")
        for tag, v in scalars(row).items():
            self.writer.add_scalar(tag, v, step, walltime=wall)
        if row.get("eval") is True:
            self.writer.add_text("evaluation", "```\n" + json.dumps(row, indent=2) + "\n```", step, walltime=wall)

    def image(self, tag: str, path: Path, step: int) -> None:
        """The PNG at `path` (a grid the task wrote) as image `tag` at `step`: its bytes as they
        are (TensorBoard stores images PNG-encoded), not decoded and encoded again."""
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        with Image.open(path) as im:  # the header only: size and mode
            w, h, channels = im.width, im.height, len(im.getbands())
        image = Summary.Image(height=h, width=w, colorspace=channels, encoded_image_string=path.read_bytes())
        self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def rewind(self, step: int) -> None:
        """After a rollback to `step`: a new file whose purge hides the steps after it."""
        self.writer.close()
        self.writer = self._open(step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        atexit.unregister(self.close)
        self.writer.close()

    def drop(self) -> None:
        """Give up a writer the machine refused: closing it would only raise that refusal again."""
        atexit.unregister(self.close)
