"""ONNX export of a run's inference networks, checked against PyTorch before anything is written.

    export_onnx("runs/edges", "edges.onnx")    # -> [edges.onnx], or [edges.G_ab.onnx, edges.G_ba.onnx]

What each network takes and returns is its task's (`Task.onnx_graphs`: a module over tensors,
example inputs, notes on what a caller does outside the graph); this module traces, checks and
writes, and names no task. Every graph has a dynamic batch axis; image inputs have dynamic height
and width when the network allows (`OnnxGraph.multiple`: the step the sides take), and length
inputs a dynamic last axis (`OnnxGraph.length_inputs`: a mel's frames, the waveform's samples).

Traced by torch.onnx's TorchScript exporter (`dynamo=False`): on this project's shared 2-core CPU
it exported a small U-Net in about 1.3 s against 7 to 10 s for the dynamo exporter (one informal
run each), into one self-contained file (the dynamo one wrote its weights to a second
`.onnx.data` file), with the same outputs. Its price: a Python branch on a shape is fixed at the
traced size, so a task whose network pads its input that way pads in the graph instead
(`gankit.tasks.onnx_common.AnySize`), and the check below runs another, unpadded-looking size.
torch deprecates this exporter (2.9+); docs/ecosystem-onnx.md says what moving to dynamo takes.

The check: onnxruntime (CPU) runs the bytes about to be written on fresh inputs at the traced batch, at
batch 1 and, when height and width are dynamic, at batch 3 and another size; the largest
|onnx - torch| must stay within TOL x max(1, max |torch|), else a GankitError and no file.
"""

from __future__ import annotations

import io
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gankit import disk
from gankit.errors import GankitError
from gankit.run import Run
from gankit.tasks import get_task
from gankit.tasks.base import OnnxGraph
from gankit.version import __version__

OPSET = 17
# float32 kernels of two libraries summed in other orders: ~1e-6 seen on outputs in [-1, 1];
# a wrong graph (a baked shape, a missing branch) is off by 1e-2 or more
TOL = 1e-4
EXAMPLE_BATCH = 2  # traced with 2: a batch of 1 invites the tracer to fix the batch axis


@dataclass
class OnnxModel:
    """One traced and checked graph: the ONNX bytes, what was checked, which axes are dynamic."""

    graph: OnnxGraph
    data: bytes
    max_diff: float
    checked: list[str]  # "batch 2 at 16x16", ...
    dynamic: list[str]  # "batch", "height and width (multiples of 16)"

    def describe(self) -> list[str]:
        return [f"{self.graph.name}: dynamic axes: {', '.join(self.dynamic)}",
                f"{self.graph.name}: onnxruntime vs PyTorch: max |diff| {self.max_diff:.1e} (tolerance {TOL:.0e} "
                f"x max(1, max |output|)) at {'; '.join(self.checked)}"]


def _need_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise GankitError(f"--onnx needs the onnx extra ({e.name} is not installed): "
                          "pip install 'gankit[onnx]' (make installs it)") from None
    return onnx, onnxruntime


def _axes(graph: OnnxGraph) -> dict[str, dict[int, str]]:
    names = list(graph.example(1, None, torch.Generator().manual_seed(0)))
    axes = {}
    for k in names:
        axes[k] = {0: "batch"}
        if graph.multiple and k in graph.image_inputs:
            axes[k].update({2: "height", 3: "width"})
        if k in graph.length_inputs:
            axes[k][2] = "length"
    axes[graph.output] = {0: "batch"}
    if graph.length_inputs:
        axes[graph.output][2] = "out_length"
    if graph.multiple and graph.image_output:
        axes[graph.output].update({2: "out_height", 3: "out_width"})
    return axes


