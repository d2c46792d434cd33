"""Text data: UTF-8 files of one example per line, a character or word vocabulary, and sequences
of token ids for sequence models (the text task of issue 17 builds on this).

    read_lines(path)                  the non-empty lines of a .txt file, or of every .txt file in
                                      a folder (sorted by name); not UTF-8: one error naming the
                                      file and line
    Vocab.build(lines, level)         the vocabulary of `lines` at "char" or "word" level, most
                                      frequent first (ties by token), after the special tokens
    Vocab.encode(lines, max_len)      (N, max_len + 2) int64: <bos> tokens <eos> <pad>...; longer
                                      lines are truncated to max_len tokens, counted in `truncated`
    Vocab.decode(ids)                 ids -> text, stopping at <eos>, without specials
    Vocab.check(other, where)         refuse sampling with a vocabulary that is not the run's

Tokens: characters of the line as they are ("char"), or the line split on whitespace ("word",
joined back with single spaces). Ids 0-3 are <pad>, <bos>, <eos>, <unk>; a token not in the
vocabulary (one seen only in held-out text) encodes as <unk>. A vocabulary is plain data
(`to_dict` / `from_dict`: its level and token list), stored in checkpoints beside the weights.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from gankit.errors import GankitError

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)


def read_lines(path: str | Path) -> list[str]:
    """The non-empty lines (trailing whitespace stripped) of a UTF-8 text file, or of every .txt
    file in a folder, in name order."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.txt") if f.is_file())
        if not files:
            raise GankitError(f"{p}: no .txt files in this folder; expected UTF-8 text, one example per line")
    elif p.is_file():
        files = [p]
    else:
        raise GankitError(f"{p}: no such file or folder")
    lines: list[str] = []
    for f in files:
        raw = f.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw.count(b"\n", 0, e.start) + 1
            col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
            raise GankitError(f"{f}: line {line} is not UTF-8 (byte 0x{raw[e.start]:02x} at column {col}); "
                              "save the file as UTF-8") from None
        lines += [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise GankitError(f"{p}: no text: every line is empty")
    return lines


@dataclass(frozen=True)
class Vocab:
    level: Literal["char", "word"]
    tokens: tuple[str, ...]  # index = id; the first four are SPECIALS

    @classmethod
    def build(cls, lines: list[str], level: str = "char", max_size: int | None = None) -> Vocab:
        """The tokens of `lines`, most frequent first (ties broken by the token), up to
        `max_size` tokens beside the specials (None: all)."""
        if level not in ("char", "word"):
            raise GankitError(f"text level {level!r}; expected char or word")
        counts = Counter(t for ln in lines for t in split(ln, level))
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        return cls(level, SPECIALS + tuple(ranked[:max_size] if max_size else ranked))

    def __len__(self) -> int:
        return len(self.tokens)

    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def encode(self, lines: list[str], max_len: int) -> tuple[torch.Tensor, int]:
        """(ids (N, max_len + 2) int64, lines truncated): <bos>, at most max_len tokens, <eos>,
        then <pad>."""
        if max_len < 1:
            raise GankitError(f"text max_len = {max_len}; expected at least 1 token")
        ix = self.index()
        out = torch.full((len(lines), max_len + 2), PAD, dtype=torch.int64)
        truncated = 0
        for r, ln in enumerate(lines):
            toks = split(ln, self.level)
            if len(toks) > max_len:
                toks, truncated = toks[:max_len], truncated + 1
            ids = [BOS, *(ix.get(t, UNK) for t in toks), EOS]
            out[r, :len(ids)] = torch.tensor(ids)
        return out, truncated

    def decode(self, ids) -> str:
        """One sequence of ids -> text: up to the first <eos>, specials dropped (<unk> kept)."""
        out = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else SPECIALS[UNK])
        return ("" if self.level == "char" else " ").join(out)

    def check(self, other: Vocab, where: str) -> None:
        """One line when `other` (what a user asks to sample or score with) is not this vocabulary."""
        if other.level != self.level:
            raise GankitError(f"{where}: a {other.level}-level vocabulary, but the run was trained on "
                              f"{self.level}-level tokens")
        if other.tokens != self.tokens:
            diff = next((i for i, (a, b) in enumerate(zip(self.tokens, other.tokens)) if a != b),
                        min(len(self), len(other)))
            raise GankitError(f"{where}: vocabulary mismatch ({len(other)} tokens against the run's {len(self)}, "
                              f"first difference at id {diff}); use the run's own tokenizer")

    def to_dict(self) -> dict:
        return {"level": self.level, "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict, where: str = "checkpoint") -> Vocab:
        try:
            level, tokens = d["level"], tuple(d["tokens"])
        except (KeyError, TypeError):
            raise GankitError(f"{where}: no readable vocabulary (expected level and tokens)") from None
        if tokens[:4] != SPECIALS or level not in ("char", "word"):
            raise GankitError(f"{where}: not a gankit vocabulary (level {level!r}, first tokens {tokens[:4]})")
        return cls(level, tokens)


def split(line: str, level: str) -> list[str]:
    return list(line) if level == "char" else line.split()
