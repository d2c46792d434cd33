"""Sharing a trained generator without pickle: ``.safetensors`` weights plus a JSON sidecar,
as two files or as a folder the Hugging Face Hub reads.

    export_generator("runs/mnist", "mnist-g.safetensors")    # -> (weights, sidecar) paths
    export_folder("runs/mnist", "mnist-g", onnx=True)         # -> mnist-g/ (below)
    run = load_exported("mnist-g.safetensors")               # a `Run`: .sample(), .interpolate(), ...
    run = load_exported("mnist-g")                           # the folder form

The folder holds ``model.safetensors``, ``config.json`` (the sidecar under the name the Hub
expects), ``README.md`` (the model card, `gankit.card`) and, with `onnx`, ``model.onnx`` (one per
network when the task exports several: ``model.G_ab.onnx``, ...; `gankit.export_onnx`). It is
written under a temporary name and renamed into place whole. With `onnx`, the file form writes
``NAME.onnx`` beside ``NAME.safetensors``.

The weights file holds G's state dict only (EMA weights when the run kept them, unless asked
otherwise); the sidecar ``NAME.json`` holds what rebuilding G needs (the run's resolved config
and data description), the training step, and the weights' SHA-256, checked before loading.
Neither file can run code when loaded, unlike a pickled checkpoint.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from gankit import disk
from gankit.version import __version__
from gankit.config import from_dict, to_dict
from gankit.errors import GankitError
from gankit.util import sha256_file
from gankit.run import Run
from gankit.tasks import get_task
from gankit.util import resolve_device

FORMAT = "gankit-generator"
VERSION = 2  # 2: a task and several named networks ("G.", "G_ab.", ... key prefixes); 1: G alone


WEIGHTS, SIDECAR, CARD = "model.safetensors", "config.json", "README.md"  # the folder form's names


def _write_pair(run: Run, weights_path: Path, sidecar_path: Path) -> None:
    names = get_task(run.task).exported_nets(run.config)
    # Fresh contiguous CPU copies: safetensors refuses views and tensors that share storage.
    state = {f"{n}.{k}": v.detach().to("cpu").clone(memory_format=torch.contiguous_format)
             for n in names for k, v in run.nets[n].state_dict().items()}
    with disk.atomic(weights_path) as weights:  # both files, or neither
        save_file(state, str(weights), metadata={"format": FORMAT})
        meta = {"format": FORMAT, "version": VERSION, "task": run.task, "nets": list(names),
                "config": to_dict(run.config), "data": run.data_meta,
                "step": run.step, "ema": run.ema, "gankit_version": __version__, "sha256": sha256_file(weights)}
        with disk.atomic(sidecar_path) as side:
            side.write_text(json.dumps(meta, indent=2) + "\n")


def _onnx(run: Run, name: str, log: Callable[[str], None]) -> list:
    """The run's networks traced to ONNX and checked (nothing written yet), their checks logged."""
    from gankit.export_onnx import onnx_models

    models = onnx_models(run, name)
    for m in models:
        for line in m.describe():
            log(line)
    return models


