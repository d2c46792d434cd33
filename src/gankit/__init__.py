"""gankit: train, evaluate and apply generative adversarial networks with PyTorch.

    import gankit
    run = gankit.train(gankit.load_config("seed-mlp", overrides={"train.steps": 200}), "runs/demo")
    images = run.sample(16, seed=0)          # uint8 (16, 1, 28, 28)
    run = gankit.load("runs/demo")           # later, in another process
"""

__version__ = "0.1.0"

from gankit.config import RunConfig, load_config  # noqa: E402
from gankit.errors import GankitError  # noqa: E402
from gankit.run import Run  # noqa: E402


def train(config: RunConfig, out: str = "runs/gankit", resume: bool = False, force: bool = False) -> Run:
    """Train as `config` says into the run directory `out`; returns the trained `Run`.
    `resume` continues the run in `out`; `force` lets it continue with a changed config."""
    from gankit.training import train as _train

    return _train(config, out, resume=resume, force=force)


def load(path: str, device: str = "cpu", ema: bool = True) -> Run:
    """Load a run directory, a checkpoint .pt, or an exported .safetensors generator."""
    return Run.load(path, device=device, ema=ema)


__all__ = ["train", "load", "load_config", "Run", "RunConfig", "GankitError", "__version__"]
