"""Audio networks: WaveGAN and SpecGAN (Donahue, McAuley, Puckette, ICLR 2019).

    WaveGANGenerator      z (B, z_dim) -> dense -> (B, 16 d, 16) -> 5 transposed 1-D convs,
                          kernel 25, stride 4, ReLU (tanh last) -> (B, 1, 16384): raw audio
    WaveGANDiscriminator  (B, 1, 16384) -> 5 1-D convs, kernel 25, stride 4, LeakyReLU 0.2, each but
                          the last followed by phase shuffle (n = 2) -> flatten -> dense -> (B,)
    SpecGANGenerator / SpecGANDiscriminator: the same shapes in 2-D on 128 x 128 spectrograms
                          (kernel 5 x 5, stride 2), DCGAN's layout without batch norm (WGAN-GP)

`d` is the paper's model size (64); a CPU run uses less. No normalisation layers: WGAN-GP's
penalty assumes D treats samples independently.

Class-conditional variants (`n_classes` > 0: the digit of a spoken-digits clip), as the generation
task's r3gan networks condition (the paper itself is unconditional):

    G(z, y)   a learned class embedding of z_dim values (N(0, 1) at init, like z) concatenated
              to z before the dense layer: (B, 2 z_dim) -> the same stack
    D(x, y)   the projection discriminator (Miyato & Koyama 2018): w^T h + b + embed(y)^T h over
              the flattened features h, so D scores "a real clip of digit y", not "a real clip"

    D.aux(h)  with `aux_classes` > 0 (model.d_head: acgan): AC-GAN's auxiliary classifier (Odena
              et al. 2017), a linear layer of aux_classes logits over the same flat features h
              beside the plain critic w^T h + b; `D.features(x)` gives h, `D.critic(h, y)` the
              critic's logits from it, so one pass through the body serves both heads

With `n_classes` and `aux_classes` 0 the networks, their parameters and their initial values are
what they were; the aux layer is made last, so a D with it starts as the plain D does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LENGTH = 16_384  # samples of one clip (1.02 s at 16 kHz), WaveGAN's


def phase_shuffle(x: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """WaveGAN's phase shuffle: each example (B, C, T) shifted in time by its own k uniform in
    [-n, n], the gap filled by reflection, so D cannot key on the generator's periodic artefacts."""
    if n == 0:
        return x
    b, c, t = x.shape
    k = torch.randint(-n, n + 1, (b,), device=x.device, generator=generator)  # (B,)
    padded = F.pad(x, (n, n), mode="reflect")  # (B, C, T + 2n)
    idx = (torch.arange(t, device=x.device)[None, :] + n - k[:, None])  # (B, T): out[t] = x[t - k]
    return padded.gather(2, idx[:, None, :].expand(b, c, t))


def with_label(z: Tensor, y: Tensor | None, embed: nn.Embedding | None) -> Tensor:
    """G's input: z (B, z_dim), or [z, embed(y)] (B, 2 z_dim) for a conditional G."""
    if embed is None:
        return z
    if y is None:
        raise ValueError("conditional generator called without labels")
    return torch.cat([z, embed(y)], 1)


def projection_embedding(n_classes: int, feat_dim: int) -> nn.Embedding | None:
    """D's class embedding (n_classes, F) for the projection term, Glorot-uniform as the paper's
    code initialises it (torch's N(0, 1) default would outweigh the linear head by ~sqrt(F) at
    init); None for a plain D."""
    if not n_classes:
        return None
    embed = nn.Embedding(n_classes, feat_dim)
    nn.init.xavier_uniform_(embed.weight)
    return embed


def head(fc: nn.Linear, h: Tensor, y: Tensor | None, embed: nn.Embedding | None) -> Tensor:
    """D's logits (B,) from flat features h (B, F): w^T h + b, plus embed(y)^T h when conditional."""
    out = fc(h)[:, 0]
    if embed is None:
        return out
    if y is None:
        raise ValueError("projection discriminator called without labels")
    return out + (embed(y) * h).sum(1)


def aux_head(feat_dim: int, aux_classes: int) -> nn.Linear | None:
    """AC-GAN's class logits over D's flat features, (F,) -> (aux_classes,); None without one."""
    return nn.Linear(feat_dim, aux_classes) if aux_classes else None


