"""The text task: lines of text from noise, by MLE (the baseline), RelGAN or SeqGAN.

Data is a `gankit.data.corpus.TextData` (encoded lines on the device, their topics, the
vocabulary): the built-in `fortunes` corpus or a user's UTF-8 lines. G is an LSTM
(`gankit.models.text`), D a CNN over one-hot sequences. A step is one of three phases, its
`flags`: "mle" (teacher forcing: the whole of `mle`, and the pretraining of the GANs), "d"
(SeqGAN's D pretraining) and "gan" (RelGAN's or SeqGAN's adversarial update, `phases.py`).
The vocabulary is stored with the data description in every checkpoint, so sampling uses the
run's own tokens.
"""

from __future__ import annotations

import torch

from gankit import disk, viz
from gankit.data import BatchSampler
from gankit.data.corpus import load_text
from gankit.data.text import Vocab
from gankit.errors import GankitError
from gankit.models.text import CNNDiscriminator, LatentTextGenerator, LSTMEncoder, LSTMGenerator, mlp
from gankit.tasks.base import Card, Parts, Task
from gankit.tasks.text.evaluation import TextEval, evaluate_text, sample_lines
from gankit.tasks.text.phases import (STATS, Objective, ae_phase, d_phase, latent_gan_phase, mle_phase, relgan_phase,
                                     seqgan_phase)


def generator(cfg, vocab_size: int, n_classes: int):
    """G: an LSTM over tokens, or (latentgan) a noise-to-code MLP in front of an LSTM decoder."""
    t = cfg.text
    if t.method == "latentgan":
        return LatentTextGenerator(vocab_size, t.emb, t.hidden, t.layers, t.latent, cfg.model.z_dim)
    return LSTMGenerator(vocab_size, t.emb, t.hidden, t.layers, n_classes if cfg.model.conditional else 0)


def _gan(cfg) -> bool:
    return cfg.text.method != "mle"


def beta_at(cfg, t: int) -> float:
    """RelGAN's Gumbel-softmax inverse temperature at step t: beta_max ** (t_adv / N_adv)."""
    n_adv = max(cfg.train.steps - cfg.text.pretrain_steps, 1)
    frac = min(max(t - cfg.text.pretrain_steps, 0) / n_adv, 1.0)
    return float(cfg.text.beta_max ** frac)


