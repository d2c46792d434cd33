"""The frame-interpolation task: frames t-1 and t+1 -> frame t (missing frames, higher frame rates).

Data is a `gankit.data.frames.Triplets` (prev, mid, next) on the device: `moving-mnist`, `pans`,
or a user's videos; for videos too large for that, a `gankit.data.frames.streamed.StreamedTriplets`
whose batches (with their flow warps) `draw` fetches from on-disk frame stores. G is the pix2pix
U-Net on the two neighbours (by default predicting the correction to their average), D a
temporal PatchGAN on the triplet (`phases.py`). With `interpolate.flow`, G also sees both
neighbours warped halfway by Farneback flow, fuses the two warps by a mask of its own and
corrects the result (`guide.py`, `phases.py`); its last layer then starts at zero, so training
starts from the classical flow warp.
"""

from __future__ import annotations

import torch

from gankit import viz
from gankit.util import eval_mode
from gankit.data import BatchSampler, from_model, to_model
from gankit.data.dataset import convert_channels
from gankit.data.frames import load_triplets
from gankit.data.frames.streamed import open_frames
from gankit.models.patchgan import PatchDiscriminator, layers_for
from gankit.models.unet import UNetGenerator
from gankit.tasks.base import Card, Parts, Task
from gankit.tasks.onnx_common import image_graph, pad_multiple
from gankit.tasks.interpolate.evaluation import InterpolationEval, evaluate_interpolation, held_out
from gankit.metrics.frames import halfway_warps
from gankit.tasks.interpolate.guide import model_inputs, with_warps
from gankit.tasks.interpolate.phases import STATS, Objective, interpolate_phase, predict


def _generator(cfg, c: int, size: tuple[int, int]):
    flow = cfg.interpolate.flow
    # with flow: 4C in (prev, next, their warps), C + 1 out (the correction, the fusion mask)
    G = UNetGenerator((4 if flow else 2) * c, c + flow, size, width=cfg.model.g_width, norm=cfg.interpolate.norm)
    if flow:  # G(x) = 0 at the start: the prediction starts as the flow warp itself
        torch.nn.init.zeros_(G.out.weight)
        torch.nn.init.zeros_(G.out.bias)
    return G


