"""The Python API behind every command: train, resume, load, evaluate, launch data-parallel.

The CLI (`gankit.cli`) parses flags and prints; everything it does is one of these functions,
which a notebook or a web page can call the same way, or one of the apps (`gankit.apps`:
augment-eval, serve), which sit above this API and call it; this module never imports them.

    run = api.train(load_config("seed-mlp", overrides={"train.steps": 200}), "runs/demo")
    run = api.resume("runs/demo", ["train.steps=400"])
    run = api.load("runs/demo")                      # or a checkpoint .pt, or an exported .safetensors
    result = api.evaluate("runs/demo", ["fid", "kid"])
    record = api.project("runs/demo", "digit.png", "proj/")   # the latent of a real image

Each task adds the functions that apply its runs to files (`api.translate`, `api.superres`,
`api.repair`, `api.project`, ...): they live in the task's folder (surface.py, its `API` names) and
are looked up here by name through the registry, so this module lists no task.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from gankit.config import RunConfig
from gankit.errors import GankitError
from gankit.export import load_exported
from gankit.run import Run
from gankit.tasks import get_task
from gankit.training import train as _train
from gankit.training import rundir


def load(path: str | Path, device: str = "cpu", ema: bool = True) -> Run:
    """A run directory, a checkpoint .pt, or an exported generator (.safetensors, or the folder
    `gankit export --out DIR` writes), ready to use."""
    path = Path(path)
    if path.suffix == ".safetensors" or _export_folder(path):
        run = load_exported(path, device=device)
        if not ema and run.ema:
            raise GankitError(f"{path} holds the EMA generator only; export with --no-ema for the raw one")
        return run
    return Run.load(path, device=device, ema=ema)


def _export_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model.safetensors").is_file() and not (path / "checkpoints").is_dir()


def _finished(result) -> Run | None:
    if result is None:  # a data-parallel rank other than 0
        return None
    run = Run.load(result.dir)
    run.interrupted = result.interrupted
    return run


def train(cfg: RunConfig, out: str | Path, command: str | None = None) -> Run | None:
    """Train `cfg` into the new run directory `out`; the trained Run (None on ranks > 0).
    `command`: the command line to record in train.log and the report (default: the Python call)."""
    return _finished(_train(cfg, out, command=command))


def resume_config(run_dir: str | Path, overrides: list[str] | None = None) -> tuple[RunConfig, tuple | None]:
    """(config, (checkpoint, path, damaged files skipped) or None) to continue `run_dir`: see
    `gankit.training.rundir.resume_config`."""
    return rundir.resume_config(run_dir, overrides)


def resume(run_dir: str | Path, overrides: list[str] | None = None, force: bool = False) -> Run | None:
    """Continue `run_dir` (see `resume_config`); `force` allows a changed config."""
    cfg, loaded = resume_config(run_dir, overrides)
    return _finished(_train(cfg, run_dir, resume=True, force=force, loaded=loaded))


def evaluate(target: str | None, metrics: list[str], n: int = 10_000, ref: str = "mnist:test", seed: int = 0,
             featurenet: str | None = None, device: str = "cpu", ema: bool = True,
             inception_weights: str | None = None, floor: bool = False, held_out: str | None = None,
             train: str | None = None, out: str | None = None, ref_stats: str | None = None,
             save_stats: str | None = None, resize: str = "legacy", memorization=None) -> dict:
    """Score a run, a checkpoint, a samples .npz or a folder of images (or, with `floor`, real
    training images) against `ref` with the feature network. Returns the result with its protocol.

    FID statistics files (pytorch-fid / clean-fid `.npz`, `gankit.metrics.fidstats`): `ref_stats`
    adds the FID of the samples against that file's statistics; `save_stats` writes the samples'
    statistics, or without a `target` those of `ref`. Both are taken in the Inception network
    when `inception_weights` is given, else in the feature network; `resize` (legacy, clean) is
    how images reach the network's input size.

    ``memorization`` among `metrics` checks the samples for copies of the training images
    (`train`, default the run's data source) against `held_out` real images (default that
    source's held-out split), writing its pictures under `out` (default RUN/memorization).
    A run's `eval.memorization` (or `memorization`: "auto", True, False, overriding it) adds the
    check, per class, to every evaluation of a conditional generator on a small labelled set
    (`gankit.metrics.memorization_classes`)."""
    from gankit.metrics.evaluate import METRICS, Evaluator, d_accuracy, fid, floor as real_floor, target_images
    from gankit.metrics.toy import mode_stats

    unknown = [m for m in metrics if m not in (*METRICS, "dacc", "memorization")]
    if unknown:
        raise GankitError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}, dacc, memorization")
    if n < 2:
        raise GankitError(f"--n {n}: need at least 2 samples")
    plain = [m for m in metrics if m not in ("dacc", "memorization")]
    if floor and "memorization" in metrics:
        raise GankitError("--metrics memorization checks a generator's samples; --floor has none")
    if floor and (ref_stats or save_stats):
        raise GankitError("--floor scores real training images; --ref-stats and --save-stats need samples "
                          "(a TARGET), or for --save-stats alone, no TARGET: the statistics of --ref")
    if floor:
        return real_floor(Evaluator(featurenet, device, resize), min(n, 10_000), ref, plain, seed)
    stats_net, stats = _stats_inputs(featurenet, inception_weights, resize, device, ref_stats, save_stats)
    if not target and save_stats and not ref_stats:
        return _save_source_stats(stats_net, ref, save_stats)
    if not target:
        raise GankitError("eval needs a TARGET (run directory, checkpoint, samples .npz or image folder), or --floor")
    run, path = None, Path(target)
    if not ((path.is_dir() and (path / "checkpoints").is_dir()) or path.suffix in (".pt", ".safetensors")
            or _export_folder(path)):
        images, name = target_images(target)
    else:
        run = load(target, ema=ema)
        name = str(target)
        if "memorization" in metrics and not hasattr(run, "sample"):
            raise GankitError(f"{name}: --metrics memorization checks a generator's samples; {run.task} runs make none")
        other = None if ref == "mnist:test" else ref  # for other tasks, --ref names another held-out source
        scored = get_task(run.task).evaluate_run(run.config, run.nets, device, n, featurenet, other, name, run.step,
                                                 data_meta=run.data_meta)
        if stats_net is not None and (scored is not None or (run.data_meta or {}).get("kind") == "points"):
            raise GankitError(f"{name}: --ref-stats and --save-stats take the statistics of generated images; "
                              f"this {run.task} run is scored on held-out data instead (drop them)")
        if scored is not None:  # a task scored on held-out data (against targets, or its own metrics)
            if "memorization" in metrics:
                raise GankitError(f"{name}: --metrics memorization checks an image generator's samples; "
                                  f"{run.task} runs are scored on held-out data instead (drop it)")
            return scored
        if not hasattr(run, "sample"):  # neither held-out scores nor samples (a task's run_methods)
            raise GankitError(f"{name}: gankit eval has no scores for {run.task!r} runs")
        if run.data_meta["kind"] == "points":  # a 2-D toy run: mode coverage is its metric
            if "memorization" in metrics:
                raise GankitError(f"{name}: --metrics memorization compares images; this run makes 2-D points")
            source = run.config.data.source
            return {**mode_stats(run.sample(n, seed=seed), source),
                    "protocol": {"n": n, "ref": source, "seed": seed, "run": name, "step": run.step}}
        labels = run.labels(n, seed=seed) if run.conditional else None  # the classes run.sample draws
        images = run.sample(n, seed=seed)
    run_name, step = (name, run.step) if run else (None, None)
    if plain or "memorization" not in metrics:
        result = Evaluator(featurenet, device, resize).evaluate(images, plain, ref, seed, run=run_name, step=step,
                                                                name=name)
    else:  # memorization alone: no reference set of the distribution metrics is involved
        result = {"protocol": {"n": len(images), "seed": seed, "run": run_name, "step": step}}
    checked = None
    if run is not None:  # a run's own rule: per class on a small labelled set (and its reason when not)
        checked, why = _small_set_check(images, labels, run, "memorization" in metrics, memorization, train,
                                        held_out, out, featurenet, device)
        result["protocol"]["memorization"] = why
        if checked is not None:
            result["memorization"] = checked
    if "memorization" in metrics and checked is None:
        result["memorization"] = _memorization(images, run, train, held_out, out, featurenet, device, seed,
                                               run_name, step)
    if stats_net is not None:
        feats = stats_net.features(images, name)
        if inception_weights:
            result["fid_inception"] = fid(stats_net.source_features(ref)[0], feats)
            result["protocol"]["inception"] = stats_net.record
        _fid_stats_files(result, stats_net, feats, stats, save_stats, name, seed, run_name, step)
    if "dacc" in metrics:
        if run is None:
            raise GankitError("--metrics dacc needs a run or checkpoint (it scores the run's D)")
        result["d_acc"] = d_accuracy(run, ref, min(n, 10_000), seed)
    return result


def _stats_inputs(featurenet, inception_weights, resize, device, ref_stats, save_stats):
    """`evaluate`'s FID-statistics network and the --ref-stats file, read and checked against each
    other before any sampling, so that a wrong file costs no time."""
    from gankit.metrics.fidstats import StatsNetwork, load_stats
    from gankit.metrics.resize import RESIZE_MODES

    if resize not in RESIZE_MODES:
        raise GankitError(f"--resize {resize}: choose from {', '.join(RESIZE_MODES)}")
    if save_stats and ref_stats and Path(save_stats).resolve() == Path(ref_stats).resolve():
        raise GankitError(f"--save-stats {save_stats}: that is the --ref-stats file; write to another path")
    if save_stats and Path(save_stats).suffix.lower() != ".npz":
        raise GankitError(f"--save-stats {save_stats}: expected an .npz path (pytorch-fid / clean-fid statistics)")
    stats = load_stats(ref_stats) if ref_stats else None
    if not (inception_weights or ref_stats or save_stats):
        return None, None
    net = StatsNetwork(featurenet, inception_weights, resize, device)
    if stats is not None:
        net.check(stats)
    return net, stats


def _stats_record(net, n: int, source: str, kind: str, **more) -> dict:
    from gankit.version import __version__

    return {**net.record, "n": n, "source": source, "kind": kind, **more, "gankit": __version__}


def _save_source_stats(net, ref: str, path: str) -> dict:
    """`gankit eval --save-stats FILE` without a target: the statistics of the data source `ref`."""
    from gankit.metrics.fidstats import feature_stats, save_stats

    feats, name = net.source_features(ref)
    mu, sigma = feature_stats(feats)
    record = _stats_record(net, len(feats), name, "reference")
    save_stats(path, mu, sigma, record)
    return {"saved_stats": str(path), "protocol": record}


def _fid_stats_files(result: dict, net, feats, stats, save_to: str | None, name: str, seed: int,
                     run_name: str | None, step: int | None) -> None:
    """FID of the samples' features against --ref-stats, and their statistics written to --save-stats."""
    from gankit.errors import warn
    from gankit.metrics.evaluate import FID_MIN_N
    from gankit.metrics.fidstats import feature_stats, frechet_distance, save_stats
    from gankit.util import sha256_file

    if stats is None and save_to is None:
        return
    mu, sigma = feature_stats(feats)
    if stats is not None:
        if len(feats) < max(FID_MIN_N, net.dims) and "fid" not in result:
            warn(f"FID from {len(feats):,} samples is biased upwards and noisy; use at least "
                 f"{max(FID_MIN_N, net.dims):,} and compare FIDs only at the same n")
        result["fid_ref_stats"] = frechet_distance(mu, sigma, stats.mu, stats.sigma)
        result["protocol"]["ref_stats"] = {"path": stats.path, "sha256": sha256_file(stats.path),
                                           "network": net.record, "n": len(feats), "file_protocol": stats.protocol}
    if save_to is not None:
        save_stats(save_to, mu, sigma, _stats_record(net, len(feats), name, "samples", seed=seed, run=run_name,
                                                     step=step))
        result["saved_stats"] = str(save_to)


def _memorization(images, run: Run | None, train: str | None, held_out: str | None, out: str | None,
                  featurenet: str | None, device: str, seed: int, run_name: str | None, step: int | None) -> dict:
    """`evaluate`'s memorization check, its sources and folder chosen from the run where not given."""
    from gankit.metrics.memorization import evaluate_memorization, held_out_source

    train = train or (run.config.data.source if run is not None else None)
    if train is None:
        raise GankitError("--metrics memorization on a samples file or folder needs --train SOURCE "
                          "(the generator's training data)")
    held_out = held_out or held_out_source(train)
    if held_out is None:
        raise GankitError(f"--metrics memorization: data source {train!r} has no known held-out split; name real "
                          "images the generator never saw with --held-out SOURCE")
    if held_out == train:
        raise GankitError(f"--held-out {held_out}: the held-out images must not be the training images")
    folder = Path(out) if out else (run.dir / "memorization" if run is not None and Path(run.dir).is_dir()
                                    else Path("memorization"))
    mirror = bool(getattr(run.config.data, "mirror", False)) if run is not None else False
    return evaluate_memorization(images, train, held_out, folder, featurenet, device, mirror, seed=seed,
                                 run=run_name, step=step)


def _small_set_check(images, labels, run: Run, explicit: bool, setting, train: str | None, held_out: str | None,
                     out: str | None, featurenet: str | None, device: str) -> tuple[dict | None, str]:
    """The memorisation check a run's `eval.memorization` (`setting` overriding it) asks of every
    evaluation: (the per-class result or None, the rule that decided, in words). An unconditional
    run asked for `--metrics memorization` is left to `_memorization` (all samples at once)."""
    from gankit.data import load_data
    from gankit.metrics import memorization_classes as mc
    from gankit.metrics.memorization import feature_embedding

    setting = run.config.eval.memorization if setting is None else setting
    if explicit and labels is None:
        return None, "asked for (--metrics memorization)"
    if labels is None and setting is not True:
        return None, mc.decide(setting, False, False, 0)[1]
    source = train or run.config.data.source
    c, h = images.shape[1], images.shape[2]
    try:
        data = load_data(source, resolution=h, channels=c, load="auto")
    except GankitError as e:  # evaluating elsewhere than the data lives: the rule cannot be applied
        if explicit or setting is True:
            raise
        return None, f"not run: the training data could not be read ({e})"
    labelled = getattr(data, "y", None) is not None and bool(data.classes)
    on, why = mc.decide(True if explicit else setting, labels is not None, labelled, len(data))
    if not on:
        return None, why
    why = "asked for (--metrics memorization)" if explicit else why
    held = mc.held_out_for(source, held_out or run.config.eval.held_out)
    if held is None:
        if explicit or setting is True:
            raise GankitError(f"memorization: data source {source!r} has no known held-out split; name real images "
                              "the generator never saw with --held-out SOURCE (or eval.held_out)")
        return None, f"not run: {why}, but data source {source!r} has no known held-out split (give --held-out SOURCE)"
    ref = mc.reference(data, held, mirror=bool(getattr(run.config.data, "mirror", False)))
    embed, embed_name, net_meta = feature_embedding(source, featurenet, device)
    folder = Path(out) if out else (Path(run.dir) / "memorization" if Path(run.dir).is_dir() else Path("memorization"))
    result = mc.check(images, labels, ref, folder, embed=embed, embed_name=embed_name)
    result["protocol"].update({"rule": why, **net_meta})
    return result, why


def _surfaces() -> list:
    """Every task's surface module, looked up in the registry (not through `gankit.cli.tasks`, so
    that this module's imports stay below the apps and the CLI)."""
    from gankit.tasks import task_parts

    return list(task_parts("surface").values())


def __getattr__(name: str):
    """A task's API function (its surface.py lists it in `API`): `gankit.api.translate`, ..."""
    for surface in _surfaces():
        if name in getattr(surface, "API", ()):
            return getattr(surface, name)
    raise AttributeError(f"module 'gankit.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *(n for s in _surfaces() for n in getattr(s, "API", ()))])


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4: ppid, after "(comm)"
                kids.append(int(d.name))
    return kids


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies (elsewhere: no-op)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def launch(argv: list[str], cfg: RunConfig, nproc: int, out: Path) -> int:
    """Run `gankit ARGV` (a train command without --nproc) under torchrun on this machine with
    `nproc` processes, after checking what can be checked here; returns its exit status.

    torchrun runs in its own session, so Ctrl-C reaches this launcher only; the launcher passes
    SIGINT/SIGTERM to the workers themselves, which stop together at the next log step with a
    checkpoint and exit 0 (torchrun, signalled directly, would exit 1 with a traceback). If the
    launcher itself is killed (SIGKILL, an OOM kill, a test timeout), torchrun gets SIGTERM from
    the kernel and stops the workers: no orphaned job keeps the cores or the run."""
    from gankit.threads import cpu_budget, user_threads
    from gankit.training.distributed import Dist
    from gankit.training.engine import micro_batch

    if nproc < 1:
        raise GankitError(f"--nproc {nproc}: expected a number of processes >= 1")
    if "WORLD_SIZE" in os.environ:
        raise GankitError("--nproc launches torchrun itself; under torchrun, drop --nproc")
    Dist(0, nproc).shard(cfg.train.batch)  # the global batch must split evenly
    micro_batch(cfg, nproc)  # and each process's share into micro-batches of train.batch_gpu
    if cfg.device != "cpu" and torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise GankitError(f"--nproc {nproc}: this machine has {torch.cuda.device_count()} CUDA devices; "
                          "use at most that many processes (or --device cpu)")
    env = dict(os.environ)
    if not user_threads():  # the CPUs this job may use, shared fairly between the workers
        env["OMP_NUM_THREADS"] = str(max(1, cpu_budget() // nproc))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "gankit", *argv]
    print(f"gankit: {nproc} processes: {' '.join(cmd[2:])}", file=sys.stderr)
    job = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent)

    def forward(signum, frame):
        for pid in _children(job.pid):  # the workers
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = job.wait()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if rc:
        print(f"gankit: error: the {nproc}-process job failed (exit status {rc}; the first failing rank's "
              f"message is above); checkpoints in {out / 'checkpoints'} are intact", file=sys.stderr)
    return rc
