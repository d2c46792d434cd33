"""Evaluation during training (`eval.every`): metrics rows in metrics.jsonl, metrics.png, and
``checkpoints/best.pt`` kept by FID."""

from __future__ import annotations

import torch

from gankit.config import RunConfig
from gankit.data import Dataset, from_model
from gankit.errors import GankitError
from gankit.models.latent import draw_latent
from gankit.tasks.generate.sampling import GEN_PIXELS
from gankit.metrics.evaluate import Evaluator


CHUNK = 1000  # samples per generator call; chunk i is drawn from seed (seed + 4, i)


class InTrainingEval:
    def __init__(self, cfg: RunConfig, data: Dataset, n_classes: int, device: torch.device,
                 dist):
        if data.kind != "image":
            raise GankitError("eval.every needs image data; 2-D toy runs are scored with `gankit eval RUN`")
        self.cfg, self.data, self.device = cfg, data, device
        self.gen_batch = max(1, GEN_PIXELS // (data.shape[-1] * data.shape[-2]))  # images per G call: 1024 at 64 px
        self.dist = dist  # gankit.training.distributed.Dist: this process's place in the job
        self.n_classes = n_classes if cfg.model.conditional else 0
        self.metrics = [m for m in cfg.eval.metrics.replace(" ", "").split(",") if m]
        self.evaluator = Evaluator(cfg.eval.featurenet, device) if self.dist.is_main else None
        self.best: dict | None = None  # {"fid": value, "step": step}

    @torch.no_grad()
    def samples(self, G: torch.nn.Module, n: int) -> torch.Tensor | None:
        """n samples from G in eval mode, from fixed seeds: evaluations differ only by G. In a
        data-parallel job each rank draws every world-th chunk and rank 0 gathers them (None
        elsewhere); the samples are the same whatever the number of processes."""
        was_training = G.training
        G.eval()
        mine = {}
        for c, i in enumerate(range(0, n, CHUNK)):
            if c % self.dist.world != self.dist.rank:
                continue
            m = min(CHUNK, n - i)
            g = torch.Generator().manual_seed((self.cfg.seed + 4) * 1_000_003 + c)
            lat = draw_latent(self.cfg.model, m, g)
            y = torch.randint(self.n_classes, (m,), generator=g).to(self.device) if self.n_classes else None
            z = lat.z_in.to(self.device)
            # the chunk's latents as drawn, through G a few at a time at large sizes (one call up to 64 px)
            k = self.gen_batch
            mine[c] = torch.cat([from_model(G(z[j:j + k], None if y is None else y[j:j + k]), "image").cpu()
                                 for j in range(0, m, k)])
        G.train(was_training)
        parts = self.dist.gather(mine)
        if parts is None:
            return None
        chunks = {c: x for part in parts for c, x in part.items()}
        return torch.cat([chunks[c] for c in sorted(chunks)])

    def run(self, st, step: int, art, run_name: str) -> bool:
        """Evaluate the sampling generator (EMA when kept), log, plot; True when FID improved
        on the best so far (on every rank)."""
        G = st.emas["G"].G if "G" in st.emas else st.nets["G"]
        images = self.samples(G, self.cfg.eval.n)
        improved = self._score(images, step, art, run_name) if self.dist.is_main else None
        return bool(self.dist.broadcast(improved))

    def _score(self, images: torch.Tensor, step: int, art, run_name: str) -> bool:
        result = self.evaluator.evaluate(images, self.metrics, self.cfg.eval.ref,
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
        art.plot_metrics()
        if "fid" in result and (self.best is None or result["fid"] < self.best["fid"]):
            self.best = {"fid": result["fid"], "step": step}
            return True
        return False
