"""The translation task: image -> image, pix2pix on paired data, CycleGAN on unpaired data.

Data is a `gankit.data.pairs.PairedData` (two domains A and B, paired or not), or for a large
folder a `gankit.data.stream_pairs.StreamedPairs` whose batches `draw` fetches. pix2pix trains one
generator G (the U-Net) and one conditional PatchGAN D; CycleGAN trains G_ab, G_ba (ResNet
generators) and D_a, D_b (PatchGANs), with an image pool per D. The maths is in `phases.py`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit import viz
from gankit.util import eval_mode
from gankit.data import BatchSampler, from_model, to_model
from gankit.data.dataset import convert_channels
from gankit.data.pairs import load_pairs, require_paired
from gankit.data.stream_pairs import open_pairs
from gankit.errors import GankitError
from gankit.models.cyclegan import ImagePool, ResnetGenerator
from gankit.models.patchgan import PatchDiscriminator, layers_for
from gankit.models.unet import UNetGenerator
from gankit.tasks.base import Card, Parts, Task
from gankit.tasks.onnx_common import image_graph, pad_multiple
from gankit.tasks.translate.evaluation import TranslationEval, evaluate_translation
from gankit.tasks.translate.phases import ADVERSARIAL, STATS, Objective, cyclegan_phase, pix2pix_phase


def domains(cfg, meta: dict) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, output shape) of pix2pix's G, from the data description and the direction."""
    a, b = tuple(meta["shape_a"]), tuple(meta["shape_b"])
    return (a, b) if cfg.translate.direction == "AtoB" else (b, a)


def _generator(cfg, c_in: int, c_out: int, size: tuple[int, int]):
    t, m = cfg.translate, cfg.model
    if t.g_arch == "unet":
        return UNetGenerator(c_in, c_out, size, width=m.g_width, norm=t.norm)
    return ResnetGenerator(c_in, c_out, width=m.g_width, n_blocks=t.g_blocks, norm=t.norm)


def _discriminator(cfg, c_in: int, side: int):
    t, m = cfg.translate, cfg.model
    return PatchDiscriminator(c_in, width=m.d_width, n_layers=t.d_layers or layers_for(side), norm=t.norm,
                              spectral_norm=m.spectral_norm)


