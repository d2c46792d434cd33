"""The inpainting task: an image with a hole -> the image completed (image repair; a partial
scan completed).

Data is a `gankit.data.inpaint.InpaintData`: fixed-size images on the device, and a pool of
`MASK_POOL` holes of the configured kind (`inpaint.mask`, `gankit.data.masks`) drawn once from
the run's seed, so a step is an index into each (captured as one CUDA graph, resumed exactly).
Each step pairs a random batch of images with a random batch of holes. G is the pix2pix U-Net on
(image with the hole zeroed, mask); D an SN-PatchGAN on (completed image, mask) (`phases.py`).
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.data import BatchSampler, to_model
from gankit.data.inpaint import load_inpaint
from gankit.data.masks import parse_mask_kind
from gankit.models.patchgan import PatchDiscriminator, layers_for
from gankit.models.unet import UNetGenerator
from gankit.tasks.base import Card, Parts, Task
from gankit.tasks.onnx_common import image_graph, pad_multiple
from gankit.tasks.inpaint.evaluation import InpaintEval, complete, damaged_view, evaluate_inpaint, fixed_masks, held_out
from gankit.tasks.inpaint.phases import STATS, Objective, fill, inpaint_phase
from gankit.tasks.restore_common import triptych

MASK_POOL = 4000  # holes drawn once per run: at 64 px, 16 MB of bools
MASK_SEED = 7919  # added to the run's seed, so holes and images are drawn from different streams


def generator(cfg, c: int, size: tuple[int, int]):
    return UNetGenerator(c + 1, c, size, width=cfg.model.g_width, norm=cfg.inpaint.norm)


class InpaintTask(Task):
    name = "inpaint"
    stat_names = STATS

    def load_data(self, cfg, device, strict: bool = False):
        data = load_inpaint(cfg.data.source, "train", cfg.inpaint.patch, strict=strict)
        kind = parse_mask_kind(cfg.inpaint.mask)
        _, h, w = data.shape
        data.masks = kind.sample(MASK_POOL, h, w, np.random.default_rng(cfg.seed + MASK_SEED))
        data.notes.append(f"holes ({cfg.inpaint.mask}): {MASK_POOL} masks drawn once (seed {cfg.seed} + {MASK_SEED}), "
                          f"mean area {float(data.masks.float().mean()):.1%}; {kind.describe()}")
        return data.to(device)

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        t = cfg.inpaint
        c, h, w = data.shape
        G = generator(cfg, c, (h, w))
        D = PatchDiscriminator(c + 1, width=cfg.model.d_width, n_layers=t.d_layers or layers_for(h), norm=t.d_norm,
                               spectral_norm=cfg.model.spectral_norm)
        nets = {"G": G, "D": D}
        return Parts(nets=nets, groups={"G": ("G",), "D": ("D",)}, lrs={"G": cfg.train.lr_g, "D": cfg.train.lr_d},
                     objective=Objective(gan=t.gan, l1_hole=t.l1_hole, l1_valid=t.l1_valid, loss=cfg.train.loss),
                     forwards=dict(nets), ddp=False,
                     samplers={"x": BatchSampler(len(data), cfg.train.batch, cfg.seed, device),
                               "m": BatchSampler(len(data.masks), cfg.train.batch, cfg.seed + MASK_SEED, device)})

    def draw(self, st) -> tuple:
        s = slice(st.shard[0], sum(st.shard))
        return st.samplers["x"].next()[s], st.samplers["m"].next()[s]

    def phases(self, st, inputs: tuple, flags) -> None:
        idx, midx = inputs
        st.acc += inpaint_phase(st, to_model(st.data.x[idx], "image"), st.data.masks[midx])

    def grid(self, cfg, data, st):
        """Fixed held-out images with fixed holes, one per row: damaged | gankit | original."""
        test = held_out(cfg)
        n = cfg.inpaint.grid_examples
        x = test.x[:n].to(data.x.device)
        masks = fixed_masks("mixed", len(x), *x.shape[-2:]).to(x.device)
        G = st.sampling_nets["G"]

        return triptych(G, lambda: complete(G, x, masks, x.device), damaged_view(x, masks), x)

    def evaluator(self, cfg, data, st, dist):
        return InpaintEval(cfg, st.device, dist) if cfg.eval.every else None

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        if source is not None:
            cfg = cfg.replace(**{"data.source": source})
        return evaluate_inpaint(cfg, nets["G"], device, n, featurenet, run=run, step=step)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        c, h, w = data_meta["shape"]
        return {"G": generator(cfg, c, (h, w))}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        c, h, w = data_meta["shape"]
        G = nets["G"]
        return [image_graph("G", _Complete(G), {"image": c, "mask": 1}, (h, w), pad_multiple(G),
                            ("mask: float32 (N, 1, H, W), 1 in the hole and 0 where the image is known; the output "
                             "keeps the known pixels and G's fill in the hole",), masks=("mask",))]

    def card(self, cfg, data_meta: dict) -> Card:
        return Card("image-to-image", "an image with a hole, and the hole's mask -> the image completed",
                    "Filling holes (removed objects, damaged regions) in images like the training "
                    "data, with the mask kinds it was trained on.",
                    "It invents plausible content, not the true one; holes larger than or unlike its training masks, "
                    "and images unlike its training data, fill poorly. Do not use it to restore evidence.")

    def describe_data(self, data) -> list[str]:
        c, h, w = data.shape
        return [f"data: {data.name}: {len(data)} images of {c}x{h}x{w}"] + [f"data: {n}" for n in data.notes]


class _Complete(torch.nn.Module):
    """(image, 0/1 mask) -> the composite: G's output in the hole, the image elsewhere."""

    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, image, mask):
        return fill(self.G, image, mask > 0.5)[1]


TASK = InpaintTask()
