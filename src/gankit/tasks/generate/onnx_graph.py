"""The generation task's ONNX graph (`Task.onnx_graphs`): noise (+ class label, + truncation psi)
-> image, or -> 2-D point for toy runs.

InfoGAN codes travel inside `z` as `Run.latents` lays them out: (N, z_dim + info_cat +
info_cont) = [noise | one-hot categorical code | continuous codes in [-1, 1]]. A stylegan2 G is
exported whole (mapping + synthesis, one graph) with psi as an input, so one file serves every
truncation: w <- w_avg + psi (w - w_avg), psi = 1 for none; its per-pixel noise is its fixed
buffers, as `Run.generate` uses ("const"), so the graph is deterministic."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gankit.models.latent import has_styles
from gankit.tasks.base import OnnxGraph


class _Plain(nn.Module):
    def __init__(self, G: nn.Module):
        super().__init__()
        self.G = G

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.G(z, y)


class _Styled(nn.Module):
    """mapping + truncation + synthesis with psi a tensor (G.truncate branches on psi == 1)."""

    def __init__(self, G: nn.Module, conditional: bool):
        super().__init__()
        self.G, self.conditional = G, conditional
        for m in G.modules():  # modulated convs as scale-conv-scale: the grouped conv of eval mode has
            if hasattr(m, "fused"):  # the batch as its group count, which ONNX's Conv fixes at export
                m.fused = False

    def forward(self, z: Tensor, *rest: Tensor) -> Tensor:
        y, psi = (rest[0], rest[1]) if self.conditional else (None, rest[0])
        w = self.G.mapping(z, y)  # (N, w_dim)
        w_avg = self.G.w_avg.to(w.dtype)
        w = w_avg + psi[:, None] * (w - w_avg)  # psi (N,): one per sample, broadcast over w_dim
        ws = w[:, None].expand(-1, self.G.num_ws, -1)  # (N, num_ws, w_dim)
        return self.G.synthesis(ws, "const")


def generate_graphs(cfg, nets: dict, data_meta: dict) -> list[OnnxGraph]:
    G = nets["G"]
    classes = len(data_meta.get("classes") or [])
    conditional = bool(cfg.model.conditional)
    styled = has_styles(G)
    in_dim = cfg.model.z_dim + cfg.model.info_cat + cfg.model.info_cont

    def example(n: int, hw, gen: torch.Generator) -> dict[str, Tensor]:
        out = {"z": torch.randn(n, cfg.model.z_dim, generator=gen)}
        if cfg.model.info_cat:  # one-hot codes, as draw_latent lays them out
            out["z"] = torch.cat([out["z"], torch.eye(cfg.model.info_cat)[torch.randint(cfg.model.info_cat, (n,),
                                                                                         generator=gen)]], 1)
        if cfg.model.info_cont:
            out["z"] = torch.cat([out["z"], torch.rand(n, cfg.model.info_cont, generator=gen) * 2 - 1], 1)
        if conditional:
            out["label"] = torch.randint(classes, (n,), generator=gen)
        if styled:
            out["psi"] = torch.rand(n, generator=gen) * 0.5 + 0.5  # in [0.5, 1)
        return out

    image = data_meta.get("kind") == "image"
    notes = [f"z: float32 (N, {in_dim}), N(0, 1) noise"
             + (f" then a one-hot code of {cfg.model.info_cat}" if cfg.model.info_cat else "")
             + (f" then {cfg.model.info_cont} continuous codes in [-1, 1]" if cfg.model.info_cont else "")]
    if conditional:
        notes.append(f"label: int64 (N,), the class 0..{classes - 1}")
    if styled:
        notes.append("psi: float32 (N,), truncation in w per sample (1: none); per-pixel noise fixed")
    notes.append("output: float32 (N, C, H, W) in [-1, 1], (y + 1) * 127.5 to uint8" if image
                 else f"output: float32 (N, 2) points in model units (multiply by {data_meta.get('scale', 1.0):g})")
    module = _Styled(G, conditional) if styled else _Plain(G)
    return [OnnxGraph("G", module.eval(), example, output="image" if image else "points",
                      image_output=False, notes=tuple(notes))]