class TranslateTask(Task):
    name = "translate"
    stat_names = STATS

    def load_data(self, cfg, device, strict: bool = False):
        d = cfg.data
        data = open_pairs(d.source, d.resolution, device, d.load, d.memory_budget, d.workers, d.prefetch)
        if data is None:  # in memory: it fits, or it cannot stream
            if d.load == "stream" and not Path(d.source).expanduser().is_dir():
                raise GankitError(f"data.load=stream: {d.source!r} cannot stream; streaming reads a folder with "
                                  "A/ + B/ (paired) or trainA/ + trainB/ (unpaired)")
            data = load_pairs(d.source, "train", d.resolution, strict=strict)
        if cfg.translate.method == "pix2pix":
            require_paired(data, "pix2pix")
        return data.to(device)

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        t = cfg.translate
        if cfg.train.loss not in ADVERSARIAL:
            raise GankitError(f"train.loss = {cfg.train.loss!r} for task translate; choose one of: "
                              f"{', '.join(ADVERSARIAL)} (pix2pix uses ns, CycleGAN ls)")
        d_loss, g_loss = ADVERSARIAL[cfg.train.loss]
        meta = data.meta()
        lrs = {"G": cfg.train.lr_g, "D": cfg.train.lr_d}
        if t.method == "pix2pix":
            (ci, hi, wi), (co, _, _) = domains(cfg, meta)
            nets = {"G": _generator(cfg, ci, co, (hi, wi)), "D": _discriminator(cfg, ci + co, hi)}
            obj = Objective(d_loss, g_loss, gan=t.gan, l1=t.l1)
            return Parts(nets=nets, groups={"G": ("G",), "D": ("D",)}, lrs=lrs, objective=obj,
                         forwards=dict(nets), ddp=False,
                         samplers={"x": BatchSampler(len(data.a), cfg.train.batch, cfg.seed, device)})
        (ca, ha, wa), (cb, _, _) = tuple(meta["shape_a"]), tuple(meta["shape_b"])
        nets = {"G_ab": _generator(cfg, ca, cb, (ha, wa)), "G_ba": _generator(cfg, cb, ca, (ha, wa)),
                "D_a": _discriminator(cfg, ca, ha), "D_b": _discriminator(cfg, cb, ha)}
        identity = t.identity * t.cycle if ca == cb else 0.0  # G_ab(b) needs b to have A's channels
        obj = Objective(d_loss, g_loss, gan=t.gan, cycle=t.cycle, identity=identity, cyclegan=True)
        pools = {name: ImagePool(t.pool, torch.Generator(device=device).manual_seed(cfg.seed + 11 + i + 7919 * rank))
                 for i, name in enumerate(("pool_a", "pool_b"))}
        return Parts(nets=nets, groups={"G": ("G_ab", "G_ba"), "D": ("D_a", "D_b")}, lrs=lrs, objective=obj,
                     forwards=dict(nets), ddp=False, extra=pools,
                     samplers={"a": BatchSampler(len(data.a), cfg.train.batch, cfg.seed, device),
                               "b": BatchSampler(len(data.b), cfg.train.batch, cfg.seed + 1, device)})

    def blockers(self, cfg) -> list[str]:
        if cfg.translate.method == "cyclegan" and cfg.translate.pool:
            return ["translate.pool: the image pool's fill phase branches on the host"]
        return []

    # -- one step -------------------------------------------------------------------------------
    def draw(self, st) -> tuple:
        """This rank's slice of each sampler's batch: (B,) indices each; a streamed set's images
        instead, uint8 (A's batch, B's batch), fetched here (a paired set's with its one sampler)."""
        s = slice(st.shard[0], sum(st.shard))
        if st.data.resident:
            return tuple(sampler.next()[s] for sampler in st.samplers.values())
        data, samplers = st.data, list(st.samplers.values())
        pos = [sm.consumed for sm in samplers]
        idx = [sm.next() for sm in samplers]
        k = len(samplers) - 1  # paired: both domains from sampler 0
        return (data.a.fetch(samplers[0], pos[0], idx[0][s], st.shard),
                data.b.fetch(samplers[k], pos[k], idx[k][s], st.shard))

    def phases(self, st, inputs: tuple, flags) -> None:
        data = st.data
        if data.resident:  # indices into the images on the device: pix2pix's one (pairs), CycleGAN's two
            ia, ib = inputs if len(inputs) == 2 else inputs * 2
            inputs = (data.a[ia], data.b[ib])
        a, b = (to_model(x, "image") for x in inputs)
        if st.obj.cyclegan:
            st.acc += cyclegan_phase(st, a, b)
            return
        x, y = (a, b) if st.cfg.translate.direction == "AtoB" else (b, a)
        st.acc += pix2pix_phase(st, x, y)

    # -- the run directory ------------------------------------------------------------------------
    def log_row(self, cfg, st, sums: dict[str, float], window: int) -> dict:
        row = {"step": st.step, "epoch": round(st.samplers[next(iter(st.samplers))].epoch, 4)}
        keep = ("loss_d", "loss_g", "gan_g", "cycle", "idt") if st.obj.cyclegan else ("loss_d", "loss_g", "gan_g", "l1")
        row.update({k: round(sums[k] / window, 6) for k in keep + ("d_real", "d_fake")})
        return row

    def grid(self, cfg, data, st):
        """Fixed held-out examples, one triple per cell: input | output | target (pix2pix), or
        a | G_ab(a) | G_ba(G_ab(a)) then b | G_ba(b) | G_ab(G_ba(b)) (CycleGAN)."""
        x_in, x_tgt = grid_examples(cfg, st.device, data)
        nets = st.sampling_nets

        @torch.no_grad()
        def write(step: int, path):
            with eval_mode(*nets.values()):
                cells = translate_triples(cfg, nets, x_in, x_tgt)
            return viz.save_grid(cells, path, nrow=6)

        return write

    def evaluator(self, cfg, data, st, dist):
        if not cfg.eval.every:
            return None
        return TranslationEval(cfg, st.device, dist)

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        return evaluate_translation(cfg, nets, n, device, featurenet, run=run, step=step, source=source)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        t = cfg.translate
        if t.method == "pix2pix":
            (ci, hi, wi), (co, _, _) = domains(cfg, data_meta)
            return {"G": _generator(cfg, ci, co, (hi, wi))}
        (ca, ha, wa), (cb, _, _) = tuple(data_meta["shape_a"]), tuple(data_meta["shape_b"])
        return {"G_ab": _generator(cfg, ca, cb, (ha, wa)), "G_ba": _generator(cfg, cb, ca, (ha, wa))}

    def exported_nets(self, cfg) -> tuple[str, ...]:
        return ("G",) if cfg.translate.method == "pix2pix" else ("G_ab", "G_ba")

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        graphs = []
        for name in self.exported_nets(cfg):
            G = nets[name]
            if cfg.translate.method == "pix2pix":
                (ci, h, w), (co, _, _) = domains(cfg, data_meta)
                what = f"{cfg.translate.direction[0]} -> {cfg.translate.direction[-1]}"
            else:
                (ca, h, w), (cb, _, _) = tuple(data_meta["shape_a"]), tuple(data_meta["shape_b"])
                ci, co = (ca, cb) if name == "G_ab" else (cb, ca)
                what = "A -> B" if name == "G_ab" else "B -> A"
            graphs.append(image_graph(name, G, {"image": ci}, (h, w), pad_multiple(G),
                                      (f"{what}: {ci} channels in, {co} out",)))
        return graphs

    def card(self, cfg, data_meta: dict) -> Card:
        return Card("image-to-image", f"an image of one domain -> the other ({cfg.translate.method})",
                    "Translating images from one domain to the other as in its training data "
                    "(for example maps to photos, day to night), for research and creative work.",
                    "It learned one pair of domains from its training images: inputs unlike them give unreliable "
                    "outputs, and a translation can add or remove content (CycleGAN is known to hide detail); not "
                    "for uses where the output must be faithful (medicine, evidence).", (cfg.translate.method,))

    def describe_data(self, data) -> list[str]:
        m = data.meta()
        kind = "paired" if data.paired else "unpaired"
        a, b = ("x".join(map(str, m["shape_a"])), "x".join(map(str, m["shape_b"])))
        return [f"data: {data.name}: {kind}, A {len(data.a)} of {a}, B {len(data.b)} of {b}"] + \
            [f"data: {n}" for n in data.notes]


