"""The reconstruction task: incomplete measurements -> the image.

Data is a `gankit.data.phantoms.ReconData` (float images in [0, 1] on the device). Each step
draws a batch of true images and, in `draw`, simulates their measurements with the run's model
(`measure.Measure`: sparse-view / low-dose CT sinograms, or undersampled MRI k-space) and makes
the classical reconstruction from them (FBP, zero-filled inverse FFT); the low-dose noise comes
from the run's own generator (st.gens["z"]), so the batch is part of the step's inputs and resume
is exact. G, a U-Net (pix2pix's or FBPConvNet's: recon.g_arch), corrects the classical
reconstruction, or the cascade (`cascade.py`) refines it with the measurements inside (so draw
hands the measurements of both modalities to the step); D is a conditional PatchGAN on (input,
image) pairs; MRI outputs pass the data-consistency step (`phases.py`).
"""

from __future__ import annotations

import torch

from gankit.data import BatchSampler
from gankit.data.dataset import from_model
from gankit.data.phantoms import load_recon
from gankit.errors import GankitError
from gankit.models.fbpconvnet import FBPConvNet
from gankit.models.patchgan import PatchDiscriminator, layers_for
from gankit.models.unet import UNetGenerator
from gankit.tasks.base import Card, Parts, Task
from gankit.tasks.recon.cascade import Cascade
from gankit.tasks.recon.evaluation import ReconEval, evaluate_recon, held_out_sets, measured, reconstruct
from gankit.tasks.recon.measure import Measure
from gankit.tasks.recon.phases import STATS, Objective, recon_phase
from gankit.tasks.restore_common import triptych


NETWORK = {"pix2pix": "a U-Net", "fbpconvnet": "a U-Net",
           "cascade": "a cascade of CNNs with the measurement model between them"}  # the model card's words


def generator(cfg, size: int):
    """G by recon.g_arch, model.g_width wide (pix2pix: C_w..C_8w down to 1 px; fbpconvnet: w..8w over 4 levels;
    cascade: recon.cascades blocks of recon.cascade_depth convs, any size)."""
    r = cfg.recon
    if r.g_arch == "cascade":
        return Cascade(r.modality, r.cascades, r.cascade_depth, cfg.model.g_width)
    if r.g_arch == "fbpconvnet":
        return FBPConvNet(1, 1, (size, size), width=cfg.model.g_width, norm=r.norm)
    return UNetGenerator(1, 1, (size, size), width=cfg.model.g_width, norm=r.norm)