class AudioDiscriminator(nn.Module):
    """What both audio critics share: D(x, y) = critic(features(x), y), and AC-GAN's aux(h)."""

    fc: nn.Linear
    embed: nn.Embedding | None
    aux_fc: nn.Linear | None

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def critic(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        """The critic's logits (B,) from flat features h (B, F)."""
        return head(self.fc, h, y, self.embed)

    def aux(self, h: Tensor) -> Tensor:
        """AC-GAN's class logits (B, aux_classes) from flat features h (B, F)."""
        if self.aux_fc is None:
            raise ValueError("this discriminator has no auxiliary classifier (aux_classes 0)")
        return self.aux_fc(h)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.critic(self.features(x), y)


class WaveGANGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, d: int = 64, channels: int = 1, n_classes: int = 0):
        super().__init__()
        self.z_dim, self.d, self.n_classes = z_dim, d, n_classes
        self.fc = nn.Linear(z_dim * (2 if n_classes else 1), 16 * 16 * d)
        widths = [16 * d, 8 * d, 4 * d, 2 * d, d, channels]
        self.ups = nn.ModuleList(nn.ConvTranspose1d(a, b, 25, stride=4, padding=11, output_padding=1)
                                 for a, b in zip(widths, widths[1:]))
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes else None  # made last: the plain G's init is kept

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        # (B, 16d, 16); -1, not len(z): an ONNX trace keeps the batch free
        x = F.relu(self.fc(with_label(z, y, self.embed))).view(-1, 16 * self.d, 16)
        for i, up in enumerate(self.ups):
            x = up(x)  # length x 4
            x = torch.tanh(x) if i == len(self.ups) - 1 else F.relu(x)
        return x  # (B, C, 16384)


class WaveGANDiscriminator(AudioDiscriminator):
    def __init__(self, d: int = 64, channels: int = 1, shuffle: int = 2, n_classes: int = 0, aux_classes: int = 0):
        super().__init__()
        self.shuffle = shuffle
        widths = [channels, d, 2 * d, 4 * d, 8 * d, 16 * d]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, 25, stride=4, padding=11) for a, b in zip(widths, widths[1:]))
        self.fc = nn.Linear(16 * d * 16, 1)
        self.embed = projection_embedding(n_classes, 16 * d * 16)  # the projection (conditional)
        self.aux_fc = aux_head(16 * d * 16, aux_classes)  # AC-GAN's classifier (made last)
        self.generator: torch.Generator | None = None  # phase shuffle's random stream (set by the task)

    def features(self, x: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.2)
            if i < len(self.convs) - 1:
                x = phase_shuffle(x, self.shuffle, self.generator)
        return x.flatten(1)  # (B, 16d * 16)


class SpecGANGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, d: int = 64, n_classes: int = 0):
        super().__init__()
        self.z_dim, self.d, self.n_classes = z_dim, d, n_classes
        self.fc = nn.Linear(z_dim * (2 if n_classes else 1), 4 * 4 * 16 * d)
        widths = [16 * d, 8 * d, 4 * d, 2 * d, d, 1]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 5, stride=2, padding=2, output_padding=1)
                                 for a, b in zip(widths, widths[1:]))
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes else None  # made last: the plain G's init is kept

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        x = F.relu(self.fc(with_label(z, y, self.embed))).view(-1, 16 * self.d, 4, 4)  # (B, 16d, 4, 4)
        for i, up in enumerate(self.ups):
            x = up(x)
            x = torch.tanh(x) if i == len(self.ups) - 1 else F.relu(x)
        return x  # (B, 1, 128, 128)


class SpecGANDiscriminator(AudioDiscriminator):
    def __init__(self, d: int = 64, n_classes: int = 0, aux_classes: int = 0):
        super().__init__()
        widths = [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 5, stride=2, padding=2) for a, b in zip(widths, widths[1:]))
        self.fc = nn.Linear(16 * d * 4 * 4, 1)
        self.embed = projection_embedding(n_classes, 16 * d * 4 * 4)  # the projection (conditional)
        self.aux_fc = aux_head(16 * d * 4 * 4, aux_classes)  # AC-GAN's classifier (made last)

    def features(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return x.flatten(1)  # (B, 16d * 16)
