"""How good a text run's samples are, in Texygen's protocol (Zhu et al. 2018), beside real text.

    nll          held-out lines' negative log-likelihood under G, nats per token (the tokens and
                 each line's <eos>), teacher-forced: the MLE objective on unseen lines
    bleu2..5     mean BLEU-n of each sample against all held-out lines (quality; higher is better)
    self_bleu2..5  mean BLEU-n of each sample against the other samples (diversity; lower is more
                 diverse)
    unique       distinct samples / samples;  novel: samples not among the training lines
    real         the same scores for training lines in place of samples: what real text gets

A SMILES run (text.kind smiles) is scored by MOSES's metrics instead of BLEU
(`gankit.metrics.molecules`: valid, unique@1k / @10k, novelty against MOSES's training set or the
run's training lines, internal diversity, FCD against MOSES's test statistics or the held-out
lines), beside the same scores of real training molecules.

BLEU is on words (whitespace-split) whatever the model's tokens, so character and word runs
compare; `gankit.metrics.text` computes it as NLTK's sentence_bleu with method1 smoothing. Each
temperature in text.eval_temperatures gets its own samples and scores: the quality-diversity
curve of Caccia et al. (2020), on which GANs are compared with MLE.
"""

from __future__ import annotations

import random

import torch

from gankit.data.corpus import load_text
from gankit.data.text import Vocab
from gankit.errors import GankitError
from gankit.metrics.text import bleu, self_bleu
from gankit.tasks.base import HeldOutEval
from gankit.util import eval_mode

ORDERS = (2, 3, 4, 5)


def held_out(cfg, vocab: Vocab, classes: list[str], source: str | None = None):
    """The held-out lines of the run's source (or of `source`; `NAME:train` picks its training
    lines), encoded with the run's vocabulary."""
    return load_text(source or cfg.data.source, cfg.text.level, cfg.text.max_len, "test", vocab=vocab,
                     classes=classes or None, quiet=True, smiles=cfg.text.kind == "smiles")


def training_lines(cfg, vocab: Vocab, classes: list[str]) -> list[str]:
    return load_text(cfg.data.source, cfg.text.level, cfg.text.max_len, "train", vocab=vocab,
                     classes=classes or None, quiet=True, smiles=cfg.text.kind == "smiles").lines


class MoleculeRefs:
    """What SMILES samples are scored against: the training molecules for novelty (MOSES's whole
    training set for `moses`) and the FCD reference statistics (MOSES's precomputed test
    statistics for `moses`, else the held-out lines' own)."""

    def __init__(self, cfg, test_lines: list[str], train_lines: list[str], device):
        from gankit.data.corpus import moses_smiles
        from gankit.data.molecules import canonical
        from gankit.metrics.molecules import chemnet_stats, moses_test_fcd_stats

        if cfg.data.source == "moses":
            self.train = set(moses_smiles("train"))  # canonical already (checked with this RDKit)
            self.fcd_ref, self.ref = moses_test_fcd_stats(), "MOSES test set (its precomputed ChemNet statistics)"
        else:
            self.train = {c for c in map(canonical, train_lines) if c}
            self.fcd_ref = chemnet_stats(test_lines, device)
            self.ref = f"{len(test_lines)} held-out lines"


@torch.no_grad()
def heldout_nll(G, data, device, batch: int = 512) -> float | None:
    """Nats per token of `data`'s encoded lines under G (None: a LatentGAN has no likelihood)."""
    if not hasattr(G, "nll"):
        return None
    total, count = 0.0, 0
    for i in range(0, len(data), batch):
        ids = data.ids[i:i + batch].to(device)
        y = None if data.y is None or G.topic is None else data.y[i:i + batch].to(device)
        s, c = G.nll(ids, y)
        total, count = total + float(s), count + int(c)
    return total / max(count, 1)


@torch.no_grad()
def sample_lines(G, vocab: Vocab, n: int, length: int, temperature: float, seed: int, device,
                 n_classes: int = 0, label: int | None = None, batch: int = 1000) -> list[str]:
    """n decoded samples; a topic-conditional G draws its topics uniformly (or `label`)."""
    g = torch.Generator(device=device).manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        b = min(batch, n - i)
        y = None
        if n_classes:
            y = torch.full((b,), label, device=device) if label is not None else \
                torch.randint(n_classes, (b,), device=device, generator=g)
        out += [vocab.decode(s) for s in G.sample(b, length, temperature, y, g).cpu()]
    return out