class ReconTask(Task):
    name = "recon"
    stat_names = STATS
    uses_aug_generator = False  # the low-dose noise comes from the step's inputs (st.gens["z"] in draw)

    def load_data(self, cfg, device, strict: bool = False):
        r = cfg.recon
        data = load_recon(cfg.data.source, "train", r.size, circle_cut=r.modality == "ct")
        m = Measure.of(r)
        if m.modality == "mri":
            data.mask = m.mask_tensor()
        data.notes.append(f"measurements: {m.describe()}, simulated afresh for every batch")
        return data.to(device)

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        r = cfg.recon
        G = generator(cfg, r.size)
        D = PatchDiscriminator(2, width=cfg.model.d_width, n_layers=r.d_layers or layers_for(r.size),
                               spectral_norm=cfg.model.spectral_norm)
        nets = {"G": G, "D": D}
        dc = r.modality == "mri" and r.data_consistency
        return Parts(nets=nets, groups={"G": ("G",), "D": ("D",)}, lrs={"G": cfg.train.lr_g, "D": cfg.train.lr_d},
                     objective=Objective(gan=r.gan, l1=r.l1, residual=r.residual, dc=dc, loss=cfg.train.loss,
                                         physics=Measure.of(r) if r.g_arch == "cascade" else None),
                     forwards=dict(nets), ddp=False,
                     samplers={"x": BatchSampler(len(data), cfg.train.batch, cfg.seed, device)})

    def draw(self, st) -> tuple:
        """This rank's slice of the global batch: indices, the classical reconstructions (model
        space) and, for MRI, the measured k-space (as real/imaginary pairs, (B, 1, N, N, 2)), for
        a cascade CT run the sinograms (B, N, A); all made for the whole global batch on every
        rank, so the stream does not depend on the number of processes."""
        m = Measure.of(st.cfg.recon)
        idx = st.samplers["x"].next()  # (B_global,)
        meas = m.measure(st.data.x[idx], st.gens["z"])  # (B, N, A) sinograms or (B, 1, N, N) k-space
        y = m.classical(meas) * 2 - 1  # (B, 1, N, N) in model space
        s = slice(st.shard[0], sum(st.shard))
        if m.modality == "mri":
            return idx[s], y[s], torch.view_as_real(meas[s]).contiguous()
        if st.cfg.recon.g_arch == "cascade":
            return idx[s], y[s], meas[s]
        return idx[s], y[s]

    def phases(self, st, inputs: tuple, flags) -> None:
        idx, y = inputs[:2]
        meas = inputs[2] if len(inputs) > 2 else None  # MRI: k-space as (re, im) pairs; cascade CT: sinograms
        if meas is not None and st.cfg.recon.modality == "mri":
            meas = torch.view_as_complex(meas)
        st.acc += recon_phase(st, y, st.data.x[idx] * 2 - 1, meas)

    def grid(self, cfg, data, st):
        """Fixed held-out images, one per row: classical input | gankit | true image."""
        r = cfg.recon
        m = Measure.of(r)
        x = held_out_sets(cfg)["held_out"].x[:r.grid_examples].to(data.x.device)
        meas, y = measured(m, x)
        G = st.sampling_nets["G"]

        return triptych(G, lambda: reconstruct(G, y, meas, m, r), y, x,
                        lambda t: from_model(t.real.clamp(0, 1) * 2 - 1, "image").expand(-1, 3, -1, -1)[0])

    def evaluator(self, cfg, data, st, dist):
        return ReconEval(cfg, st.device, dist) if cfg.eval.every else None

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        if source is not None:
            cfg = cfg.replace(**{"data.source": source})
        return evaluate_recon(cfg, nets["G"], device, n, run=run, step=step)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        return {"G": generator(cfg, cfg.recon.size)}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        """CT: the FBP image -> G's estimate; MRI: with the measured k-space and mask, the
        data-consistency step in the graph (`gankit.tasks.recon.onnx`). The cascade has none: its
        physics between the blocks (radon and FBP, or the FFT per block) is not in the graph."""
        if cfg.recon.g_arch == "cascade":
            raise GankitError("recon.g_arch = cascade has no ONNX export: its blocks run the measurement model "
                              "between the CNNs (radon and FBP for CT, the FFT for MRI), which the ONNX graph does not "
                              "hold; export without --onnx and reconstruct with `gankit recon`")
        from gankit.tasks.recon.onnx import recon_graphs

        return recon_graphs(cfg, nets["G"])

    def card(self, cfg, data_meta: dict) -> Card:
        return Card("image-to-image", f"a classical reconstruction from incomplete measurements -> the image "
                    f"({Measure.of(cfg.recon).describe()}; {NETWORK[cfg.recon.g_arch]} trained with a GAN and L1)",
                    "Research on reconstruction from sparse-view / low-dose CT or undersampled MRI, on images like "
                    "the training data; every output is reported with its data-consistency error.",
                    "An estimate, not a measurement: a GAN can invent or remove structure that the measurements do "
                    "not determine. Not for diagnosis or any clinical use. Trained on one measurement model; other "
                    "views, doses, masks or anatomy are outside what it learned.")

    def describe_data(self, data) -> list[str]:
        _, h, w = data.shape
        return [f"data: {data.name}: {len(data)} images of 1x{h}x{w}"] + [f"data: {n}" for n in data.notes]


TASK = ReconTask()
