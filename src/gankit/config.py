"""The run configuration: typed, frozen dataclasses, and the one loader that builds them.

A config comes from a preset (``src/gankit/presets/NAME.yaml``) or a YAML file, plus dotted
``--set section.key=value`` overrides. Unknown keys, wrong types, invalid choices and values out
of range are rejected with a one-line `GankitError` that names the key and lists what is accepted.
The resolved config is written to every run directory and checkpoint (`to_dict`).

This module owns the sections every task shares (`data`, `train`, `eval`, `recover`, `log`, and
`preset`, `task`, `seed`, `device`) and the loader. Each task owns its own sections, their
ranges and their cross-field rules in its folder's ``config.py`` (`gankit.tasks`):

    SECTIONS = {"mytask": MyTaskConfig}     # section name -> frozen dataclass, in order
    def check(cfg, origin): ...             # optional: rules across fields, one-line errors

`RunConfig` is composed from the shared sections and every registered task's `SECTIONS`, so a
saved config of any task carries every section and ``cfg.mytask.key`` works everywhere. A
field's valid range sits beside it: ``steps: int = ranged(469, lambda v: v >= 0, "an integer >= 0")``.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from gankit.errors import GankitError
from gankit.tasks import TASKS, task_part


def ranged(default: Any, ok: Callable[[Any], bool], accepted: str) -> Any:
    """A config field with a default and its valid range: `ok(value)` is true for a valid value,
    `accepted` says which values are (the loader's error message: "expected {accepted}")."""
    return field(default=default, metadata={"range": (ok, accepted)})


_EVAL_METRICS = ("fid", "kid", "is", "pr", "dc", "classes", "stacked")  # gankit.metrics.evaluate.METRICS


def _metric_names(v: str) -> set[str]:
    return set(filter(None, v.replace(" ", "").split(",")))


@dataclass(frozen=True)
class DataConfig:
    source: str = "mnist"  # a name (`gankit data info --help` lists them) or a path
    # square side the images are resized to at load; None: native
    resolution: int | None = ranged(None, lambda v: v is None or 4 <= v <= 1024, "4 to 1024, or null")
    channels: int | None = ranged(None, lambda v: v in (None, 1, 3), "1, 3 or null")  # None: the source's own
    strict: bool = False  # refuse a folder with unreadable images instead of skipping them (--strict-data)
    # where training reads the images from: memory (decoded once, held on the training device),
    # stream (worker processes decode each batch from the zip or folder as it is needed; memory
    # bounded whatever the dataset's size), auto: stream when the decoded set would pass
    # data.memory_budget (gankit.data.stream; the choice is one line in train.log)
    load: Literal["auto", "memory", "stream"] = "auto"
    # GB of decoded images above which auto streams; null: a quarter of the training device's memory
    memory_budget: float | None = ranged(None, lambda v: v is None or v > 0, "a number of GB > 0, or null")
    workers: int = ranged(2, lambda v: v >= 0, "an integer >= 0 (0: decode in the training process)")  # streaming: decoding processes
    prefetch: int = ranged(2, lambda v: v >= 1, "an integer >= 1")  # streaming: batches each worker decodes ahead
    # x-flips: every image also appears mirrored left-right, doubling the set (StyleGAN2-ADA's --mirror)
    mirror: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """The training loop's settings, shared by every task. Its words are the GAN tasks': G the
    network that makes samples, D the one that judges them; a task whose networks differ says in
    its own section which settings it reads and how."""

    # one step = each of the task's phases once (in the GAN tasks n_critic D updates and one G
    # update); 469 x 128 ~ one MNIST epoch
    steps: int = ranged(469, lambda v: v >= 0, "an integer >= 0")
    # stop this training call after this many seconds of training (evaluation, grids and checkpoints
    # not counted), as if train.steps had been reached there; 0: no time limit (--max-seconds)
    max_seconds: float = ranged(0.0, lambda v: v >= 0, "a number of seconds >= 0 (0: no limit)")
    batch: int = ranged(128, lambda v: v >= 1, "an integer >= 1")  # the global batch of one update
    # gradient accumulation: each update's batch is split into micro-batches of this size whose
    # gradients add up to the whole batch's (docs/data.md); null: train.batch (no accumulation).
    # In a data-parallel job, each rank's share of train.batch is split.
    batch_gpu: int | None = ranged(None, lambda v: v is None or v >= 1, "an integer >= 1, or null")
    # the adversarial loss (gankit.losses), for the tasks that have one
    loss: Literal["ns", "minimax", "ls", "hinge", "wasserstein", "ragan", "rpgan"] = "ns"
    optimizer: Literal["adam", "rmsprop"] = "adam"  # rmsprop for the original WGAN
    # the two optimisers' rates: G's and D's in the GAN tasks (separate rates allow TTUR, Heusel
    # et al. 2017); a task with other optimisers says in its section which rate each uses
    lr_g: float = ranged(2e-4, lambda v: v > 0, "a number > 0")
    lr_d: float = ranged(2e-4, lambda v: v > 0, "a number > 0")
    # Adam; beta1 0.5 as in DCGAN
    betas: tuple[float, float] = ranged((0.5, 0.999), lambda v: all(0 <= b < 1 for b in v), "two numbers in [0, 1)")
    n_critic: int = ranged(1, lambda v: v >= 1, "an integer >= 1")  # D updates per G update (5 for WGAN, WGAN-GP, SNGAN)
    # over train.steps, every optimiser; hold-linear: constant for the first half, then linear to 0 (CycleGAN)
    lr_schedule: Literal["constant", "linear", "cosine", "hold-linear"] = "constant"
    ema: bool = False  # keep an exponential moving average of G's weights for sampling
    # with ramp-up: decay_t = min(ema_decay, (1 + t) / (10 + t))
    ema_decay: float = ranged(0.999, lambda v: 0 < v < 1, "0 < ema_decay < 1")
    # bf16: forward passes under bfloat16 autocast; auto: bf16 on a CUDA GPU with bf16; on a CPU the
    # faster of the two as timed on the run's own step (cached per CPU and config), fp32 for runs
    # too short to time it (gankit.training.precision; CPU flags do not predict bf16's speed)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    reuse_fakes: bool = True  # G's update reuses the D step's fakes (one G forward per step); false: fresh z
    cuda_graph: bool = True  # on CUDA, capture the whole step as one CUDA graph when nothing prevents it
    compile: bool = False  # torch.compile the networks' forward passes (not with reg.gp / reg.r1)
    channels_last: bool = False  # channels-last memory format for convolutional networks
    sync_bn: bool = False  # data-parallel runs: BatchNorm statistics over the global batch (SyncBatchNorm)
    ddp: bool = True  # data-parallel runs: DistributedDataParallel; false: one flat gradient all-reduce
    # start from another run's weights (a run directory or checkpoint .pt of the same task; the
    # networks both have, by name); optimisers and the step start afresh; null: fresh weights
    init: str | None = None
    # fine-tuning: freeze the first K blocks of D (input side: Mo et al. 2020's FreezeD) / of G
    # (latent side; stylegan2: 1 = the mapping network); what a block is, per arch: docs/cli.md
    freeze_d: int = ranged(0, lambda v: v >= 0, "an integer >= 0 (0: nothing frozen)")
    freeze_g: int = ranged(0, lambda v: v >= 0, "an integer >= 0 (0: nothing frozen)")


@dataclass(frozen=True)
class RecoverConfig:
    skip_nonfinite: bool = True  # a NaN/inf loss or gradient: don't apply that update (one sync per update)
    # that many non-finite updates in a row: roll back to the last good checkpoint
    patience: int = ranged(10, lambda v: v >= 1, "an integer >= 1")
    max_rollbacks: int = ranged(3, lambda v: v >= 0, "an integer >= 0")  # more rollbacks than this: stop with a message
    # learning rates are multiplied by this at each rollback
    lr_factor: float = ranged(0.5, lambda v: 0 < v <= 1, "0 < lr_factor <= 1")


@dataclass(frozen=True)
class EvalConfig:
    every: int = ranged(0, lambda v: v >= 0, "an integer >= 0")  # evaluate every N steps during training (0: never); `--eval-every N`
    n: int = ranged(10_000, lambda v: v >= 2, "an integer >= 2")  # generated samples per evaluation
    # comma-separated, see `gankit eval --help`; fid also keeps checkpoints/best.pt
    metrics: str = ranged("fid", lambda v: _metric_names(v) <= set(_EVAL_METRICS),
                          f"a comma-separated subset of {', '.join(_EVAL_METRICS)}")
    ref: str = "mnist:test"  # reference data source
    featurenet: str | None = None  # feature network .safetensors; None: the bundled MNIST network
    # the memorisation check (samples' nearest training images against held-out images', per class)
    # in every evaluation: auto: for a conditional generator on a labelled set of at most 10,000
    # images (gankit.metrics.memorization_classes); true: always; false: never
    memorization: Literal["auto", True, False] = "auto"
    held_out: str | None = None  # its held-out real images; None: the data source's held-out split


@dataclass(frozen=True)
class LogConfig:
    # read scalars from the device and write metrics.jsonl every K steps
    every: int = ranged(50, lambda v: v >= 1, "an integer >= 1")
    grid_every: int = ranged(500, lambda v: v >= 1, "an integer >= 1")  # sample grid of the fixed inputs every M steps
    grid_n: int = ranged(64, lambda v: 1 <= v <= 1024, "1 to 1024")  # images in each grid (a square number draws a square grid)
    # write checkpoints/last.pt every this many steps (and at the end)
    ckpt_every: int = ranged(1000, lambda v: v >= 1, "an integer >= 1")
    # ... or after this many minutes of training, whichever comes first
    ckpt_minutes: float = ranged(10.0, lambda v: v > 0, "a number of minutes > 0")
    # checkpoints kept: last.pt and the previous ones as step_NNNNNNNN.pt
    keep_last: int = ranged(3, lambda v: v >= 1, "an integer >= 1")
    # live progress bar on stderr; when stderr is not a terminal (a file, a pipe), one plain line per log step
    progress: bool = True
    # TensorBoard event files in RUN/tensorboard/ (gankit.training.tensorboard): auto: when the
    # tensorboard package is installed (said once in train.log); true: required (an error without it)
    tensorboard: Literal["auto", True, False] = "auto"
    # profile this many steps after a 5-step warm-up (--profile N): RUN/profile/; 0: off
    profile: int = ranged(0, lambda v: v >= 0, "an integer >= 0 (0: off)")


@dataclass(frozen=True)
class SharedConfig:
    """What every run has, whatever its task: `RunConfig` adds the tasks' sections to it."""

    preset: str | None = None  # the preset this config started from, for the record
    # what is trained: a name in gankit.tasks.TASKS (the first one by default)
    task: Literal[tuple(TASKS)] = next(iter(TASKS))  # type: ignore[valid-type]
    seed: int = ranged(0, lambda v: v >= 0, "an integer >= 0")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    recover: RecoverConfig = field(default_factory=RecoverConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def replace(self, **overrides: Any) -> RunConfig:
        """A validated copy with dotted keys replaced: ``cfg.replace(**{"train.steps": 10})``."""
        return from_dict(_apply_overrides(to_dict(self), overrides, origin="replace()"))


@functools.cache
def _task_configs() -> tuple[types.ModuleType, ...]:
    """Every registered task's config module (`gankit.tasks.<name>.config`), in registry order."""
    return tuple(m for m in (task_part(name, "config") for name in TASKS) if m is not None)


@functools.cache
def _run_config() -> type:
    """`RunConfig`: `SharedConfig` plus every registered task's sections, built once."""
    taken = {f.name for f in dataclasses.fields(SharedConfig)}
    sections = []
    for module in _task_configs():
        for name, cls in module.SECTIONS.items():
            if name in taken or not dataclasses.is_dataclass(cls):  # our bug, not the user's
                raise TypeError(f"{module.__name__}: section {name!r} is taken or not a dataclass")
            taken.add(name)
            sections.append((name, cls, field(default_factory=cls)))
    cls = dataclasses.make_dataclass("RunConfig", sections, bases=(SharedConfig,), frozen=True)
    cls.__module__ = __name__  # pickled and named as gankit.config.RunConfig
    cls.__doc__ = ("A run's whole configuration: the shared sections (`SharedConfig`) and every "
                   "registered task's sections (gankit.tasks.<task>/config.py SECTIONS).")
    return cls


def __getattr__(name: str) -> Any:
    # `RunConfig` is composed on first use, not at import: the task config modules it reads
    # import this module's helpers (`ranged`).
    if name == "RunConfig":
        globals()["RunConfig"] = cls = _run_config()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Keys a preset file may carry beside the config itself; they describe the preset.
_PRESET_META = ("description",)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain data (lists, not tuples), ready for YAML, JSON or a checkpoint."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def from_dict(d: dict[str, Any], origin: str = "config") -> RunConfig:
    """Build and validate a `RunConfig`; `origin` names the source in error messages. Every
    registered task's rules run, whatever `task` is: a config carries every task's sections."""
    cfg = _build(_run_config(), d, origin, prefix="")
    _check_shared(cfg, origin)
    for module in _task_configs():
        check = getattr(module, "check", None)
        if check is not None:
            check(cfg, origin)
    return cfg


def _check_shared(cfg: RunConfig, origin: str) -> None:
    """Shared settings that are valid alone but not together."""
    if cfg.log.profile and cfg.log.profile + 5 > cfg.train.steps:  # gankit.training.profile: WAIT + WARMUP = 5
        raise GankitError(f"{origin}: log.profile = {cfg.log.profile} needs {cfg.log.profile + 5} steps "
                          f"(a 5-step warm-up first); train.steps is {cfg.train.steps}")
    if cfg.train.batch_gpu is not None and cfg.train.batch % cfg.train.batch_gpu:
        raise GankitError(f"{origin}: train.batch = {cfg.train.batch} is not divisible by train.batch_gpu = "
                          f"{cfg.train.batch_gpu}; expected a micro-batch size that divides the batch "
                          f"(e.g. {max(d for d in range(1, cfg.train.batch_gpu + 1) if cfg.train.batch % d == 0)})")


def preset_names() -> list[str]:
    root = resources.files("gankit") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    if name not in preset_names():
        raise GankitError(f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}")
    return (resources.files("gankit") / "presets" / f"{name}.yaml").read_text()


def preset_description(name: str) -> str:
    return _parse_yaml(preset_text(name), f"preset {name}").get("description", "")


def load_config(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve preset, then YAML file, then overrides (later wins) into a validated config.

    `overrides` is a list of ``"a.b=value"`` strings (values parsed as YAML scalars) or a dict
    of dotted keys. With neither preset nor file, the defaults (the tutorial's GAN) are used.
    """
    d: dict[str, Any] = {}
    if preset is not None:
        d = _parse_yaml(preset_text(preset), f"preset {preset}")
        d["preset"] = preset
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise GankitError(f"config file {str(path)!r} does not exist")
        d = _merge(d, _parse_yaml(path.read_text(), str(path)))
    for k in _PRESET_META:
        d.pop(k, None)
    if isinstance(overrides, list):
        overrides = dict(_parse_set(s) for s in overrides)
    d = _apply_overrides(d, overrides or {}, origin="--set")
    return from_dict(d, origin=str(file) if file else f"preset {preset}" if preset else "config")


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """`cfg` with ``"a.b=value"`` overrides applied and the result validated."""
    d = _apply_overrides(to_dict(cfg), dict(_parse_set(s) for s in overrides), origin="--set")
    return from_dict(d, origin="--set")


def _parse_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GankitError(f"{origin}:{where}: malformed YAML: {problem}") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise GankitError(f"{origin}: expected a mapping of config sections, got {type(d).__name__}")
    return d


def _parse_set(s: str) -> tuple[str, Any]:
    key, sep, raw = s.partition("=")
    if not sep or not key.strip():
        raise GankitError(f"--set {s!r}: expected key=value, e.g. train.lr_g=1e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        value = raw  # not YAML: keep the text; type checking decides
    # YAML 1.1 reads 1e-4 as a string; accept the float users mean.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else value
        except ValueError:
            pass
    return key.strip(), value


def _apply_overrides(d: dict[str, Any], overrides: dict[str, Any], origin: str) -> dict[str, Any]:
    d = _merge({}, d)
    for key, value in overrides.items():
        parts = key.split(".")
        node = d
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise GankitError(f"{origin} {key}: {p!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return d


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(cls: type, d: Any, origin: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(d, dict):
        raise GankitError(f"{origin}: {where} must be a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise GankitError(
            f"{origin}: unknown key {prefix}{unknown[0]}; valid keys at {where}: {', '.join(names)}"
        )
    kwargs = {}
    for name in names:
        if name not in d:
            continue
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, d[name], origin, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(tp, d[name], f"{origin}: {prefix}{name}")
    cfg = cls(**kwargs)
    _check_ranges(cfg, origin, prefix)
    return cfg


def _coerce(tp: Any, v: Any, where: str) -> Any:
    """Check `v` against the annotation `tp`; convert only where no information is lost."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], v, where)
    if origin is Literal:
        if not any(v == a and isinstance(v, bool) == isinstance(a, bool) for a in args):  # 1 is not true
            raise GankitError(f"{where} = {v!r}; choose one of: {', '.join(_yaml_word(a) for a in args)}")
        return v
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise GankitError(f"{where} = {v!r}; expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
        if len(v) != len(args):
            raise GankitError(f"{where} = {v!r}; expected a list of {len(args)} values")
        return tuple(_coerce(a, x, f"{where}[{i}]") for i, (a, x) in enumerate(zip(args, v)))
    if tp is bool:
        if isinstance(v, bool):
            return v
        raise GankitError(f"{where} = {v!r}; expected true or false")
    if tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        raise GankitError(f"{where} = {v!r}; expected an integer")
    if tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        raise GankitError(f"{where} = {v!r}; expected a number")
    if tp is str:
        if isinstance(v, str):
            return v
        raise GankitError(f"{where} = {v!r}; expected a string")
    raise TypeError(f"config type {tp} not handled")  # our bug, not the user's


def _yaml_word(v: Any) -> str:
    """A choice as the user types it: true, not True."""
    return str(v).lower() if isinstance(v, bool) else str(v)


def _check_ranges(cfg: Any, origin: str, prefix: str) -> None:
    """Each field's range, declared beside it with `ranged`."""
    for f in dataclasses.fields(cfg):
        rule = f.metadata.get("range")
        if rule is None:
            continue
        ok, accepted = rule
        v = getattr(cfg, f.name)
        if not ok(v):
            raise GankitError(f"{origin}: {prefix}{f.name} = {v!r} is out of range; expected {accepted}")
