"""The denoising task: a noisy image -> the clean image.

Data is a `gankit.data.inpaint.InpaintData` (fixed-size MNIST digits, photo crops or a folder's
crops, on the device). Each step draws a batch of clean images and corrupts them with the
configured noise (`denoise.noise`, `noise.py`) from the run's own generator, in `draw`, so the
noisy batch is part of the step's inputs (captured as one CUDA graph, resumed exactly). G is the
pix2pix U-Net; D a conditional PatchGAN on (noisy, clean or restored) pairs (`phases.py`).
"""

from __future__ import annotations

import torch

from gankit.data import BatchSampler, to_model
from gankit.data.inpaint import load_inpaint
from gankit.models.patchgan import PatchDiscriminator, layers_for
from gankit.models.unet import UNetGenerator
from gankit.tasks.base import Card, Parts, Task
from gankit.tasks.onnx_common import image_graph, pad_multiple
from gankit.tasks.restore_common import triptych
from gankit.tasks.denoise.evaluation import DenoiseEval, denoise_all, eval_levels, evaluate_denoise, held_out, \
    noisy_copy
from gankit.tasks.denoise.noise import corrupt, parse_noise
from gankit.tasks.denoise.phases import STATS, Objective, denoise_phase, restore


def generator(cfg, c: int, size: tuple[int, int]):
    return UNetGenerator(c, c, size, width=cfg.model.g_width, norm=cfg.denoise.norm)


class DenoiseTask(Task):
    name = "denoise"
    stat_names = STATS
    uses_aug_generator = False  # the noise comes from the step's inputs (st.gens["z"] in draw)

    def load_data(self, cfg, device, strict: bool = False):
        data = load_inpaint(cfg.data.source, "train", cfg.denoise.patch, strict=strict)
        data.notes.append(f"noise: {parse_noise(cfg.denoise.noise)} drawn afresh for every batch "
                          "(gankit.tasks.denoise.noise)")
        return data.to(device)

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        d = cfg.denoise
        c, h, w = data.shape
        G = generator(cfg, c, (h, w))
        D = PatchDiscriminator(2 * c, width=cfg.model.d_width, n_layers=d.d_layers or layers_for(h),
                               spectral_norm=cfg.model.spectral_norm)
        nets = {"G": G, "D": D}
        return Parts(nets=nets, groups={"G": ("G",), "D": ("D",)}, lrs={"G": cfg.train.lr_g, "D": cfg.train.lr_d},
                     objective=Objective(gan=d.gan, l1=d.l1, residual=d.residual, loss=cfg.train.loss),
                     forwards=dict(nets), ddp=False,
                     samplers={"x": BatchSampler(len(data), cfg.train.batch, cfg.seed, device)})

    def draw(self, st) -> tuple:
        """This rank's slice of the global batch: clean indices and their noisy copies (uint8),
        drawn for the whole global batch on every rank, so the stream does not depend on the
        number of processes."""
        idx = st.samplers["x"].next()  # (B_global,)
        noisy = corrupt(st.data.x[idx], st.cfg.denoise.noise, st.gens["z"])  # uint8 (B_global, C, H, W)
        s = slice(st.shard[0], sum(st.shard))
        return idx[s], noisy[s]

    def phases(self, st, inputs: tuple, flags) -> None:
        idx, noisy = inputs
        st.acc += denoise_phase(st, to_model(noisy, "image"), to_model(st.data.x[idx], "image"))

    def grid(self, cfg, data, st):
        """Fixed held-out images at the first evaluation noise level, one per row: noisy | gankit | clean."""
        x = held_out(cfg).x[:cfg.denoise.grid_examples].to(data.x.device)
        y = noisy_copy(x, eval_levels(cfg)[0])
        G = st.sampling_nets["G"]

        return triptych(G, lambda: denoise_all(G, y, cfg.denoise.residual, x.device).to(x.device), y, x)

    def evaluator(self, cfg, data, st, dist):
        return DenoiseEval(cfg, st.device, dist) if cfg.eval.every else None

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        if source is not None:
            cfg = cfg.replace(**{"data.source": source})
        return evaluate_denoise(cfg, nets["G"], device, n, featurenet, run=run, step=step)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        c, h, w = data_meta["shape"]
        return {"G": generator(cfg, c, (h, w))}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        c, h, w = data_meta["shape"]
        G = nets["G"]
        return [image_graph("G", _Restore(G, cfg.denoise.residual), {"noisy": c}, (h, w), pad_multiple(G),
                            ("one window: `gankit denoise` tiles larger images (256 px cores, 32 px context) "
                             "and blends them; tile likewise for images much larger than the training size",))]

    def card(self, cfg, data_meta: dict) -> Card:
        return Card("image-to-image", "a noisy image -> the clean image (a U-Net trained with a GAN and L1)",
                    f"Removing the noise it was trained on ({cfg.denoise.noise}) from images like "
                    "the training data.",
                    "Trained on one noise model: other noise (real sensor noise, compression) is outside what it "
                    "learned, and a GAN restoration can invent detail that was not in the scene; do not use it "
                    "where the exact content matters (medicine, evidence).")

    def describe_data(self, data) -> list[str]:
        c, h, w = data.shape
        return [f"data: {data.name}: {len(data)} images of {c}x{h}x{w}"] + [f"data: {n}" for n in data.notes]


class _Restore(torch.nn.Module):
    """The noisy image -> the restoration (G's residual added when denoise.residual)."""

    def __init__(self, G, residual: bool):
        super().__init__()
        self.G, self.residual = G, residual

    def forward(self, noisy):
        return restore(self.G, noisy, self.residual)


TASK = DenoiseTask()
