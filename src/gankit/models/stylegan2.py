"""StyleGAN2 generator and discriminator (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN") for 28 px images and powers of two from 32 to 1024, 1 or 3 channels.

G = synthesis(mapping(z)):
    mapping    z -> pixel norm (-> concat with the pixel-normed class embedding when conditional)
               -> `mapping_layers` equalised linear layers, lr multiplier 0.01, leaky ReLU -> w
    synthesis  a learned constant s x s map (s = 7 for 28 px, 4 for the others: `base.start_size`,
               so 28 px is built natively as 7 -> 14 -> 28, not cropped from 32); per resolution
               [bilinear x2 up ->] modulated 3x3 conv(s) with weight demodulation, per-pixel noise
               with a learned strength, bias, leaky ReLU x sqrt(2); a toRGB (modulated 1x1, no
               demodulation) at every resolution whose outputs are upsampled and summed (skip G).
    Upsampling is bilinear x2 (align_corners=False), which is the paper's [1, 3, 3, 1] filter with
    edge-replicating instead of zero padding.

Style inputs ws (B, num_ws, w_dim), indexed as in the official code: the s x s resolution has one
conv (ws[0]) and every finer one two (ws[2k-1], ws[2k]); the toRGB of resolution k reads the same
w as the next resolution's first conv (ws[2k+1]), and the last toRGB the last w. So
num_ws = 2 * n_up + 2: 6 at 28 px, 8 at 32 px, 10 at 64 px, 18 at 1024 px. A style-mixing cut c gives ws[:, :c]
= w1 and ws[:, c:] = w2.

D: the paper's residual D: fromRGB 1x1, per resolution a block conv3x3 -> 2x2 average pool ->
conv3x3 with a pooled 1x1 shortcut, summed and scaled by 1/sqrt(2), down to s x s; then minibatch
standard deviation (groups of model.mbstd_group, 4 by default), conv3x3, a dense layer to the features (B, ch) and `DHead`
(plain, projection or acgan). Every conv and dense layer has an equalised learning rate (weights
~ N(0, 1), scaled at runtime by 1 / sqrt(fan_in)); DHead's linear layers are torch's own.

Channels (`base.side_widths`): with model.cbase, min(cbase // r, cmax) at an r x r map in G and D,
the official rule (channel_base 32768, 16384 in StyleGAN2-ADA's paper256; channel_max 512).
Without it, g_width / d_width at the finest resolution, doubling per coarser one, capped at
CAP x the width: the small-image rule the CPU presets use.

Departures from the paper, for small images on CPU: bilinear up-sampling then a 3x3 conv instead
of a transposed conv with the [1, 3, 3, 1] blur; in D, 2x2 average pooling (a box filter) instead
of blur + stride 2; G's output goes through tanh unless `model.g_out: none` (the paper's linear
output), so samples are in [-1, 1]; no fp16 clamping. The noise inputs draw from torch's global
generator (as dropout does), which the trainer checkpoints. Style mixing and path-length
regularisation are driven from the training step (`gankit.tasks.generate`): G only takes the
mixing latents (`mix=`) and exposes `styles` / `synthesis` for the penalty.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.base import DHead, Discriminator, block, one_hot, side_widths, start_size
from gankit.tasks.generate.config import ModelConfig
from gankit.util import full

SQRT2 = math.sqrt(2)
CAP = 4  # channels at a resolution <= CAP x the width at the finest one
W_AVG_DECAY = 0.995  # w_avg <- 0.995 w_avg + 0.005 E[w] per training call of `mapping`
NOISE_MODES = ("random", "const", "none")


def _act(x: Tensor, leak: float) -> Tensor:
    """Leaky ReLU with gain sqrt(2), which keeps the signal's second moment ~1 layer to layer."""
    return F.leaky_relu(x, leak) * SQRT2


def _pixel_norm(x: Tensor) -> Tensor:
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)  # x / sqrt(mean(x^2) + eps), per row


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # (B, C, 2H, 2W)


