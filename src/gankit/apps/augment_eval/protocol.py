"""augment-eval's protocol as data: the arms, the default n and ratios, the seeds, the GAN's
preset and the budgets (`FULL`, `QUICK`). Plain values and no torch: the CLI's help reads them."""

from __future__ import annotations

from dataclasses import dataclass

ARMS = {  # key -> label; in report order
    "real": "1 real",
    "classical": "2 real + classical",
    "synth": "3 real + synthetic",
    "classical+synth": "4 real + classical + synthetic",
    "synth-only": "5 synthetic only (CAS)",
}
RATIO_ARMS = ("synth", "classical+synth")
DEFAULT_NS = (100, 500, 1000)
DEFAULT_RATIOS = (0.5, 1.0, 4.0)
GAN_SEED = 0  # one GAN per n
SYNTH_SEED = 0  # the synthetic pool of each n, drawn once
SPLIT_SEED = 0  # the stratified train/validation split of the n images
GAN_PRESET = "cgan"
GAN_BATCH = 64  # cgan's train.batch; lowered to n when n is smaller
GAN_SETS = {"model.g_width": 32, "model.d_width": 32}  # over the preset: half its widths, to fit the CPU budget


@dataclass(frozen=True)
class Recipe:
    """The classifier recipe, the same for every arm: `small_cnn` trained for a fixed number of
    Adam steps (one-cycle LR peaking at `lr`) on batches drawn uniformly with replacement from the
    arm's training pool."""

    steps: int = 400
    batch: int = 64
    lr: float = 3e-3
    width: int = 16


@dataclass(frozen=True)
class Budget:
    gan_steps: int  # GAN training steps (one D and one G update each), batch min(64, n)
    recipe: Recipe
    seeds: int  # classifier seeds 0..seeds-1
    test_n: int | None  # test images scored (None: all)


FULL = Budget(gan_steps=3000, recipe=Recipe(), seeds=3, test_n=None)
QUICK = Budget(gan_steps=4, recipe=Recipe(steps=6, batch=16), seeds=1, test_n=500)
HELP_BUDGETS = (f"default budgets: GAN preset {GAN_PRESET} with "
                + ", ".join(f"{k}={v}" for k, v in GAN_SETS.items())
                + f", {FULL.gan_steps} steps at batch min({GAN_BATCH}, n), seed {GAN_SEED}, one GAN per n; "
                f"classifier small CNN width {FULL.recipe.width}, {FULL.recipe.steps} Adam steps of batch "
                f"{FULL.recipe.batch}, one-cycle lr {FULL.recipe.lr:g}; {FULL.seeds} classifier seeds; the whole "
                f"test set. --quick: GAN {QUICK.gan_steps} steps, classifier {QUICK.recipe.steps} steps of batch "
                f"{QUICK.recipe.batch}, {QUICK.seeds} seed, {QUICK.test_n} test images (a smoke run). Measured on 2 CPU "
                "cores: n=100 6.3 min, n=1000 6.7 min (a GAN of about 2.5 min, then 45 classifiers per n)")
