"""Baselines for the memorisation check on lfw: a 'generator' that copies its training faces
(each sample a training face plus Gaussian noise of std 4 grey levels) and one that 'generates'
the held-out faces (new real faces), both 10,000 samples at 32 px, written as .npz for gankit eval:

    .venv/bin/python benchmarks/memorization_baselines.py DIR
    gankit eval DIR/copies.npz --metrics memorization --train lfw --held-out lfw:test --json DIR/copies.json
    gankit eval DIR/heldout.npz --metrics memorization --train lfw --held-out lfw:test --json DIR/heldout.json
"""
import sys
import numpy as np
from gankit.data import load_data

out = sys.argv[1]
g = np.random.default_rng(0)
train = load_data("lfw", resolution=32).x.numpy()
held = load_data("lfw:test", resolution=32).x.numpy()
idx = g.integers(0, len(train), 10_000)
copies = np.clip(train[idx].astype(np.float32) + g.normal(0, 4, (10_000, *train.shape[1:])), 0, 255).astype(np.uint8)
np.savez(f"{out}/copies.npz", x=copies)
np.savez(f"{out}/heldout.npz", x=held[g.integers(0, len(held), 10_000)])
print(train.shape, held.shape)