def trace(graph: OnnxGraph) -> bytes:
    """The graph's module as ONNX bytes, with its notes in the model's metadata."""
    onnx, _ = _need_onnx()
    inputs = graph.example(EXAMPLE_BATCH, None, torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # expected chatter: a network's own padding branch fixed at the traced size (a no-op
        # there: `AnySize` pads first), instance norm exported with its input statistics (as it
        # runs in eval); the check below is what says whether the graph is right
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(graph.module, tuple(inputs.values()), buf, input_names=list(inputs),
                          output_names=[graph.output], dynamic_axes=_axes(graph), opset_version=OPSET,
                          dynamo=False)
    model = onnx.load_model_from_string(buf.getvalue())
    meta = {"gankit_version": __version__, "notes": "\n".join(graph.notes)}
    if graph.multiple and graph.multiple > 1:
        meta["size_multiple"] = str(graph.multiple)
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    return model.SerializeToString()


def _cases(graph: OnnxGraph) -> list[tuple[int, tuple[int, int] | None]]:
    cases: list[tuple[int, tuple[int, int] | None]] = [(EXAMPLE_BATCH, None), (1, None)]
    if graph.multiple and graph.size:
        h, w = graph.size
        m = graph.multiple
        cases.append((3, (h + m, w + 2 * m)))  # another size, not square (and, at m = 1, no network's multiple)
    elif graph.length_inputs and graph.length:
        cases.append((3, (1, graph.length + 5)))  # another length
    else:
        cases.append((3, None))
    return cases


def check(graph: OnnxGraph, data: bytes, run_name: str) -> tuple[float, list[str]]:
    """(max |onnx - torch|, the cases run) for the ONNX bytes against the graph's module; a
    GankitError when any case differs beyond the tolerance or in shape."""
    _, ort = _need_onnx()
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # its errors come back as exceptions, said below in one line
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(1)
    worst, done = 0.0, []
    for n, hw in _cases(graph):
        inputs = graph.example(n, hw, gen)
        with torch.no_grad():
            want = graph.module(*inputs.values()).float().numpy()
        size = "x".join(map(str, hw or graph.size)) if graph.size else ""
        where = f"batch {n}" + (f" at {size}" if size else "")
        if graph.length_inputs and graph.length:
            where += f", length {(hw or (1, graph.length))[1]}"
        try:
            got = session.run([graph.output], {k: v.numpy() for k, v in inputs.items()})[0]
        except Exception as e:  # onnxruntime's own exception types: a graph that fails on these shapes
            raise GankitError(f"ONNX export of {run_name}'s {graph.name} fails in onnxruntime ({where}): "
                              f"{' '.join(str(e).split())[:300]}; nothing written") from None
        if got.shape != want.shape:
            raise GankitError(f"ONNX export of {run_name}'s {graph.name} does not match PyTorch: output of shape "
                              f"{tuple(got.shape)}, expected {tuple(want.shape)} ({where}); nothing written")
        diff = float(np.abs(got - want).max()) if got.size else 0.0
        allowed = TOL * max(1.0, float(np.abs(want).max()) if want.size else 1.0)
        if not diff <= allowed:  # NaN fails too
            raise GankitError(f"ONNX export of {run_name}'s {graph.name} does not match PyTorch: max |onnx - torch| "
                              f"{diff:.2e} > {allowed:.1e} ({where}); nothing written")
        worst = max(worst, diff)
        done.append(where)
    return worst, done


def onnx_models(run: Run, run_name: str | None = None) -> list[OnnxModel]:
    """The run's exported networks traced to ONNX and checked against PyTorch (nothing written)."""
    _need_onnx()
    name = run_name or str(run.dir)
    graphs = get_task(run.task).onnx_graphs(run.config, {k: v.to("cpu").eval() for k, v in run.nets.items()},
                                           run.data_meta)
    out = []
    for g in graphs:
        data = trace(g)
        diff, done = check(g, data, name)
        dynamic = ["batch"] + ([f"height and width (multiples of {g.multiple})" if g.multiple > 1 else
                                "height and width (any)"] if g.multiple else []) + \
            (["length (any)"] if g.length_inputs else [])
        out.append(OnnxModel(g, data, diff, done, dynamic))
    return out


def onnx_paths(out: Path, models: list[OnnxModel]) -> list[Path]:
    """`out` for one graph; `out` with the network's name before the suffix for several."""
    if len(models) == 1:
        return [out]
    return [out.with_name(f"{out.stem}.{m.graph.name}{out.suffix}") for m in models]


def write_onnx(models: list[OnnxModel], paths: list[Path]) -> None:
    """Every file whole, or none (each written to a temporary name, all renamed at the end)."""
    with ExitStack() as stack:
        for m, p in zip(models, paths):
            tmp = stack.enter_context(disk.atomic(p))
            tmp.write_bytes(m.data)


def export_onnx(run_dir_or_ckpt: str | Path, out: str | Path, ema: bool = True,
                log: Callable[[str], None] = print) -> list[Path]:
    """Write the run's inference network(s) as ONNX to `out` (.onnx; several networks: one file
    each, `OUT.G_ab.onnx`, ...) after checking onnxruntime against PyTorch; the paths written."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise GankitError(f"{out}: an ONNX export is written to a .onnx file (e.g. {out.with_suffix('.onnx').name})")
    run = Run.load(run_dir_or_ckpt, device="cpu", ema=ema)
    models = onnx_models(run, str(run_dir_or_ckpt))
    for m in models:
        for line in m.describe():
            log(line)
    paths = onnx_paths(out, models)
    write_onnx(models, paths)
    return paths
