"""The super-resolution task: LR image -> HR image (x2, x3, x4), SRResNet and SRGAN/ESRGAN.

Data is a `gankit.data.superres.SRData`: a pool of HR training patches (or whole MNIST digits)
on the device with their LR versions made once by the documented downscale
(`gankit.metrics.sr.downscale`). A step is one batch of (LR, HR) pairs through the L1 phase, or,
after superres.pretrain_steps, through the GAN phase (`phases.py`). The phase is the step's
`flags`, so each is captured as its own CUDA graph.
"""

from __future__ import annotations

import torch

from gankit import viz
from gankit.util import eval_mode
from gankit.data import BatchSampler, from_model, to_model
from gankit.data.dataset import convert_channels
from gankit.data.superres import downscale, load_sr, modcrop
from gankit.errors import GankitError
from gankit.metrics.sr import upscale
from gankit.models.srresnet import SRDiscriminator, SRResNet
from gankit.tasks.base import Card, Parts, Task
from gankit.tasks.onnx_common import image_graph
from gankit.tasks.superres.evaluation import SREval, evaluate_superres, held_out
from gankit.tasks.superres.phases import STATS, Objective, gan_phase, l1_phase


def _gan(cfg) -> bool:
    return cfg.superres.pretrain_steps is not None and cfg.superres.adv + cfg.superres.fm > 0


class SuperresTask(Task):
    name = "superres"
    stat_names = STATS

    def load_data(self, cfg, device, strict: bool = False):
        s = cfg.superres
        data = load_sr(cfg.data.source, s.scale, s.patch, "train", strict=strict).to(device)
        data.lr = downscale(data.hr, s.scale)  # (N, C, patch/s, patch/s) on the device: made once, the one operator
        return data

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        s, m = cfg.superres, cfg.model
        c = data.hr.shape[1]
        G = SRResNet(c, s.scale, width=m.g_width, n_blocks=s.g_blocks)
        nets, groups = {"G": G}, {"G": ("G",)}
        lrs = {"G": cfg.train.lr_g}
        if _gan(cfg):
            if cfg.train.loss not in ("ragan", "ns", "ls", "hinge"):
                raise GankitError(f"train.loss = {cfg.train.loss!r} for task superres; choose ragan (ESRGAN), "
                                  "ns (SRGAN), ls or hinge")
            nets["D"] = SRDiscriminator(c, width=m.d_width, size=s.patch)
            groups["D"], lrs["D"] = ("D",), cfg.train.lr_d
        obj = Objective(l1=s.l1, adv=s.adv if _gan(cfg) else 0.0, fm=s.fm if _gan(cfg) else 0.0, loss=cfg.train.loss)
        return Parts(nets=nets, groups=groups, lrs=lrs, objective=obj, forwards=dict(nets), ddp=False,
                     samplers={"x": BatchSampler(len(data.hr), cfg.train.batch, cfg.seed, device)})

    def flags(self, cfg, t: int):
        return "gan" if _gan(cfg) and t >= cfg.superres.pretrain_steps else "l1"

    def draw(self, st) -> tuple:
        s = slice(st.shard[0], sum(st.shard))
        return (st.samplers["x"].next()[s],)

    def phases(self, st, inputs: tuple, flags) -> None:
        (idx,) = inputs
        lr, hr = to_model(st.data.lr[idx], "image"), to_model(st.data.hr[idx], "image")
        st.acc += gan_phase(st, lr, hr) if flags == "gan" else l1_phase(st, lr, hr)

    def log_row(self, cfg, st, sums: dict[str, float], window: int) -> dict:
        row = {"step": st.step, "epoch": round(st.samplers["x"].epoch, 4),
               "loss_g": round(sums["loss_g"] / window, 6), "l1": round(sums["l1"] / window, 6)}
        n = sums["gan_steps"]
        if n:  # the GAN phase's scalars, averaged over its steps in the window
            row.update({k: round(sums[k] / n, 6) for k in ("loss_d", "adv_g", "fm", "d_real", "d_fake")})
        return row

    def grid(self, cfg, data, st):
        """Fixed held-out crops, one triple per cell: bicubic | gankit | HR."""
        hr = modcrop(grid_crops(cfg, data.hr.device), cfg.superres.scale)
        lr = downscale(hr, cfg.superres.scale)
        G = st.sampling_nets["G"]

        @torch.no_grad()
        def write(step: int, path):
            with eval_mode(G):
                sr = from_model(G(to_model(lr, "image")), "image")
            bic = upscale(lr.cpu(), cfg.superres.scale, "bicubic").to(hr.device)
            cells = torch.stack([convert_channels(t[i:i + 1], 3)[0] for i in range(len(hr)) for t in (bic, sr, hr)])
            return viz.save_grid(cells, path, nrow=6)

        return write

    def evaluator(self, cfg, data, st, dist):
        if not cfg.eval.every:
            return None
        return SREval(cfg, st.device, dist)

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        return evaluate_superres(cfg, nets["G"], device, source, n, featurenet, run=run, step=step)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        return {"G": SRResNet(data_meta["channels"], cfg.superres.scale, width=cfg.model.g_width,
                              n_blocks=cfg.superres.g_blocks)}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        side = data_meta["patch"] // cfg.superres.scale  # the low-resolution side it trained on
        return [image_graph("G", nets["G"], {"low": data_meta["channels"]}, (side, side), 1,
                            (f"output: {cfg.superres.scale}x the input's height and width",
                             "one window: `gankit superres` tiles images (128 px tiles, 16 px overlap) and blends "
                             "them, which bounds memory; the graph takes any size in one piece"))]

    def card(self, cfg, data_meta: dict) -> Card:
        return Card("image-to-image", f"a low-resolution image -> one {cfg.superres.scale}x larger",
                    f"Enlarging images {cfg.superres.scale}x, for images degraded as its training "
                    "pairs were (the low-resolution input made from the high one by the same downscaling).",
                    "Detail it adds is invented to look plausible, not recovered; real-world degradations (blur, "
                    "noise, compression) unlike its training pairs are outside what it learned. Not for "
                    "identification or any use where the exact content matters.",
                    gan_start=cfg.superres.pretrain_steps if _gan(cfg) else None)

    def describe_data(self, data) -> list[str]:
        m = data.meta()
        return [f"data: {data.name}: {len(data.hr)} HR examples of {m['channels']}x{data.patch}x{data.patch}, "
                f"x{data.scale}"] + [f"data: {n}" for n in data.notes]

    def blockers(self, cfg) -> list[str]:
        return []


def grid_crops(cfg, device, n: int = 6) -> torch.Tensor:
    """n HR crops of superres.patch from the held-out split (the same at every grid)."""
    s = cfg.superres
    test = held_out(cfg)
    p = s.patch
    crops = []
    for img in test:
        c, h, w = img.shape
        if h >= p and w >= p:
            crops.append(img[:, (h - p) // 2:(h - p) // 2 + p, (w - p) // 2:(w - p) // 2 + p])
        if len(crops) == n:
            break
    if not crops:
        raise GankitError(f"{cfg.data.source}: no held-out image is as large as superres.patch {p}")
    return torch.stack(crops).to(device)


TASK = SuperresTask()