class TextTask(Task):
    name = "text"
    stat_names = STATS

    def double_backward(self, cfg) -> bool:
        return cfg.text.method == "latentgan" and bool(cfg.reg.gp)  # WGAN-GP's penalty differentiates D's grad

    def blockers(self, cfg) -> list[str]:
        if cfg.text.objective != "none":
            return [f"text.objective={cfg.text.objective} scores molecules with RDKit on the host"]
        return []

    def load_data(self, cfg, device, strict: bool = False):
        t = cfg.text
        data = load_text(cfg.data.source, t.level, t.max_len, "train", vocab_size=t.vocab_size,
                         smiles=t.kind == "smiles")
        if cfg.model.conditional and t.method == "latentgan":
            raise GankitError("model.conditional: text.method latentgan has no topic-conditional variant; "
                              "use mle, relgan or seqgan")
        if cfg.model.conditional and not data.classes:
            raise GankitError(f"model.conditional: {cfg.data.source} has no topics; give a folder of two or more "
                              ".txt files (one topic each), or the fortunes corpus")
        return data.to(device)

    def build(self, cfg, data, device, rank: int = 0) -> Parts:
        t = cfg.text
        n_classes = len(data.classes) if cfg.model.conditional else 0
        nets = {"G": generator(cfg, len(data.vocab), n_classes)}
        groups, lrs = {"G": ("G",)}, {"G": cfg.train.lr_g}
        if t.method == "latentgan":  # the autoencoder (E, G's decoder), then the code GAN (G's mapper, D)
            nets["E"] = LSTMEncoder(len(data.vocab), t.emb, t.hidden, t.latent)
            nets["D"] = mlp((t.latent, 256, 256, 1))
            groups = {"AE": ("E", "G"), "G_adv": ("G",), "D": ("D",)}
            lrs = {"AE": cfg.train.lr_g, "G_adv": t.adv_lr, "D": cfg.train.lr_d}
        elif _gan(cfg):
            nets["D"] = CNNDiscriminator(len(data.vocab), t.emb, filters=t.d_filters, n_classes=n_classes,
                                         dropout=t.d_dropout)
            groups.update(G_adv=("G",), D=("D",))  # the adversarial phase's own Adam over G (RelGAN's)
            lrs.update(G_adv=t.adv_lr, D=cfg.train.lr_d)
            if t.method == "seqgan" and t.d_pretrain_lr is not None:  # D's pretraining at its own rate
                groups["D_pre"], lrs["D_pre"] = ("D",), t.d_pretrain_lr
        score = None
        if t.objective != "none":
            from gankit.tasks.text.objectives import SmilesObjective

            score = SmilesObjective(t.objective, data.vocab)
        obj = Objective(t.method, t.rollouts, t.rollout_every, t.latent_noise, cfg.reg.gp,
                        weight=t.objective_weight if score else 0.0, score=score,
                        d_group="D_pre" if "D_pre" in groups else "D")
        return Parts(nets=nets, groups=groups, lrs=lrs, ema=("G",) if cfg.train.ema else (), objective=obj,
                     forwards=dict(nets), ddp=False,
                     samplers={"x": BatchSampler(len(data), cfg.train.batch, cfg.seed, device)})

    def flags(self, cfg, t: int):
        if cfg.text.method == "latentgan":
            return "ae" if t < cfg.text.pretrain_steps else "gan"
        if not _gan(cfg) or t < cfg.text.pretrain_steps:
            return "mle"
        if cfg.text.method == "seqgan" and t < cfg.text.pretrain_steps + cfg.text.d_pretrain_steps:
            return "d"
        return "gan"

    def draw(self, st) -> tuple:
        s = slice(st.shard[0], sum(st.shard))
        beta = torch.tensor(beta_at(st.cfg, st.step), device=st.device)  # a 0-d input: one graph for every beta
        if st.cfg.text.method == "latentgan":  # the GAN phase: a real batch for each of the critic's updates
            k = st.cfg.train.n_critic if self.flags(st.cfg, st.step) == "gan" else 1
            return torch.stack([st.samplers["x"].next()[s] for _ in range(k)]), beta  # (k, B)
        return st.samplers["x"].next()[s], beta

    def phases(self, st, inputs: tuple, flags) -> None:
        idx, beta = inputs
        if st.obj.method == "latentgan":  # idx (n_critic, B)
            if flags == "ae":
                st.acc += ae_phase(st, st.data.ids[idx[0]])
            else:
                st.acc += latent_gan_phase(st, st.data.ids[idx])  # (n_critic, B, L + 2)
            return
        ids = st.data.ids[idx]  # (B, L + 2)
        y = st.data.y[idx] if st.nets["G"].topic is not None else None
        if flags == "mle":
            st.acc += mle_phase(st, ids, y)
        elif flags == "d":
            st.acc += d_phase(st, ids, y)
        elif st.obj.method == "relgan":
            st.acc += relgan_phase(st, ids, y, beta)
        else:
            st.acc += seqgan_phase(st, ids, y)

    def log_row(self, cfg, st, sums: dict[str, float], window: int) -> dict:
        row = {"step": st.step, "epoch": round(st.samplers["x"].epoch, 4), "phase": self.flags(cfg, st.step - 1)}
        gan, d = sums["gan_steps"], sums["d_steps"]
        mle = window - d  # every step that is not MLE updates D once
        if mle + gan:
            row["loss_g"] = round(sums["loss_g"] / (mle + gan), 6)
        if mle:
            row["nll"] = round(sums["nll"] / mle, 6)
        if d:
            keys = ("loss_d",) if cfg.text.method == "latentgan" else ("loss_d", "d_real", "d_fake")
            row.update({k: round(sums[k] / d, 6) for k in keys})
        if gan and cfg.text.method == "seqgan":
            row["reward"] = round(sums["reward"] / gan, 6)
            if cfg.text.objective != "none":  # the objective of G's whole lines, before mixing
                row[cfg.text.objective] = round(sums["objective"] / gan, 6)
        if gan and cfg.text.method == "relgan":
            row["beta"] = round(beta_at(cfg, st.step - 1), 4)
        return row

    def grid(self, cfg, data, st):
        """text.grid_lines samples at text.temperature from a fixed seed, drawn as an image (the
        report shows it) and written beside it as .txt."""
        G = st.sampling_nets["G"]
        n_classes = len(data.classes) if cfg.model.conditional else 0

        def write(step: int, path):
            lines = sample_lines(G, data.vocab, cfg.text.grid_lines, cfg.text.max_len + 1, cfg.text.temperature,
                                 cfg.seed, data.ids.device, n_classes)
            with disk.atomic(path.with_suffix(".txt")) as tmp:
                tmp.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
            img = viz.text_image([f"step {step}, temperature {cfg.text.temperature:g}:", *lines])
            return viz.save_image(img.permute(1, 2, 0).numpy(), path)

        return write

    def preview(self, cfg, data):
        return viz.text_image(data.lines[:cfg.text.grid_lines])[None]

    def evaluator(self, cfg, data, st, dist):
        return TextEval(cfg, st.device, dist, data.vocab, data.classes) if cfg.eval.every else None

    def evaluate_run(self, cfg, nets, device, n, featurenet, source, run, step, data_meta=None):
        vocab, classes = vocab_of(data_meta), (data_meta or {}).get("classes") or []
        return evaluate_text(cfg, nets["G"], vocab, classes, device, n, source=source, run=run, step=step)

    def inference_nets(self, cfg, data_meta: dict) -> dict:
        return {"G": generator(cfg, len(vocab_of(data_meta)), len(data_meta.get("classes") or []))}

    def onnx_graphs(self, cfg, nets: dict, data_meta: dict) -> list:
        raise GankitError("the text task has no ONNX export: its generator writes a line token by token, a loop "
                          "that feeds each drawn token back (random draws, a stop at the end token), not one "
                          "tensor function; export the weights alone (gankit export without --onnx)")

    def card(self, cfg, data_meta: dict) -> Card:
        return Card("text-generation", f"a line of text, drawn token by token ({cfg.text.method})",
                    "Generating short lines like the training corpus, for research on text "
                    "GANs and teaching.",
                    "Small models of one corpus: lines can be ungrammatical, repeat the corpus verbatim, or carry "
                    "its biases; not for producing text presented as fact or as a person's words.", (cfg.text.method,))

    def check_resume(self, data, saved_meta: dict, where: str) -> None:
        """The data's vocabulary must be the checkpoint's: the same ids must mean the same tokens."""
        vocab_of(saved_meta).check(data.vocab, f"{where}: resuming on {data.name}")
        if data.classes != (saved_meta.get("classes") or []):
            raise GankitError(f"{where}: resuming on {data.name}, whose {len(data.classes)} topics are not the run's "
                              f"{len(saved_meta.get('classes') or [])}")

    def describe_data(self, data) -> list[str]:
        topics = f", {len(data.classes)} topics" if data.classes else ""
        return [f"data: {data.name}: {len(data)} lines of at most {data.max_len} {data.vocab.level}s{topics}"] + \
            [f"data: {n}" for n in data.notes]


def vocab_of(data_meta: dict | None) -> Vocab:
    """The run's vocabulary from its checkpoint's data description."""
    if not data_meta or "vocab" not in data_meta:
        raise GankitError("checkpoint: no vocabulary in its data description; not a text run")
    return Vocab.from_dict(data_meta["vocab"])


TASK = TextTask()
