"""Train the bundled MNIST feature network (gankit/metrics/weights/mnist-cnn.safetensors + .json).

    .venv/bin/python scripts/train_feature_net.py [--epochs N] [--out PATH]

Trains `FeatureNet` on the 60,000 MNIST training images from a fixed seed, measures top-1
accuracy on the 10,000 test images, and writes the weights with a JSON sidecar recording the
accuracy, the command, the data, the seed, the epochs and the wall time.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time

import torch

from gankit.data import load_data
from gankit.metrics.featurenet import bundled_featurenet_path, save_featurenet, train_featurenet

MIN_TEST_ACCURACY = 0.99  # the metrics' tests and docs rely on at least this


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--out", default=str(bundled_featurenet_path()), help="the .safetensors file to write")
    p.add_argument("--width", type=int, default=16, help="channels of the first conv stage (then 2x, 4x)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle learning-rate schedule")
    p.add_argument("--feat-dim", type=int, default=128, help="size of the feature layer")
    p.add_argument("--shift", type=int, default=0, help="random translation augmentation, in px")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    train, test = load_data("mnist"), load_data("mnist:test")
    t0 = time.perf_counter()
    net, meta = train_featurenet(train, test, epochs=args.epochs, lr=args.lr, seed=args.seed, width=args.width,
                                 feat_dim=args.feat_dim, shift=args.shift)
    seconds = time.perf_counter() - t0
    meta.update({
        "command": shlex.join(["scripts/train_feature_net.py", *sys.argv[1:]]),
        "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    })
    save_featurenet(net, args.out, meta)
    print(f"test accuracy {meta['test_accuracy']:.4f} in {seconds:.0f}s; wrote {args.out}")
    if meta["test_accuracy"] < MIN_TEST_ACCURACY:
        print(f"test accuracy below {MIN_TEST_ACCURACY}: do not ship these weights", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
