"""Sharing a trained generator without pickle: ``.safetensors`` weights plus a JSON sidecar.

    export_generator("runs/mnist", "mnist-g.safetensors")    # -> (weights, sidecar) paths
    run = load_exported("mnist-g.safetensors")               # a `Run`: .sample(), .interpolate(), ...

The weights file holds G's state dict only (EMA weights when the run kept them, unless asked
otherwise); the sidecar ``NAME.json`` holds what rebuilding G needs (the run's resolved config
and data description), the training step, and the weights' SHA-256, checked before loading.
Neither file can run code when loaded, unlike a pickled checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def export_generator(run_dir_or_ckpt: str | Path, out: str | Path, ema: bool = True) -> tuple[Path, Path]:
    """Write the run's generator to `out` (.safetensors) and its sidecar ``out.with_suffix('.json')``;
    the EMA weights when the run kept them and `ema` is True. Returns (weights, sidecar)."""
    out = Path(out)
    if out.suffix != ".safetensors":
        raise GankitError(f"--out {out}: an exported generator is written to a .safetensors file "
                          f"(e.g. {out.with_suffix('.safetensors').name})")
    run = Run.load(run_dir_or_ckpt, device="cpu", ema=ema)
    names = get_task(run.task).exported_nets(run.config)
    # Fresh contiguous CPU copies: safetensors refuses views and tensors that share storage.
    state = {f"{n}.{k}": v.detach().to("cpu").clone(memory_format=torch.contiguous_format)
             for n in names for k, v in run.nets[n].state_dict().items()}
    sidecar = out.with_suffix(".json")
    with disk.atomic(out) as weights:  # both files, or neither
        save_file(state, str(weights), metadata={"format": FORMAT})
        meta = {"format": FORMAT, "version": VERSION, "task": run.task, "nets": list(names),
                "config": to_dict(run.config), "data": run.data_meta,
                "step": run.step, "ema": run.ema, "gankit_version": __version__, "sha256": sha256_file(weights)}
        with disk.atomic(sidecar) as side:
            side.write_text(json.dumps(meta, indent=2) + "\n")
    return out, sidecar


def load_exported(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """A `Run` from a generator written by `export_generator`, after checking its SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"exported generator {path} does not exist")
    sidecar = path.with_suffix(".json")
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


