"""Evaluation during training (`eval.every`): metrics rows in metrics.jsonl, metrics.png, and
``checkpoints/best.pt`` kept by FID."""

from __future__ import annotations

import torch

from gankit import viz
from gankit.config import RunConfig
from gankit.data import Dataset, from_model
from gankit.errors import GankitError
from gankit.models.latent import draw_latent


class InTrainingEval:
    def __init__(self, cfg: RunConfig, data: Dataset, n_classes: int, device: torch.device):
        from gankit.metrics.evaluate import Evaluator  # torchmetrics loads only when asked for

        if data.kind != "image":
            raise GankitError("eval.every needs image data; 2-D toy runs are scored with `gankit eval RUN`")
        self.cfg, self.data, self.device = cfg, data, device
        self.n_classes = n_classes if cfg.model.conditional else 0
        self.metrics = [m for m in cfg.eval.metrics.replace(" ", "").split(",") if m]
        self.evaluator = Evaluator(cfg.eval.featurenet, device)
        self.best: dict | None = None  # {"fid": value, "step": step}

    @torch.no_grad()
    def samples(self, G: torch.nn.Module, n: int) -> torch.Tensor:
        """n samples from G in eval mode, from a fixed seed: evaluations differ only by G."""
        g = torch.Generator().manual_seed(self.cfg.seed + 4)
        was_training = G.training
        G.eval()
        out = []
        for i in range(0, n, 1000):
            m = min(1000, n - i)
            lat = draw_latent(self.cfg.model, m, g)
            y = torch.randint(self.n_classes, (m,), generator=g).to(self.device) if self.n_classes else None
            out.append(from_model(G(lat.z_in.to(self.device), y), "image").cpu())
        G.train(was_training)
        return torch.cat(out)

    def run(self, G: torch.nn.Module, step: int, art, run_name: str) -> bool:
        """Evaluate, log, plot; True when FID improved on the best so far."""
        result = self.evaluator.evaluate(self.samples(G, self.cfg.eval.n), self.metrics, self.cfg.eval.ref,
                                         seed=self.cfg.seed, run=run_name, step=step)
        row = {"step": step, "eval": True}
        for k, v in result.items():
            if k == "kid":
                row["kid"], row["kid_std"] = v["mean"], v["std"]
            elif k == "stacked":
                row["stacked_modes"], row["stacked_kl"] = v["modes"], v["kl"]
            elif k != "protocol":
                row[k] = v
        row["protocol"] = result["protocol"]
        art.log(row)
        viz.plot_metrics(art.metrics, art.out / "metrics.png")
        if "fid" in result and (self.best is None or result["fid"] < self.best["fid"]):
            self.best = {"fid": result["fid"], "step": step}
            return True
        return False
