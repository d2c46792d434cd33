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
from gankit.util import eval_mode


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
        self.labels: torch.Tensor | None = None  # the last samples' classes (conditional G)
        self.metrics = [m for m in cfg.eval.metrics.replace(" ", "").split(",") if m]
        self.evaluator = Evaluator(cfg.eval.featurenet, device) if self.dist.is_main else None
        self.best: dict | None = None  # {"fid": value, "step": step}
        # the memorisation check (gankit.metrics.memorization_classes): its reference set, or why it does not run
        self.mem_ref, self.mem_why = self._memorization_reference(cfg, data) if self.dist.is_main else (None, "")
        self.mem_noted = False

    @staticmethod
    def _memorization_reference(cfg: RunConfig, data: Dataset):
        """(Reference or None, why in words): whether every evaluation checks for copies, and of what."""
        from gankit.metrics import memorization_classes as mc

        labelled = getattr(data, "y", None) is not None and bool(data.classes)
        on, why = mc.decide(cfg.eval.memorization, cfg.model.conditional, labelled, len(data) if labelled else 0)
        if not on:
            return None, why
        held = mc.held_out_for(cfg.data.source, cfg.eval.held_out)
        if held is None:
            if cfg.eval.memorization is True:
                raise GankitError(f"eval.memorization true: data source {cfg.data.source!r} has no known held-out "
                                  "split; name real images the generator never saw with eval.held_out=SOURCE")
            return None, (f"not run: {why}, but data source {cfg.data.source!r} has no known held-out split "
                          "(set eval.held_out=SOURCE to check)")
        return mc.reference(data, held, mirror=bool(getattr(data, "mirror", False))), why

    @torch.no_grad()
    def samples(self, G: torch.nn.Module, n: int) -> torch.Tensor | None:
        """n samples from G in eval mode, from fixed seeds: evaluations differ only by G. In a
        data-parallel job each rank draws every world-th chunk and rank 0 gathers them (None
        elsewhere); the samples are the same whatever the number of processes. A conditional
        G's sample classes are left in `self.labels`."""
        with eval_mode(G):
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
                x = torch.cat([from_model(G(z[j:j + k], None if y is None else y[j:j + k]), "image").cpu()
                               for j in range(0, m, k)])
                mine[c] = (x, None if y is None else y.cpu())
        parts = self.dist.gather(mine)
        if parts is None:
            return None
        chunks = {c: xy for part in parts for c, xy in part.items()}
        self.labels = None if not self.n_classes else torch.cat([chunks[c][1] for c in sorted(chunks)])
        return torch.cat([chunks[c][0] for c in sorted(chunks)])

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
        self._memorization(images, step, art, row)
        art.log(row)
        art.plot_metrics()
        if "fid" in result and (self.best is None or result["fid"] < self.best["fid"]):
            self.best = {"fid": result["fid"], "step": step}
            return True
        return False

    def _memorization(self, images: torch.Tensor, step: int, art, row: dict) -> None:
        """The memorisation check into the evaluation row (its numbers, verdict and protocol),
        its pictures into RUN/memorization/CLASS/ (the latest evaluation's), a line in train.log."""
        from gankit.metrics import memorization_classes as mc

        if self.mem_ref is None:
            row["protocol"]["memorization"] = self.mem_why
            if not self.mem_noted and self.cfg.eval.memorization == "auto" and "held-out" in self.mem_why:
                art.note(f"memorisation check {self.mem_why}", echo=True)  # a small labelled set left unchecked
            self.mem_noted = True
            return
        result = mc.check(images, self.labels, self.mem_ref, art.out / "memorization")
        row.update(mc.row_items(result))
        row["protocol"]["memorization"] = {"rule": self.mem_why, **result["protocol"]}
        art.note(f"step {step}: memorisation check: {mc.headline(result)}", echo=bool(result["copying"]))
