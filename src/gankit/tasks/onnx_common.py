"""What the image tasks share for `gankit export --onnx` (`Task.onnx_graphs`): example inputs in
model space and the notes every image graph carries."""

from __future__ import annotations

import torch
from torch import nn

from gankit.tasks.base import OnnxGraph

IMAGE_NOTE = ("images in model space: float32 (N, C, H, W) in [-1, 1], x / 127.5 - 1 from uint8; "
              "the output likewise, (y + 1) * 127.5 rounded and clipped to 0..255")


def image_graph(name: str, module: nn.Module, inputs: dict[str, int], size: tuple[int, int],
                multiple: int | None, notes: tuple[str, ...] = (), masks: tuple[str, ...] = ()) -> OnnxGraph:
    """An image -> image graph: `inputs` maps each input name to its channels; the names in
    `masks` are 0/1 masks (1 = the hole), the rest images in [-1, 1]."""

    def example(n: int, hw: tuple[int, int] | None, gen: torch.Generator) -> dict[str, torch.Tensor]:
        h, w = hw or size
        out = {}
        for k, c in inputs.items():
            if k in masks:  # a box hole in each example, where G has to invent
                m = torch.zeros(n, c, h, w)
                for i in range(n):
                    y0, x0 = (int(torch.randint(max(1, s // 2), (1,), generator=gen)) for s in (h, w))
                    m[i, :, y0:y0 + h // 3 + 1, x0:x0 + w // 3 + 1] = 1.0
                out[k] = m
            else:
                out[k] = torch.rand(n, c, h, w, generator=gen) * 2 - 1
        return out

    return OnnxGraph(name, module.eval(), example, output="output", size=size, multiple=multiple,
                     image_inputs=tuple(inputs), notes=(IMAGE_NOTE, *notes))


def unet_multiple(G: nn.Module) -> int:
    """The side step of a U-Net's dynamic height and width: its padding to a multiple of 2^depth
    is fixed when traced, so an ONNX graph takes sides that need none."""
    return 2 ** G.depth
