"""What the image tasks share for `gankit export --onnx` (`Task.onnx_graphs`): example inputs in
model space, the notes every image graph carries, and the padding that lets a graph take any size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.tasks.base import OnnxGraph

IMAGE_NOTE = ("images in model space: float32 (N, C, H, W) in [-1, 1], x / 127.5 - 1 from uint8; "
              "the output likewise, (y + 1) * 127.5 rounded and clipped to 0..255")


class AnySize(nn.Module):
    """`module` on inputs reflection-padded, centred, to sides that are multiples of `multiple`,
    its output cropped back: what a U-Net or ResNet generator does to its own input, but as
    tensor operations on the input's shape, which an ONNX trace keeps (the networks' own padding
    branches on Python values, which a trace fixes at the traced size). Exact for elementwise
    work around the network (a residual, a composite), which commutes with padding and cropping."""

    def __init__(self, module: nn.Module, multiple: int):
        super().__init__()
        self.module, self.multiple = module, multiple

    def forward(self, *xs: Tensor) -> Tensor:
        h, w = xs[0].shape[2], xs[0].shape[3]
        th, tw = (-h) % self.multiple, (-w) % self.multiple
        top, left = th // 2, tw // 2  # as gankit.models.unet.pad_to_multiple: the smaller half first
        y = self.module(*(F.pad(x, (left, tw - left, top, th - top), mode="reflect") for x in xs))
        return y[:, :, top:top + h, left:left + w]


def image_graph(name: str, module: nn.Module, inputs: dict[str, int], size: tuple[int, int],
                pad_multiple: int = 1, notes: tuple[str, ...] = (), masks: tuple[str, ...] = ()) -> OnnxGraph:
    """An image -> image graph of any height and width: `inputs` maps each input name to its
    channels; the names in `masks` are 0/1 masks (1 = the hole), the rest images in [-1, 1].
    `pad_multiple` > 1: the network pads its input to that multiple (`AnySize` does it in the graph)."""

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

    if pad_multiple > 1:
        module = AnySize(module, pad_multiple)
        notes = (*notes, f"any height and width: padded in the graph to multiples of {pad_multiple} by centred "
                         "reflection, as the network does in PyTorch, and cropped back")
    return OnnxGraph(name, module.eval(), example, output="output", size=size, multiple=1,
                     image_inputs=tuple(inputs), notes=(IMAGE_NOTE, *notes))


def pad_multiple(G: nn.Module) -> int:
    """The multiple a U-Net (2^depth) or ResNet generator (2^n_down) pads its input to."""
    return 2 ** (G.depth if hasattr(G, "depth") else G.n_down)