def export_generator(run_dir_or_ckpt: str | Path, out: str | Path, ema: bool = True, onnx: bool = False,
                     log: Callable[[str], None] = print) -> tuple[Path, Path]:
    """Write the run's generator to `out` (.safetensors) and its sidecar ``out.with_suffix('.json')``;
    the EMA weights when the run kept them and `ema` is True. With `onnx`, also ``out.with_suffix('.onnx')``
    (checked against PyTorch before anything is written). Returns (weights, sidecar)."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise GankitError(f"--out {out}: an export is written to a .safetensors file "
                          f"(e.g. {out.with_suffix('.safetensors').name}), a folder (a path without a suffix) or, "
                          "for the ONNX graph alone, a .onnx file")
    run = Run.load(run_dir_or_ckpt, device="cpu", ema=ema)
    models = _onnx(run, str(run_dir_or_ckpt), log) if onnx else []
    sidecar = out.with_suffix(".json")
    _write_pair(run, out, sidecar)
    if models:
        from gankit.export_onnx import onnx_paths, write_onnx

        write_onnx(models, onnx_paths(out.with_suffix(".onnx"), models))
    return out, sidecar


def export_folder(run_dir_or_ckpt: str | Path, out: str | Path, ema: bool = True, onnx: bool = False,
                  license: str | None = None, log: Callable[[str], None] = print) -> Path:
    """Write the run's export as the folder `out` (model.safetensors, config.json, README.md, and
    model.onnx with `onnx`), whole or not at all; `out` must not exist or be empty. `license`: the
    card's license identifier (default "unknown"). Returns `out`."""
    from gankit.card import model_card
    from gankit.export_onnx import onnx_paths, write_onnx

    out = Path(out)
    if out.suffix:
        raise GankitError(f"--out {out}: a folder export is a path without a suffix; "
                          f"a .safetensors path writes the two-file form")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GankitError(f"--out {out}: exists and is not an empty folder; choose a new folder for the export")
    if license is not None and (not license.strip() or any(c in license for c in "\n\r\"")):
        raise GankitError(f"--license {license!r}: expected a license identifier such as mit, apache-2.0, "
                          "cc-by-4.0 or other")
    run = Run.load(run_dir_or_ckpt, device="cpu", ema=ema)
    run_dir = Path(run_dir_or_ckpt)
    run_dir = run_dir.parent.parent if run_dir.is_file() else run_dir  # a checkpoint's run directory
    models = _onnx(run, str(run_dir_or_ckpt), log) if onnx else []
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    try:
        with disk.naming(out):
            tmp.mkdir(parents=True)
        _write_pair(run, tmp / WEIGHTS, tmp / SIDECAR)
        paths = onnx_paths(tmp / "model.onnx", models)
        write_onnx(models, paths)
        notes = {p.name: list(m.graph.notes) + m.describe() for p, m in zip(paths, models)}
        card = model_card(run, run_dir, license or "unknown", [p.name for p in paths], notes)
        with disk.atomic(tmp / CARD) as f:
            f.write_text(card)
        with disk.naming(out):
            os.replace(tmp, out)  # rename(2) replaces an empty folder (checked above) whole
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_exported(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """A `Run` from a generator written by `export_generator` (the .safetensors path) or
    `export_folder` (the folder), after checking its SHA-256."""
    path = Path(path)
    if path.is_dir():
        path, sidecar = path / WEIGHTS, path / SIDECAR
        if not path.is_file():
            raise GankitError(f"{path.parent} is not an exported gankit folder: {WEIGHTS} is missing")
    else:
        sidecar = path.with_suffix(".json")
    if not path.is_file():
        raise GankitError(f"exported generator {path} does not exist")
    if not sidecar.is_file():
        raise GankitError(f"{sidecar} is missing: an exported generator needs the .json written "
                          f"beside {path.name} by `gankit export`")
    meta = _read_sidecar(sidecar)
    actual = sha256_file(path)
    if actual != meta["sha256"]:
        raise GankitError(f"{path} does not match the SHA-256 recorded in {sidecar}; "
                          "the file is corrupt or was changed")
    cfg = from_dict(meta["config"], origin=str(sidecar))
    data, task = meta["data"], meta.get("task", cfg.task)  # files without one: their config's
    device = resolve_device(device) if isinstance(device, str) else device
    names = meta.get("nets", ["G"])
    built = get_task(task).inference_nets(cfg, data)
    weights = load_file(str(path))
    if meta.get("version", 1) == 1:  # G's keys without a prefix
        weights = {f"G.{k}": v for k, v in weights.items()}
    nets = {}
    for n in names:
        prefix = f"{n}."
        try:
            built[n].load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
        except (RuntimeError, KeyError) as e:  # missing/unexpected keys or shapes: weights and sidecar disagree
            raise GankitError(f"{path}: the weights do not fit the network {n} described in {sidecar.name} "
                              f"({str(e).splitlines()[0]})") from None
        nets[n] = built[n].to(device).eval()
    return Run.for_task(task)(directory=path.parent, config=cfg, nets=nets, data_meta=data,
                              step=int(meta["step"]), device=device, ema=bool(meta["ema"]), task=task)


def _read_sidecar(sidecar: Path) -> dict:
    try:
        meta = json.loads(sidecar.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GankitError(f"{sidecar}: not valid JSON ({e})") from None
    need = ("config", "data", "step", "ema", "sha256")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GankitError(f"{sidecar}: not an exported gankit generator (expected \"format\": \"{FORMAT}\")")
    if meta.get("version", 0) > VERSION:
        raise GankitError(f"{sidecar}: export format {meta['version']} is newer than this gankit "
                          f"understands ({VERSION}); upgrade gankit")
    missing = [k for k in need if k not in meta]
    if missing:
        raise GankitError(f"{sidecar}: missing {', '.join(missing)}; expected keys {', '.join(need)}")
    d = meta["data"]
    if not isinstance(d, dict) or not ("shape" in d or "shape_a" in d or "kind" in d):
        raise GankitError(f"{sidecar}: \"data\" must describe the data, with at least its \"shape\" (images) or "
                          "its \"kind\" (lines, clips, ...)")
    return meta


