"""gankit: train, evaluate and apply generative adversarial networks with PyTorch.

    import gankit
    run = gankit.train(gankit.load_config("seed-mlp", overrides={"train.steps": 200}), "runs/demo")
    images = run.sample(16, seed=0)          # uint8 (16, 1, 28, 28)
    run = gankit.load("runs/demo")           # later, in another process

Importing gankit is cheap: torch loads with the first function that needs it.
"""

from gankit.version import __version__  # noqa: E402

from gankit.config import RunConfig, load_config  # noqa: E402  (no torch)
from gankit.errors import GankitError  # noqa: E402


def train(config: RunConfig, out: str = "runs/gankit", resume: bool = False, force: bool = False):
    """Train as `config` says into the run directory `out`; returns the trained `Run`.
    `resume` continues the run in `out`; `force` lets it continue with a changed config."""
    from gankit import api

    if resume:
        return api._finished(api._train(config, out, resume=True, force=force))
    return api.train(config, out)


def load(path: str, device: str = "cpu", ema: bool = True):
    """Load a run directory, a checkpoint .pt, or an exported .safetensors generator (a `Run`)."""
    from gankit import api

    return api.load(path, device=device, ema=ema)


def __getattr__(name: str):
    if name == "Run":  # gankit.Run without importing torch at `import gankit`
        from gankit.run import Run

        return Run
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")


__all__ = ["train", "load", "load_config", "Run", "RunConfig", "GankitError", "__version__"]
