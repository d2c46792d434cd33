"""`Dataset`: the whole dataset as one tensor, plus the map between storage and model space.

Images are stored as uint8 (N, C, H, W) and enter the model scaled to [-1, 1]; 2-D toy points are
stored as float32 (N, 2) in their own coordinates and enter the model divided by `scale`, so that
one tanh-output generator fits both. Conversion to the model's channels and resolution happens
once, at load time (`conform`), never per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from gankit.data.sampler import BatchSampler
from gankit.errors import GankitError
from gankit.media.images import resize_uint8


@dataclass
class Dataset:
    x: torch.Tensor  # uint8 (N, C, H, W) for images, float32 (N, 2) for points
    y: torch.Tensor | None  # int64 (N,) class labels, or None
    name: str  # the source as the user named it
    kind: Literal["image", "points"] = "image"
    classes: list[str] | None = None  # class names, index = label
    scale: float = 1.0  # points only: model space = x / scale
    notes: list[str] = field(default_factory=list)  # what loading skipped, resized or converted
    # x-flips: the sampler's index space is [0, 2N), index i >= N being image i - N mirrored
    # (`take`); the images are not duplicated
    mirror: bool = False
    resident = True  # held whole on a device (gankit.data.stream.StreamData is not)

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise GankitError(f"{self.name}: {len(self.x)} images but {len(self.y)} labels")
        if len(self.x) == 0:
            raise GankitError(f"{self.name}: the dataset is empty")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (C, H, W) or (2,)."""
        return tuple(self.x.shape[1:])

    @property
    def indices(self) -> int:
        """Size of the index space a sampler draws from: N, or 2N mirrored."""
        return len(self) * (2 if self.mirror else 1)

    def sampler(self, batch: int, seed: int, device):
        """The run's batch sampler over this set's indices (checkpointed)."""
        return BatchSampler(self.indices, batch, seed, device)

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """The stored examples at sampler indices `idx` (on x's device), mirrored ones flipped."""
        if not self.mirror:
            return self.x[idx]
        n = len(self)
        x = self.x[idx % n]
        return torch.where((idx >= n).view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)

    def labels(self, idx: torch.Tensor) -> torch.Tensor:
        """The labels at sampler indices `idx`."""
        return self.y[idx % len(self)] if self.mirror else self.y[idx]

    def read(self, idx) -> torch.Tensor:
        """The examples at sampler indices `idx`, on the CPU (previews, grids, references): the
        same call on a streaming set decodes them."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        return self.take(idx.to(self.x.device)).cpu()

    def meta(self) -> dict:
        """What a trained model needs to know about its data (stored in checkpoints)."""
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape),
                "scale": self.scale, "classes": self.classes}

    def to(self, device: torch.device | str) -> Dataset:
        self.x = self.x.to(device)
        self.y = None if self.y is None else self.y.to(device)
        return self

    def to_model(self, xb: torch.Tensor) -> torch.Tensor:
        """Storage -> model space: uint8 images to float in [-1, 1]; points divided by scale."""
        return to_model(xb, self.kind, self.scale)

    def conform(self, resolution: int | None, channels: int | None) -> Dataset:
        """Convert the stored images, once, to the model's channels and square resolution."""
        if self.kind != "image":
            return self
        c, h, w = self.shape
        if channels is not None and channels != c:
            self.x = convert_channels(self.x, channels)
            self.notes.append(f"converted {c} -> {channels} channels")
        if resolution is not None and (h, w) != (resolution, resolution):
            self.x = resize_uint8(center_crop_square(self.x), resolution)
            self.notes.append(f"resized {h}x{w} -> {resolution}x{resolution}")
        return self


def to_model(xb: torch.Tensor, kind: str, scale: float = 1.0) -> torch.Tensor:
    """Storage -> model space, in torch's default float dtype (float32; float64 for reference runs)."""
    dtype = torch.get_default_dtype()
    if kind == "image":
        return xb.to(dtype).div_(127.5).sub_(1.0)  # [0, 255] -> [-1, 1]
    return xb.to(dtype) / scale


def from_model(t: torch.Tensor, kind: str, scale: float = 1.0) -> torch.Tensor:
    """Model space -> storage: images to uint8 (rounded, clamped), points multiplied by scale."""
    if kind == "image":
        return ((t.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return t.float() * scale


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) between 1 and 3 channels (ITU-R 601 luma for colour to grey)."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
        return (x.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    raise GankitError(f"cannot convert {c}-channel images to {channels} channels; use 1 or 3")


def center_crop_square(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return x[..., top:top + s, left:left + s]
