"""`Triplets`, the frames every frame-interpolation source yields, and what the sources share:
`triplets_of` (clips -> triplets), the fixed seed per split and the help line naming them all."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gankit.errors import GankitError

FRAME_SOURCES_HELP = ("moving-mnist, moving-mnist:test, pans, pans:test, a video file (.mp4, .mov, .mkv, .avi, "
                      ".webm; its last 10% of triplets held out), or a folder of videos (a test/ subfolder holds "
                      "its held-out videos)")
SEEDS = {"train": 0, "test": 1}  # one fixed seed per split, so each split is one fixed set


@dataclass
class Triplets:
    resident = True  # held whole on a device (gankit.data.frames.streamed.StreamedTriplets is not)
    prev: torch.Tensor  # uint8 (N, C, H, W): frame t-1
    mid: torch.Tensor  # uint8 (N, C, H, W): frame t (the target)
    next: torch.Tensor  # uint8 (N, C, H, W): frame t+1
    name: str  # the source as the user named it
    notes: list[str] = field(default_factory=list)  # what loading generated, skipped, held out or resized
    sources: list[str] = field(default_factory=list)  # the photos or video files the frames come from
    # optional guides, float16 (N, C, H, W) on 0..255: prev and next each warped halfway to the
    # middle (set by the interpolate task when `interpolate.flow`; None otherwise)
    warp_prev: torch.Tensor | None = None
    warp_next: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.mid) == 0:
            raise GankitError(f"{self.name}: no frame triplets")
        if not self.prev.shape == self.mid.shape == self.next.shape or self.mid.ndim != 4:
            raise ValueError(f"Triplets: prev {tuple(self.prev.shape)}, mid {tuple(self.mid.shape)} and next "
                             f"{tuple(self.next.shape)} must be one (N, C, H, W) shape")

    def __len__(self) -> int:
        return len(self.mid)

    def to(self, device: torch.device | str) -> Triplets:
        self.prev, self.mid, self.next = self.prev.to(device), self.mid.to(device), self.next.to(device)
        if self.warp_prev is not None:
            self.warp_prev, self.warp_next = self.warp_prev.to(device), self.warp_next.to(device)
        return self

    def meta(self) -> dict:
        """What a trained model needs to know about its data (stored in checkpoints)."""
        return {"name": self.name, "shape": list(self.mid.shape[1:]), "count": len(self)}


def triplets_of(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S, T, C, H, W) clips -> (prev, mid, next), each (S * (T - 2), C, H, W): every (t-1, t, t+1)
    of each clip, clip by clip (triplet s * (T - 2) + t - 1 is centred on frame t of clip s)."""
    if clips.ndim != 5 or clips.shape[1] < 3:
        raise ValueError(f"triplets_of: clips {tuple(clips.shape)}; expected (S, T >= 3, C, H, W)")
    c, h, w = clips.shape[2:]
    return tuple(clips[:, i:clips.shape[1] - 2 + i].reshape(-1, c, h, w) for i in range(3))
