"""How well a translation run does, on held-out data (the source's test split):

pix2pix: L1 / PSNR / SSIM of G(input) against the paired target; the feature network's label
accuracy on G(input) (when the data has digit labels); FID of G(input) against the target
domain's test images.
CycleGAN: for each direction, label accuracy of the translated images against the source
images' labels, against the accuracy on the untranslated source (the identity map: pixel-level
domain adaptation, as in PixelDA); FID of the translations against the other domain.
"""

from __future__ import annotations

import torch

from gankit.data.pairs import load_pairs
from gankit.errors import GankitError
from gankit.metrics.evaluate import Evaluator
from gankit.metrics.translation import domain_fid, label_accuracy, paired_scores, protocol, translate_all
from gankit.tasks.base import HeldOutEval
from gankit.util import eval_mode


def evaluate_translation(cfg, nets: dict, n: int = 10_000, device="cpu", featurenet: str | None = None,
                         run: str | None = None, step: int | None = None, source: str | None = None) -> dict:
    """Scores of a translation run's generators (`nets`, eval mode) on `source`'s test split
    (default: the run's data), at most n examples."""
    source = source or cfg.data.source
    try:
        test = load_pairs(source, "test", cfg.data.resolution)
    except GankitError as e:
        raise GankitError(f"{source}: no held-out split to evaluate on ({e})") from None
    ev = Evaluator(featurenet, device)
    a, b = test.a[:n].to(device), test.b[:n].to(device)
    ya = None if test.y_a is None else test.y_a[:n]
    yb = None if test.y_b is None else test.y_b[:n]
    out: dict = {}
    if cfg.translate.method == "pix2pix":
        (x, y, labels) = (a, b, yb) if cfg.translate.direction == "AtoB" else (b, a, ya)
        pred = translate_all(nets["G"], x)
        out.update(paired_scores(pred, y.cpu()))
        if labels is not None:
            out["label_acc"] = label_accuracy(pred, labels, ev)
            out["label_acc_target"] = label_accuracy(y.cpu(), labels, ev)  # the real targets: the ceiling
        out["fid"] = domain_fid(pred, y.cpu(), ev)
        n_used = len(x)
    else:
        ab, ba = translate_all(nets["G_ab"], a), translate_all(nets["G_ba"], b)
        if ya is not None and yb is not None:
            out["label_acc_ab"] = label_accuracy(ab, ya, ev)
            out["label_acc_ba"] = label_accuracy(ba, yb, ev)
            out["label_acc_a_raw"] = label_accuracy(a.cpu(), ya, ev)  # the identity map
            out["label_acc_b_raw"] = label_accuracy(b.cpu(), yb, ev)
        out["fid_ab"] = domain_fid(ab, b.cpu(), ev)
        out["fid_ba"] = domain_fid(ba, a.cpu(), ev)
        n_used = min(len(a), len(b))
    out["protocol"] = protocol(ev, n_used, f"{source} test split", run=run, step=step,
                               method=cfg.translate.method)
    return out


class TranslationEval(HeldOutEval):
    """`eval.every` for translation runs; best by FID (pix2pix) or FID A->B (CycleGAN)."""

    def __init__(self, cfg, device, dist):
        super().__init__(cfg, device, dist)
        self.key = "fid" if cfg.translate.method == "pix2pix" else "fid_ab"
        try:  # fail before training starts, not at the first evaluation
            load_pairs(cfg.data.source, "test", cfg.data.resolution)
        except GankitError as e:
            raise GankitError(f"eval.every needs a held-out split of {cfg.data.source} (a test/ folder, "
                              f"testA/ + testB/, or a built-in source): {e}") from None

    def score(self, st, step: int, run_name: str) -> dict:
        nets = st.sampling_nets
        with eval_mode(*nets.values()), torch.no_grad():
            return evaluate_translation(self.cfg, nets, self.cfg.eval.n, self.device, self.cfg.eval.featurenet,
                                        run_name, step)
