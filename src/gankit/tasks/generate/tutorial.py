"""The tutorial's training loop (section 5.2, made to run), the reference `gankit bench` times the
generation task's step against (`GenerateTask.reference_loop`).

It is the loop as a user would write it from the listing: a torch DataLoader over a Dataset that
turns each uint8 image into a PIL image and back into a normalised tensor (what torchvision's
ToTensor + Normalize do), D ending in a Sigmoid with nn.BCELoss, a real and a fake backward pass
for D, a second generator forward for G, and `.item()` every step.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from gankit.models import build_models


class _PILDataset(torch.utils.data.Dataset):
    """Per-sample PIL round trip and normalisation, as torchvision's MNIST + ToTensor + Normalize."""

    def __init__(self, x: torch.Tensor):
        self.x = x.numpy()  # (N, C, H, W) uint8

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        img = Image.fromarray(self.x[i, 0] if self.x.shape[1] == 1 else self.x[i].transpose(1, 2, 0))
        t = torch.from_numpy(np.array(img, dtype=np.float32) / 255.0)  # ToTensor
        t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
        return (t - 0.5) / 0.5, 0  # Normalize((0.5,), (0.5,))


def reference_loop(cfg, data, device: torch.device):
    """The tutorial's loop (section 5.2, made to run): returns its step function."""
    torch.manual_seed(cfg.seed)
    G, D = build_models(cfg.model, data.shape)
    G, D = G.to(device), D.to(device)
    Dp = nn.Sequential(D, nn.Sigmoid())  # the listing's D ends in a Sigmoid
    criterion = nn.BCELoss()
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.train.lr_g, betas=cfg.train.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.train.lr_d, betas=cfg.train.betas)
    B = cfg.train.batch
    loader = torch.utils.data.DataLoader(_PILDataset(data.x.cpu()), batch_size=B, shuffle=True, drop_last=True)
    it = iter(loader)
    ones, zeros = torch.ones(B, device=device), torch.zeros(B, device=device)

    def step():
        nonlocal it
        try:
            images, _ = next(it)
        except StopIteration:
            it = iter(loader)
            images, _ = next(it)
        images = images.to(device)
        opt_d.zero_grad()
        loss_real = criterion(Dp(images), ones)
        loss_real.backward()
        fake = G(torch.randn(B, G.in_dim, device=device))
        loss_fake = criterion(Dp(fake.detach()), zeros)
        loss_fake.backward()
        opt_d.step()
        opt_g.zero_grad()
        fake = G(torch.randn(B, G.in_dim, device=device))  # the listing draws new noise for G
        loss_g = criterion(Dp(fake), ones)
        loss_g.backward()
        opt_g.step()
        return loss_g.item()  # the listing prints .item() values: one host sync per step

    return step