def text_scores(samples: list[str], refs: list[list[str]], train: set[str]) -> dict:
    toks = [s.split() for s in samples]
    keep = [t for t in toks if t]  # an empty line has no n-grams: BLEU 0 (counted), self-BLEU needs some
    r = {f"bleu{k}": bleu(toks, refs, k) for k in ORDERS}
    r.update({f"self_bleu{k}": self_bleu(keep, k) if len(keep) > 1 else 0.0 for k in ORDERS})
    r["unique"] = len(set(samples)) / max(len(samples), 1)
    r["novel"] = sum(s not in train for s in samples) / max(len(samples), 1)
    return r


def evaluate_text(cfg, G, vocab: Vocab, classes: list[str], device="cpu", n: int = 1000,
                  temperatures=None, source: str | None = None, seed: int = 0, baselines: bool = True,
                  run: str | None = None, step: int | None = None, loaded: tuple | None = None) -> dict:
    """Scores of G's samples at each temperature, the held-out NLL, and real text's scores.
    `loaded`: (held-out TextData, training lines) as already read, so that evaluations during
    training do not read the corpus again each time."""
    if n < 2:
        raise GankitError(f"--n {n}: text scores need at least 2 samples")
    test, train_lines = loaded or (held_out(cfg, vocab, classes, source), training_lines(cfg, vocab, classes))
    if cfg.text.kind == "smiles":
        from gankit.metrics.molecules import moses_scores

        refs = MoleculeRefs(cfg, test.lines, train_lines, device)

        def score(samples, real=False):
            return moses_scores(samples, None if real else refs.train, refs.fcd_ref, device)

        metric = (f"MOSES: valid, unique@k, novelty vs the training molecules, IntDiv1 (Morgan r2 1024), FCD "
                  f"(fcd_torch ChemNet) vs {refs.ref}; NLL nats/token held-out")
    else:
        refs_tok, train = [ln.split() for ln in test.lines], set(train_lines)

        def score(samples, real=False):
            r = text_scores(samples, refs_tok, train)
            if real:
                r["novel"] = 0.0
            return r

        metric = "BLEU-n (NLTK sentence_bleu, method1, words) vs held-out lines; self-BLEU-n; NLL nats/token held-out"
    with eval_mode(G):
        nll = heldout_nll(G, test, device)
        res: dict = {} if nll is None else {"nll": nll}
        n_classes = len(classes) if G.topic is not None else 0
        for t in temperatures or cfg.text.eval_temperatures:
            samples = sample_lines(G, vocab, n, cfg.text.max_len + 1, t, seed, device, n_classes)
            res[f"temperature {t:g}"] = score(samples)
    if baselines:
        res["real"] = score(random.Random(seed).sample(train_lines, min(n, len(train_lines))), real=True)
    res["protocol"] = {"metric": metric, "n": n, "ref": f"{test.name} ({len(test)} held-out lines)",
                       "real": f"{min(n, len(train_lines))} training lines" if baselines else None,
                       "sample_seed": seed, "run": run, "step": step}
    return res


class TextEval(HeldOutEval):
    """`eval.every`: held-out NLL and BLEU / self-BLEU at text.temperature; best by the lowest NLL."""

    key, higher = "nll", False

    def __init__(self, cfg, device, dist, vocab: Vocab, classes: list[str]):
        super().__init__(cfg, device, dist)
        if cfg.text.method == "latentgan":  # no likelihood: the best by validity (SMILES) or BLEU-4
            self.key, self.higher = ("valid" if cfg.text.kind == "smiles" else "bleu4"), True
        self.vocab, self.classes = vocab, classes
        # read once, before training (a bad source fails now, not at the first evaluation)
        self.test = held_out(cfg, vocab, classes)
        self.train_lines = None if cfg.text.kind == "smiles" else training_lines(cfg, vocab, classes)

    def score(self, st, step: int, run_name: str) -> dict:
        cfg, G, t = self.cfg, st.sampling_nets["G"], self.cfg.text.temperature
        n = min(cfg.eval.n, 1000)
        if cfg.text.kind == "smiles":  # the cheap part of MOSES's metrics; `gankit eval` gives the rest
            from gankit.data.molecules import is_valid

            with eval_mode(G):
                nll = heldout_nll(G, self.test, self.device)
                samples = sample_lines(G, self.vocab, n, cfg.text.max_len + 1, t, 0, self.device)
            return {**({} if nll is None else {"nll": nll}), "valid": sum(map(is_valid, samples)) / n,
                    "protocol": {"metric": "NLL nats/token held-out; RDKit validity", "n": n, "run": run_name,
                                 "step": step}}
        r = evaluate_text(cfg, G, self.vocab, self.classes, self.device, n, [t], baselines=False,
                          run=run_name, step=step, loaded=(self.test, self.train_lines))
        s = r[f"temperature {t:g}"]
        return {**{k: r[k] for k in ("nll",) if k in r}, "bleu4": s["bleu4"], "self_bleu4": s["self_bleu4"],
                "protocol": r["protocol"]}