def grid_examples(cfg, device, data=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first translate.grid_examples held-out examples of the source: (A, B) uint8, the
    same ones at every grid (and in every run on this data)."""
    n = cfg.translate.grid_examples
    try:
        test = load_pairs(cfg.data.source, "test", cfg.data.resolution)
    except GankitError:  # a folder without a test split: the first training examples
        if data is not None and not data.resident:  # read in place, not the whole split decoded
            return (data.a.read(list(range(min(n, len(data.a))))).to(device),
                    data.b.read(list(range(min(n, len(data.b))))).to(device))
        test = load_pairs(cfg.data.source, "train", cfg.data.resolution)
    return test.a[:n].to(device), test.b[:n].to(device)


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return convert_channels(x, 3)


def translate_triples(cfg, nets: dict, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """uint8 (3N, 3, H, W): for each example the three images of a grid cell (see `grid`)."""
    def run(G, x):
        return from_model(G(to_model(x, "image")), "image")

    if cfg.translate.method == "pix2pix":
        x, y = (a, b) if cfg.translate.direction == "AtoB" else (b, a)
        triples = [(x, run(nets["G"], x), y)]
    else:
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        ab, ba = run(nets["G_ab"], a), run(nets["G_ba"], b)
        triples = [(a, ab, run(nets["G_ba"], ab)), (b, ba, run(nets["G_ab"], ba))]
    cells = [torch.stack([_rgb(t[i:i + 1])[0] for t in triple]) for triple in triples for i in range(len(triple[0]))]
    return torch.cat(cells)


TASK = TranslateTask()
