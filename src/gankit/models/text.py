"""Sequence networks for the text task: an LSTM generator and a CNN discriminator over one-hot
token sequences.

    LSTMGenerator   p(x_t | x_<t, topic): embedding -> LSTM -> logits over the vocabulary.
                    Teacher-forced (`forward`, for MLE and held-out NLL), sampled token by token
                    (`sample`, with a softmax temperature), or sampled with Gumbel-softmax
                    relaxations (`gumbel`, RelGAN: the hard token is fed back, the soft one-hot
                    goes to D so its gradient reaches G), or completed from prefixes
                    (`complete`, SeqGAN's Monte-Carlo rollouts).
    CNNDiscriminator  D(one-hot sequence, topic): a linear token embedding (so soft one-hots work),
                    parallel 1-D convolutions of widths 2..5, max over time, a highway layer,
                    dropout and a linear head; a topic enters through a projection term
                    (Miyato & Koyama 2018), as the image D's `projection` head.

RelGAN's generator is a relational memory; the issue allows an LSTM, and the MLE baseline uses
the same LSTM, so the comparison is between objectives, not architectures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.data.text import BOS, EOS, PAD
from gankit.util import full


class LSTMGenerator(nn.Module):
    def __init__(self, vocab: int, emb: int = 64, hidden: int = 256, layers: int = 1, n_classes: int = 0,
                 latent: int = 0):
        super().__init__()
        self.vocab, self.hidden, self.layers, self.n_classes = vocab, hidden, layers, n_classes
        self.embed = nn.Embedding(vocab, emb)
        self.topic = nn.Embedding(n_classes, emb) if n_classes else None
        self.lstm = nn.LSTM(emb * (2 if n_classes else 1), hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab)
        # a decoder of latent codes (LatentGAN): the code sets the LSTM's initial state
        self.init = nn.Linear(latent, 2 * layers * hidden) if latent else None

    def initial(self, code: Tensor | None):
        """The LSTM's starting (h, c) from a latent code (B, latent); None: zeros."""
        if code is None or self.init is None:
            return None
        h, c = torch.tanh(self.init(code)).view(len(code), 2, self.layers, self.hidden).permute(1, 2, 0, 3)
        return h.contiguous(), c.contiguous()

    def _inputs(self, e: Tensor, y: Tensor | None) -> Tensor:
        """Token embeddings (B, T, E), with the topic's embedding beside each when conditional."""
        if self.topic is None:
            return e
        if y is None:
            raise ValueError("a topic-conditional generator needs topic labels y")
        return torch.cat([e, self.topic(y)[:, None].expand(-1, e.shape[1], -1)], 2)

    def forward(self, ids: Tensor, y: Tensor | None = None, code: Tensor | None = None) -> Tensor:
        """Teacher forcing: logits (B, T, V) of x_1..x_T given ids (B, T) = <bos> x_1 .. x_{T-1}."""
        h, _ = self.lstm(self._inputs(self.embed(ids), y), self.initial(code))
        return self.out(h)

    def nll(self, ids: Tensor, y: Tensor | None = None, code: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(sum of -log p over the real tokens and <eos>, number of them) of encoded lines ids (B, L+2)."""
        logits = self.forward(ids[:, :-1], y, code)  # predict ids[:, 1:]
        target = ids[:, 1:]
        mask = target != PAD
        lp = F.cross_entropy(full(logits).transpose(1, 2), target, reduction="none")  # (B, T)
        return (lp * mask).sum(), mask.sum()

    def _step(self, tok: Tensor, y: Tensor | None, state):
        """One token (B,) in -> logits (B, V), new state."""
        h, state = self.lstm(self._inputs(self.embed(tok)[:, None], y), state)
        return self.out(h[:, 0]), state

    def start(self, n: int, device) -> Tensor:
        return torch.full((n,), BOS, dtype=torch.int64, device=device)

    @torch.no_grad()
    def sample(self, n: int, length: int, temperature: float = 1.0, y: Tensor | None = None,
               generator: torch.Generator | None = None, prefix: Tensor | None = None,
               code: Tensor | None = None) -> Tensor:
        """(n, length) token ids drawn from softmax(logits / temperature), <pad> after the first
        <eos>; `prefix` (P,) ids are forced first (and included in the output); `code` (n, latent)
        the latent codes a decoder starts from."""
        device = self.out.weight.device
        tok, state = self.start(n, device), self.initial(code)
        out = torch.full((n, length), PAD, dtype=torch.int64, device=device)
        alive = torch.ones(n, dtype=torch.bool, device=device)
        for t in range(length):
            logits, state = self._step(tok, y, state)
            if prefix is not None and t < len(prefix):
                tok = prefix[t].expand(n).to(device)
            elif temperature == 0:
                tok = logits.argmax(1)
            else:
                p = torch.softmax(full(logits) / temperature, 1)
                tok = torch.multinomial(p, 1, generator=generator)[:, 0]
            out[:, t] = torch.where(alive, tok, PAD)
            alive &= tok != EOS
        return out

    def gumbel(self, length: int, beta: Tensor, y: Tensor | None, generator: torch.Generator | None,
               n: int) -> tuple[Tensor, Tensor]:
        """RelGAN's relaxed sampling: at each step g ~ Gumbel(0, 1), the token is
        argmax(o_t + g) (fed back as the next input) and D sees softmax(beta (o_t + g)), which
        carries the gradient. Returns (soft one-hots (n, length, V), hard ids (n, length)); after
        the first <eos> both are <pad>."""
        device = self.out.weight.device
        tok, state = self.start(n, device), None
        soft, hard = [], []
        alive = torch.ones(n, 1, device=device)
        pad = one_hot(torch.tensor([PAD], device=device), self.vocab)  # (1, V)
        for _ in range(length):
            logits, state = self._step(tok, y, state)
            u = torch.rand(logits.shape, device=device, generator=generator)
            g = -torch.log(-torch.log(u.clamp_min(1e-10)) + 1e-10)  # Gumbel(0, 1)
            noisy = full(logits) + g
            tok = noisy.argmax(1).detach()
            soft.append(alive * torch.softmax(beta * noisy, 1) + (1 - alive) * pad)
            hard.append(torch.where(alive[:, 0] > 0, tok, PAD))
            alive = alive * (tok != EOS).float()[:, None]
        return torch.stack(soft, 1), torch.stack(hard, 1)

    @torch.no_grad()
    def complete(self, seq: Tensor, keep: Tensor, y: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """SeqGAN's Monte-Carlo completions, all in one pass: row r keeps its first keep[r] tokens
        of seq (R, T) and draws the rest from G (temperature 1); <pad> after the first <eos>."""
        n, length = seq.shape
        tok, state = self.start(n, seq.device), None
        out = torch.full_like(seq, PAD)
        alive = torch.ones(n, dtype=torch.bool, device=seq.device)
        for t in range(length):
            logits, state = self._step(tok, y, state)
            drawn = torch.multinomial(torch.softmax(full(logits), 1), 1, generator=generator)[:, 0]
            tok = torch.where(t < keep, seq[:, t], drawn)
            out[:, t] = torch.where(alive, tok, PAD)
            alive &= tok != EOS
        return out


class LSTMEncoder(nn.Module):
    """LatentGAN's encoder: a line (B, L + 2) -> a latent code (B, latent), the LSTM's last state
    over the line's real tokens through a linear layer."""

    def __init__(self, vocab: int, emb: int = 64, hidden: int = 256, latent: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.head = nn.Linear(hidden, latent)

    def forward(self, ids: Tensor) -> Tensor:
        h, _ = self.lstm(self.embed(ids))  # (B, T, H)
        last = (ids != PAD).sum(1) - 1  # the <eos> position of each line
        return self.head(h[torch.arange(len(ids), device=ids.device), last])


def mlp(sizes: tuple[int, ...], leak: float = 0.2) -> nn.Sequential:
    """Linear layers of `sizes` with LeakyReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(leak))
    return nn.Sequential(*layers)


class LatentTextGenerator(nn.Module):
    """LatentGAN's generator (Prykhodko et al. 2019): noise (B, z) -> a latent code through an MLP
    (`mapper`, the part the GAN trains), decoded to tokens by an autoencoder's decoder (`decoder`,
    trained first). It samples like an LSTMGenerator but has no likelihood of a given line."""

    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, latent: int, z_dim: int, width: int = 256):
        super().__init__()
        self.decoder = LSTMGenerator(vocab, emb, hidden, layers, latent=latent)
        self.mapper = mlp((z_dim, width, width, width, latent))
        self.vocab, self.z_dim, self.topic, self.out = vocab, z_dim, None, self.decoder.out

    def start(self, n: int, device) -> Tensor:
        return self.decoder.start(n, device)

    @torch.no_grad()
    def sample(self, n: int, length: int, temperature: float = 1.0, y: Tensor | None = None,
               generator: torch.Generator | None = None, prefix: Tensor | None = None) -> Tensor:
        z = torch.randn(n, self.z_dim, device=self.out.weight.device, generator=generator)
        return self.decoder.sample(n, length, temperature, None, generator, prefix, code=self.mapper(z))


class CNNDiscriminator(nn.Module):
    def __init__(self, vocab: int, emb: int = 64, widths: tuple[int, ...] = (2, 3, 4, 5), filters: int = 64,
                 n_classes: int = 0, dropout: float = 0.25):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Linear(vocab, emb, bias=False)  # one-hot (or soft one-hot) @ W: a token embedding
        self.convs = nn.ModuleList(nn.Conv1d(emb, filters, w, padding=w - 1) for w in widths)
        f = filters * len(widths)
        self.highway = nn.Linear(f, 2 * f)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(f, 1)
        self.proj = nn.Embedding(n_classes, f) if n_classes else None

    def features(self, x: Tensor) -> Tensor:
        """x (B, T, V) one-hot rows -> (B, F) features."""
        e = self.embed(x).transpose(1, 2)  # (B, E, T)
        h = torch.cat([F.relu(c(e)).amax(2) for c in self.convs], 1)  # (B, F): max over time
        t, gate = self.highway(h).chunk(2, 1)
        gate = torch.sigmoid(gate)
        return self.drop(gate * F.relu(t) + (1 - gate) * h)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (B,) of x (B, T, V) being real text (of topic y)."""
        h = self.features(x)
        out = self.head(h)[:, 0]
        if self.proj is not None:
            out = out + (self.proj(y) * h).sum(1)
        return out


def one_hot(ids: Tensor, vocab: int) -> Tensor:
    """(B, T) ids -> (B, T, V) float one-hots (by scatter: F.one_hot checks its range on the host)."""
    return torch.zeros(*ids.shape, vocab, device=ids.device).scatter_(-1, ids[..., None], 1.0)
