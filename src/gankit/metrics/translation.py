"""Scores of translated images, with their protocol.

    paired_scores(pred, target)           L1, PSNR, SSIM against the paired target
    label_accuracy(images, labels, ev)    the feature network's accuracy on translated images
                                          against the source's labels (pix2pix's FCN-score, on digits)
    domain_fid(images, ref_images, ev)    FID of translated images against the target domain

Protocol of `paired_scores`: uint8 images scaled to [0, 1], every channel; L1 = mean absolute
error; PSNR per image (data range 1), then the mean over images; SSIM with torchmetrics' defaults
(Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03), the mean over images. The feature network
(`gankit.metrics.featurenet`, trained by this project on MNIST) sees images converted to its
channels (RGB -> grey by ITU-R 601 luma) and size: its FID and accuracy are comparable only
among runs scored with the same network (its SHA-256 is in the protocol).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from gankit.data.dataset import convert_channels
from gankit.errors import GankitError
from gankit.metrics.evaluate import Evaluator, fid

PAIRED_PROTOCOL = ("uint8 -> [0, 1], all channels; PSNR per image (data range 1) then mean; "
                   "SSIM torchmetrics defaults (Gaussian 11, sigma 1.5), mean over images")


def _unit(x: Tensor) -> Tensor:
    return x.float() / 255.0


def paired_scores(pred: Tensor, target: Tensor, chunk: int = 2000) -> dict:
    """L1, PSNR, SSIM of uint8 (N, C, H, W) `pred` against `target` (same shape)."""
    if pred.shape != target.shape:
        raise GankitError(f"translated images {tuple(pred.shape)} and targets {tuple(target.shape)} differ in shape")
    l1 = psnr = ssim = 0.0
    for p, t in zip(pred.split(chunk), target.split(chunk)):
        p, t = _unit(p), _unit(t)
        l1 += float((p - t).abs().mean(dim=(1, 2, 3)).sum())
        psnr += float(peak_signal_noise_ratio(p, t, data_range=1.0, dim=(1, 2, 3), reduction="sum"))
        ssim += float(structural_similarity_index_measure(p, t, data_range=1.0, reduction="sum"))
    n = len(pred)
    return {"l1": l1 / n, "psnr": psnr / n, "ssim": ssim / n}


def label_accuracy(images: Tensor, labels: Tensor, ev: Evaluator) -> float:
    """Share of `images` the feature network classifies as `labels`."""
    logits = ev.features(images, "translated").logits
    return float((logits.argmax(1) == labels.cpu()).float().mean())


def domain_fid(images: Tensor, ref: Tensor, ev: Evaluator) -> float:
    """FID (feature network) of `images` against the reference domain's images."""
    return fid(ev.features(ref, "reference").feats, ev.features(images, "translated").feats)


def grey(x: Tensor) -> Tensor:
    return convert_channels(x, 1)


def protocol(ev: Evaluator, n: int, ref: str, **extra) -> dict:
    return {"feature_net": ev.net_name, "feature_net_sha256": ev.meta["sha256"], "n": n, "ref": ref,
            "paired": PAIRED_PROTOCOL, **extra}


@torch.no_grad()
def translate_all(G, x: Tensor, batch: int = 500) -> Tensor:
    """uint8 images through a translation generator in evaluation mode, batch by batch."""
    out = []
    for part in x.split(batch):
        y = G(part.float().div(127.5).sub(1.0))
        out.append(((y.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu())
    return torch.cat(out)