class EqLinear(nn.Module):
    """y = x (w * lr_mul / sqrt(fan_in))^T + b * lr_mul with w ~ N(0, 1/lr_mul^2): every weight
    learns at the same speed under Adam whatever its fan-in (equalised learning rate), and
    lr_mul < 1 slows the layer down (the mapping network's 0.01)."""

    def __init__(self, cin: int, cout: int, bias: bool = True, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), bias_init / lr_mul)) if bias else None
        self.w_gain, self.b_gain = lr_mul / math.sqrt(cin), lr_mul

    def forward(self, x: Tensor) -> Tensor:
        b = None if self.bias is None else self.bias * self.b_gain
        return F.linear(x, self.weight * self.w_gain, b)


class EqConv2d(nn.Module):
    """A same-padding k x k conv with an equalised learning rate (weights scaled by 1/sqrt(cin k k))."""

    def __init__(self, cin: int, cout: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.gain = 1 / math.sqrt(cin * k * k)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.gain, self.bias, padding=self.weight.shape[-1] // 2)


class ModulatedConv2d(nn.Module):
    """k x k conv whose weights are scaled per sample by the style s = affine(w) (B, cin):
    w'_oik = w_oik s_i, and with `demod` w''_oik = w'_oik / sqrt(sum_ik w'_oik^2 + 1e-8) (unit
    L2 norm per sample and output channel, which replaces AdaIN's instance normalisation).

    `fused` (default: outside training) runs it as one grouped conv over the batch with the
    per-sample weights; otherwise as (x * s) conv w, each output channel times its demodulation
    coefficient: the same function, and on CPU faster to train (the official code's split too)."""

    def __init__(self, cin: int, cout: int, k: int, w_dim: int, demod: bool = True):
        super().__init__()
        self.affine = EqLinear(w_dim, cin, bias_init=1.0)  # styles start at 1: the plain conv
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.gain = 1 / math.sqrt(cin * k * k)  # equalised learning rate
        self.demod = demod
        self.fused: bool | None = None  # None: grouped conv in eval mode, scale-conv-scale in training

    def weights(self, s: Tensor) -> Tensor:
        """The per-sample effective weights (B, cout, cin, k, k) for styles s (B, cin)."""
        w = self.weight[None] * self.gain * s[:, None, :, None, None]
        if self.demod:
            w = w * torch.rsqrt(w.square().sum((2, 3, 4), keepdim=True) + 1e-8)
        return w

    def modulate(self, x: Tensor, s: Tensor, bias: Tensor | None = None, gain: float = 1.0) -> Tensor:
        """(B, cin, H, W), styles (B, cin) -> gain * (modulated conv + bias) (B, cout, H, W)."""
        B, cin, H, W = x.shape
        k = self.weight.shape[-1]
        fused = not self.training if self.fused is None else self.fused
        b = None if bias is None else (bias * gain)[None, :, None, None]
        if fused:  # the batch as groups: sample b convolved with its own weights
            w = self.weights(s).reshape(-1, cin, k, k) * gain  # (B * cout, cin, k, k)
            out = F.conv2d(x.reshape(1, B * cin, H, W), w, padding=k // 2, groups=B).reshape(B, -1, H, W)
            return out if b is None else out + b
        w = self.weight * self.gain
        if k == 1 and not self.demod:  # toRGB as one batched matmul: on CPU ~10x faster than a 1x1 conv to 1-3 channels
            out = torch.bmm(w.view(1, -1, cin) * (s * gain)[:, None], x.reshape(B, cin, H * W)).view(B, -1, H, W)
            return out if b is None else out + b
        out = F.conv2d(x * s[:, :, None, None], w, padding=k // 2)  # scaling inputs = scaling w's in-channels
        if not self.demod:
            out = out * gain
            return out if b is None else out + b
        # sum_ik (w_oik s_i)^2 = sum_i s_i^2 (sum_k w_oik^2): (B, cin) @ (cin, cout)
        d = torch.rsqrt(s.square() @ w.square().sum((2, 3)).t() + 1e-8) * gain  # (B, cout)
        d = d[:, :, None, None]
        return out * d if b is None else torch.addcmul(b, out, d)  # one pass: bias + out * d

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.modulate(x, self.affine(w))


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + per-pixel noise (learned strength, starts at 0) + bias + leaky ReLU."""

    def __init__(self, cin: int, cout: int, side: int, w_dim: int, w_index: int, leak: float):
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, side, side))  # fixed noise, for projection
        self.bias = nn.Parameter(torch.zeros(cout))
        self.w_index, self.leak = w_index, leak  # which of ws this layer reads

    def forward(self, x: Tensor, w: Tensor, noise: str | Tensor = "random") -> Tensor:
        # lrelu(z) sqrt(2) = lrelu(sqrt(2) z): the gain goes into the conv's output scale and
        # bias (and the noise), which saves two passes over the activations, forward and backward.
        x = self.conv.modulate(x, self.conv.affine(w), self.bias, SQRT2)  # sqrt(2) (conv + bias): (B, cout, H, W)
        if isinstance(noise, Tensor):  # given (B, 1, H, W): a slice of a larger batch's (`noise_inputs`)
            x = x + (self.noise_strength * SQRT2) * noise.to(x.dtype)
        elif noise == "random":  # from torch's generator, like dropout masks (checkpointed, graph-safe)
            B, _, H, W = x.shape
            x = x + (self.noise_strength * SQRT2) * torch.randn(B, 1, H, W, device=x.device, dtype=x.dtype)
        elif noise == "const":
            x = x + (self.noise_strength * SQRT2) * self.noise_const
        return F.leaky_relu(x, self.leak)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to the image's channels, no demodulation, bias."""

    def __init__(self, cin: int, channels: int, w_dim: int, w_index: int):
        super().__init__()
        self.conv = ModulatedConv2d(cin, channels, 1, w_dim, demod=False)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.w_index = w_index

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv.modulate(x, self.conv.affine(w), self.bias)


class StyleGAN2Generator(nn.Module):
    """z (B, in_dim) [, y (B,)] -> x (B, C, H, W); see the module docstring.

    The output goes through tanh when `cfg.g_out` is "tanh" (the default: samples in [-1, 1]);
    g_out "none" is the paper's linear output."""

    def __init__(self, cfg: ModelConfig, out_shape: tuple[int, int, int], n_classes: int = 0):
        super().__init__()
        s, n_up = start_size(out_shape, "stylegan2")
        self.in_dim = cfg.z_dim + cfg.info_cat + cfg.info_cont
        self.out_shape = tuple(out_shape)
        self.w_dim, self.num_ws = cfg.w_dim, 2 * n_up + 2
        self.n_classes = n_classes if cfg.conditional else 0
        self.tanh = cfg.g_out == "tanh"
        # mapping network
        self.embed = EqLinear(self.n_classes, cfg.w_dim) if self.n_classes else None
        dims = [self.in_dim + (cfg.w_dim if self.n_classes else 0)] + [cfg.w_dim] * cfg.mapping_layers
        self.map = nn.ModuleList(EqLinear(a, b, lr_mul=0.01) for a, b in zip(dims[:-1], dims[1:]))
        self.leak = cfg.leak
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))  # running E[w], the truncation centre
        # synthesis network
        sides = [s * 2 ** i for i in range(n_up + 1)]  # e.g. [7, 14, 28]
        ch = side_widths(sides, cfg.g_width, CAP, cfg.cbase, cfg.cmax)
        self.const = nn.Parameter(torch.randn(ch[0], s, s))
        self.convs = nn.ModuleList([SynthesisLayer(ch[0], ch[0], s, cfg.w_dim, 0, cfg.leak)])
        self.torgbs = nn.ModuleList([ToRGB(ch[0], out_shape[0], cfg.w_dim, 1)])
        for k in range(1, n_up + 1):
            self.convs.append(SynthesisLayer(ch[k - 1], ch[k], sides[k], cfg.w_dim, 2 * k - 1, cfg.leak))
            self.convs.append(SynthesisLayer(ch[k], ch[k], sides[k], cfg.w_dim, 2 * k, cfg.leak))
            self.torgbs.append(ToRGB(ch[k], out_shape[0], cfg.w_dim, 2 * k + 1))

    def ordered_blocks(self) -> list[nn.Module]:
        """The mapping network (with the class embedding) first, then the synthesis network one
        resolution at a time, coarsest first: the constant, its conv and toRGB; then each
        resolution's two convs and toRGB. train.freeze_g = 1 freezes the mapping network alone."""
        out = [block(self.embed, self.map), block(self.const, self.convs[0], self.torgbs[0])]
        out += [block(self.convs[2 * k - 1], self.convs[2 * k], self.torgbs[k]) for k in range(1, len(self.torgbs))]
        return out

    def mapping(self, z: Tensor, y: Tensor | None = None, track: bool = True) -> Tensor:
        """(B, in_dim) [, labels (B,)] -> w (B, w_dim). In training mode (and with `track`) it
        moves w_avg toward this batch's mean w."""
        x = _pixel_norm(z)
        if self.embed is not None:
            if y is None:
                raise ValueError("conditional stylegan2 generator called without labels")
            x = torch.cat([x, _pixel_norm(self.embed(one_hot(y, self.n_classes)))], 1)  # (B, in_dim + w_dim)
        for layer in self.map:
            x = _act(layer(x), self.leak)
        if self.training and track:
            with torch.no_grad():  # w_avg <- E[w] + 0.995 (w_avg - E[w])
                self.w_avg.copy_(full(x.detach()).mean(0).lerp(self.w_avg, W_AVG_DECAY))
        return x  # (B, w_dim)

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """w_avg + psi (w - w_avg): psi < 1 trades variety for typical samples."""
        return w if psi == 1 else self.w_avg.to(w.dtype).lerp(w, psi)

    def styles(self, z: Tensor, y: Tensor | None = None, psi: float = 1.0,
               mix: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """ws (B, num_ws, w_dim): w = mapping(z, y), truncated, broadcast to every layer. With
        `mix` = (z2 (B, in_dim), cut (B,) int64 in [1, num_ws]), sample b reads w2 = mapping(z2)
        from layer cut[b] on (cut = num_ws: no mixing); mapping(z2) leaves w_avg alone."""
        w = self.truncate(self.mapping(z, y), psi)
        ws = w[:, None].expand(-1, self.num_ws, -1)  # (B, num_ws, w_dim)
        if mix is not None:
            z2, cut = mix
            w2 = self.truncate(self.mapping(z2, y, track=False), psi)
            later = torch.arange(self.num_ws, device=ws.device)[None] >= cut[:, None]  # (B, num_ws), no host read
            ws = torch.where(later[..., None], w2[:, None], ws)
        return ws

    def noise_inputs(self, n: int, device) -> list[Tensor]:
        """The noise inputs a "random" forward of n samples would draw, drawn the same way (layer by
        layer from torch's generator, (n, 1, H, W) each): gradient accumulation draws them for the
        whole batch and gives each micro-batch forward its slice, as a list `synthesis` takes."""
        return [torch.randn(n, 1, *c.noise_const.shape[2:], device=device) for c in self.convs]

    def synthesis(self, ws: Tensor, noise: str | list[Tensor] = "random") -> Tensor:
        """ws (B, num_ws, w_dim) -> images (B, C, H, W). noise: "random" (fresh per call), "const"
        (the fixed per-layer buffers, for projection), "none", or one (B, 1, H, W) tensor per layer."""
        if isinstance(noise, str) and noise not in NOISE_MODES:
            raise ValueError(f"noise {noise!r}; expected one of {', '.join(NOISE_MODES)}")
        noises = [noise] * len(self.convs) if isinstance(noise, str) else noise
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws of shape {tuple(ws.shape)}; expected (B, {self.num_ws}, {self.w_dim})")
        x = self.const[None].expand(ws.shape[0], -1, -1, -1).to(ws.dtype)  # (B, ch0, s, s)
        x = self.convs[0](x, ws[:, 0], noises[0])
        img = self.torgbs[0](x, ws[:, self.torgbs[0].w_index])  # (B, C, s, s)
        for k in range(1, len(self.torgbs)):
            conv0, conv1, torgb = self.convs[2 * k - 1], self.convs[2 * k], self.torgbs[k]
            x = conv0(_up(x), ws[:, conv0.w_index], noises[2 * k - 1])  # (B, ch_k, 2H, 2W)
            x = conv1(x, ws[:, conv1.w_index], noises[2 * k])
            img = _up(img) + torgb(x, ws[:, torgb.w_index])  # skip G: the coarser image, upsampled, plus detail
        return torch.tanh(img) if self.tanh else img

    def forward(self, z: Tensor, y: Tensor | None = None, psi: float = 1.0,
                mix: tuple[Tensor, Tensor] | None = None, noise: str | list[Tensor] = "random") -> Tensor:
        return self.synthesis(self.styles(z, y, psi, mix), noise)


def minibatch_std(x: Tensor, group: int = 4) -> Tensor:
    """(B, C, H, W) -> (B, C + 1, H, W): one more channel holding the standard deviation of each
    feature over a group of consecutive samples, averaged over features and pixels, so D can see
    a batch's lack of variety. The group is the largest size <= `group` that divides B."""
    B, C, H, W = x.shape
    g = max(d for d in range(1, min(group, B) + 1) if B % d == 0)
    y = full(x).reshape(B // g, g, C * H * W)
    y = y - y.mean(1, keepdim=True)  # written out: torch.var over a middle dim is ~20x slower on CPU
    y = (y.square().mean(1) + 1e-8).sqrt().mean(1)  # (B/g,) std over the group, averaged over features
    y = y.to(x.dtype).repeat_interleave(g)[:, None, None, None].expand(B, 1, H, W)
    return torch.cat([x, y], 1)


class _Act(nn.Module):
    def __init__(self, leak: float):
        super().__init__()
        self.leak = leak

    def forward(self, x: Tensor) -> Tensor:
        return _act(x, self.leak)


class DBlock(nn.Module):
    """(B, cin, H, W) -> (B, cout, H/2, W/2): conv3x3 -> avgpool -> conv3x3, plus avgpool -> 1x1
    (no bias), the sum scaled by 1/sqrt(2) to keep its variance."""

    def __init__(self, cin: int, cout: int, leak: float):
        super().__init__()
        self.conv0 = EqConv2d(cin, cin, 3)
        self.conv1 = EqConv2d(cin, cout, 3)
        self.skip = EqConv2d(cin, cout, 1, bias=False)
        self.leak = leak

    def forward(self, x: Tensor) -> Tensor:
        h = _act(self.conv0(x), self.leak)
        h = _act(self.conv1(F.avg_pool2d(h, 2)), self.leak)  # the second conv at the lower resolution
        return (h + self.skip(F.avg_pool2d(x, 2))) / SQRT2


class _Epilogue(nn.Module):
    """(B, ch, s, s) -> features (B, ch): minibatch std, conv3x3, flatten, dense."""

    def __init__(self, ch: int, s: int, leak: float, group: int = 4):
        super().__init__()
        self.conv = EqConv2d(ch + 1, ch, 3)
        self.fc = EqLinear(ch * s * s, ch)
        self.leak, self.group = leak, group

    def forward(self, x: Tensor) -> Tensor:
        x = _act(self.conv(minibatch_std(x, self.group)), self.leak)
        return _act(self.fc(x.flatten(1)), self.leak)


class StyleGAN2Discriminator(Discriminator):
    """x (B, C, H, W) -> logits (B,); features (B, ch at s x s). Minibatch std makes a sample's
    logit depend on its group, so `mixes_batch` is True: reals and fakes go through D apart."""

    # a block: one resolution's DBlock (the first with fromRGB), then the 4x4 epilogue (stylegan2-ada's b{res})
    block_starts = (DBlock, _Epilogue)

    def __init__(self, cfg: ModelConfig, in_shape: tuple[int, int, int], n_classes: int = 0):
        super().__init__()
        if cfg.spectral_norm:
            raise GankitError("model.spectral_norm is not part of the stylegan2 arch (its D has equalised "
                              "learning rates and R1); set model.spectral_norm=false")
        s, n_down = start_size(in_shape, "stylegan2")
        sides = [s * 2 ** i for i in range(n_down + 1)]  # coarsest first
        ch = side_widths(sides, cfg.d_width, CAP, cfg.cbase, cfg.cmax)[::-1]  # finest first: ch[0] at H, ch[-1] at s
        layers: list[nn.Module] = [EqConv2d(in_shape[0], ch[0], 1), _Act(cfg.leak)]  # fromRGB
        layers += [DBlock(a, b, cfg.leak) for a, b in zip(ch[:-1], ch[1:])]  # (B, ch[-1], s, s)
        layers.append(_Epilogue(ch[-1], s, cfg.leak, cfg.mbstd_group))
        self.body = nn.Sequential(*layers)
        self.feat_dim = ch[-1]
        self.heads = DHead(self.feat_dim, cfg.d_head, n_classes, info_dim=cfg.info_cat + cfg.info_cont)

    @property
    def mixes_batch(self) -> bool:
        return True