class InterpolateTask(Task):
    name = "interpolate"
    stat_names = STATS

    def load_data(self, cfg, device, strict: bool = False):
        d, flow = cfg.data, cfg.interpolate.flow
        data, why = open_frames(d.source, d.resolution, device, d.load, d.memory_budget, d.workers, d.prefetch,
                                halfway_warps if flow else None, strict)
        if data is not None:  # streamed: the workers warp each batch
            return data
        data = load_triplets(d.source, "train", d.resolution, strict=strict)
        if why:  # a user's videos: why in memory
            data.notes.insert(0, why)
        return (with_warps(data) if flow else data).to(device)

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        t = cfg.interpolate
        c, h, w = data.meta()["shape"]
        G = _generator(cfg, c, (h, w))
        D = PatchDiscriminator(3 * c, width=cfg.model.d_width, n_layers=t.d_layers or layers_for(h), norm=t.norm,
                               spectral_norm=cfg.model.spectral_norm)
        nets = {"G": G, "D": D}
        return Parts(nets=nets, groups={"G": ("G",), "D": ("D",)}, lrs={"G": cfg.train.lr_g, "D": cfg.train.lr_d},
                     objective=Objective(gan=t.gan, l1=t.l1, residual=t.residual), forwards=dict(nets), ddp=False,
                     samplers={"x": BatchSampler(len(data), cfg.train.batch, cfg.seed, device)})

    def draw(self, st) -> tuple:
        """This rank's slice of the batch: (B,) indices into resident triplets; a streamed set's
        triplets instead, fetched here: uint8 (prev, mid, next), with flow float16 (warp_prev, warp_next)."""
        s, sampler = slice(st.shard[0], sum(st.shard)), st.samplers["x"]
        if st.data.resident:
            return (sampler.next()[s],)
        pos = sampler.consumed
        return st.data.fetch(sampler, pos, sampler.next()[s], st.shard)

    def phases(self, st, inputs: tuple, flags) -> None:
        if len(inputs) == 1:  # indices into the triplets on the device
            (idx,), d = inputs, st.data
            inputs = (d.prev[idx], d.mid[idx], d.next[idx])
            if d.warp_prev is not None:
                inputs += (d.warp_prev[idx], d.warp_next[idx])
        prev, mid, nxt, *warps = (to_model(x, "image") for x in inputs)
        st.acc += interpolate_phase(st, prev, mid, nxt, tuple(warps) if warps else None)

    def grid(self, cfg, data, st):
        """Fixed held-out triplets, one per row: previous | blend | gankit | true middle | next."""
        n = cfg.interpolate.grid_examples
        test = held_out(cfg, limit=n)
        prev, mid, nxt = (t[:n].to(st.device) for t in (test.prev, test.mid, test.next))
        inputs = model_inputs(prev, nxt, cfg.interpolate.flow, st.device)  # warped once, not per grid
        G = st.sampling_nets["G"]

        @torch.no_grad()
        def write(step: int, path):
            with eval_mode(G):
                pred = from_model(predict(G, *inputs[:2], cfg.interpolate.residual, inputs[2]), "image")
            blend = ((prev.float() + nxt.float()) / 2).round().to(torch.uint8)
            cells = torch.stack([convert_channels(t[i:i + 1], 3)[0] for i in range(len(mid))
                                 for t in (prev, blend, pred, mid, nxt)])
            return viz.save_grid(cells, path, nrow=5)

        return write

    def evaluator(self, cfg, data, st, dist):
        return InterpolationEval(cfg, st.device, dist) if cfg.eval.every else None

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        if source is not None:
            cfg = cfg.replace(**{"data.source": source})
        return evaluate_interpolation(cfg, nets["G"], device, n, run=run, step=step)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        c, h, w = data_meta["shape"]
        return {"G": _generator(cfg, c, (h, w))}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        c, h, w = data_meta["shape"]
        G, icfg = nets["G"], cfg.interpolate
        inputs = {"prev": c, "next": c}
        notes = ["prev, next: the frames before and after the one to make"]
        if icfg.flow:
            inputs.update(warp_prev=c, warp_next=c)
            notes.append("warp_prev, warp_next: prev and next warped halfway towards each other by Farneback "
                         "optical flow (OpenCV), computed outside the graph as gankit.metrics.frames.halfway_warps "
                         "does, then scaled to [-1, 1] like the frames")
        return [image_graph("G", _Middle(G, icfg.residual, icfg.flow), inputs, (h, w), pad_multiple(G), tuple(notes))]

    def card(self, cfg, data_meta: dict) -> Card:
        warps = " and their halfway flow warps" if cfg.interpolate.flow else ""
        return Card(None, f"two neighbouring video frames{warps} -> the frame between them",
                    "Making the frame between two video frames (slow motion, frame-rate conversion) for "
                    "footage like the training clips.",
                    "Fast or large motion, occlusions and content unlike the training clips give blur or ghosts; "
                    "the in-between frames are guesses, not recordings.")

    def describe_data(self, data) -> list[str]:
        c, h, w = data.meta()["shape"]
        return [f"data: {data.name}: {len(data)} triplets of {c}x{h}x{w}"] + [f"data: {n}" for n in data.notes]


class _Middle(torch.nn.Module):
    """(prev, next[, warp_prev, warp_next]) -> the middle frame, as `predict` makes it."""

    def __init__(self, G, residual: bool, flow: bool):
        super().__init__()
        self.G, self.residual, self.flow = G, residual, flow

    def forward(self, prev, next_, *warps):
        return predict(self.G, prev, next_, self.residual, tuple(warps) if self.flow else None)


TASK = InterpolateTask()
