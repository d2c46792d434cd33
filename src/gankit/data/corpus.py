"""Text corpora for the text task: a built-in corpus read from an installed package, or a user's
UTF-8 lines, split into training and held-out lines and encoded with one vocabulary.

Sources (`data.source`):

    fortunes          Debian's fortune cookies (the `fortunes` and `fortunes-min` packages, BSD
                      licence; /usr/share/games/fortunes, installed by `make`): every cookie with
                      its whitespace runs collapsed to one space, kept when it is at most 64
                      characters and has no control characters, deduplicated. Its topic (the
                      file it comes from: computers, food, love, ...) is its class.
    moses             the MOSES benchmark's molecules (Polykovskiy et al. 2020) as SMILES, from the
                      `molsets` wheel (moses/dataset/data/*.csv.gz, MIT licence): a fixed random
                      100,000 of its 1,584,664 training SMILES (a CPU-sized subset, seeded); the
                      held-out split (`moses:test`) is a fixed random 10,000 of its 176,075 test
                      SMILES. Its own splits are used, not the 15% rule below.
    PATH.txt          a user's file, one example per line
    PATH/             a folder of .txt files; with two or more files, each file's name is its
                      lines' class (topic), as image folders use class subfolders

The held-out split is a fixed 15% of the unique lines, chosen by a seeded permutation, the same
on every machine; `:test` (for example `fortunes:test`) names it. The vocabulary is built from
the training lines; a held-out token it lacks encodes as <unk>. Lines longer than `max_len`
tokens are truncated (one warning, with the count); the built-in corpus is defined as cookies of
at most 64 characters, so at the default max_len nothing of it is cut.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gankit.data.text import Vocab, read_lines
from gankit.errors import GankitError, warn

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_MAX_CHARS = 64  # the built-in corpus: cookies up to this long (one line each)
TEST_FRACTION = 0.15
SPLIT_SEED = 20261206  # the held-out permutation; fixed so every machine splits alike
MOSES_TRAIN_N, MOSES_TEST_N = 100_000, 10_000
SOURCES_HELP = ("fortunes, fortunes:test, moses, moses:test, a .txt file (one example per line), or a folder of .txt "
                "files (one topic each)")


@dataclass
class TextData:
    """Encoded lines on a device: `ids` (N, max_len + 2) int64 (<bos> tokens <eos> <pad>...),
    `y` (N,) topic labels or None, and the text itself (`lines`, for BLEU references)."""

    name: str
    ids: torch.Tensor
    y: torch.Tensor | None
    vocab: Vocab
    max_len: int
    lines: list[str]
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def meta(self) -> dict:
        """What a trained model needs to know about its data (stored in checkpoints)."""
        return {"name": self.name, "kind": "text", "vocab": self.vocab.to_dict(), "max_len": self.max_len,
                "classes": self.classes, "count": len(self)}

    def to(self, device) -> TextData:
        self.ids = self.ids.to(device)
        self.y = None if self.y is None else self.y.to(device)
        return self


def _fortunes() -> tuple[list[str], list[str]]:
    """(cookies, their topics) of the built-in corpus, in file then cookie order."""
    files = sorted(f for f in FORTUNES_DIR.glob("*") if f.is_file() and not f.is_symlink() and f.suffix != ".dat") \
        if FORTUNES_DIR.is_dir() else []
    if not files:
        raise GankitError(f"data source 'fortunes': no fortune files in {FORTUNES_DIR}; install Debian's fortunes "
                          "package (apt-get install fortunes; `make` does this as root), or give a .txt file")
    lines, topics, seen = [], [], set()
    for f in files:
        for cookie in f.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            if any(ord(ch) < 32 and ch not in "\n\t" for ch in cookie) or "\ufffd" in cookie:
                continue  # overstrike (backspace) formatting, undecodable bytes
            line = re.sub(r"\s+", " ", cookie).strip()
            if line and len(line) <= FORTUNES_MAX_CHARS and line not in seen:
                seen.add(line)
                lines.append(line)
                topics.append(f.name)
    return lines, topics


def moses_dir() -> Path:
    """The folder of MOSES's data files inside the installed `molsets` package (module `moses`)."""
    import importlib.util

    spec = importlib.util.find_spec("moses")
    d = Path(spec.submodule_search_locations[0]) / "dataset" / "data" if spec and spec.submodule_search_locations \
        else None
    if d is None or not (d / "train.csv.gz").is_file():
        raise GankitError("data source 'moses': the molsets package is not installed; pip install --no-deps molsets "
                          "(make does this)")
    return d


def moses_smiles(split: str) -> list[str]:
    """Every SMILES of MOSES's train or test file, in file order."""
    import gzip

    with gzip.open(moses_dir() / f"{split}.csv.gz", "rt", encoding="utf-8") as f:
        rows = f.read().splitlines()
    return [r.split(",")[0] for r in rows[1:] if r]  # header: SMILES


def _moses() -> dict[str, tuple[list[str], None]]:
    out = {}
    for split, n in (("train", MOSES_TRAIN_N), ("test", MOSES_TEST_N)):
        allx = moses_smiles(split)
        pick = sorted(random.Random(SPLIT_SEED).sample(range(len(allx)), n))
        out[split] = ([allx[i] for i in pick], None)
    return out


def valid_smiles(lines: list[str], name: str, quiet: bool = False) -> list[str]:
    """The lines RDKit parses as molecules; the others are counted and skipped with one warning."""
    from gankit.data.molecules import is_valid

    ok = [ln for ln in lines if is_valid(ln)]
    if len(ok) < len(lines) and not quiet:
        warn(f"{name}: {len(lines) - len(ok)} of {len(lines)} lines are not valid SMILES (RDKit) and were skipped")
    return ok


def _user_lines(path: Path) -> tuple[list[str], list[str] | None]:
    """A user's lines and, for a folder of two or more .txt files, each line's topic (the file's stem)."""
    if path.is_dir():
        files = sorted(f for f in path.rglob("*.txt") if f.is_file())
        if len(files) >= 2:
            lines, topics = [], []
            for f in files:
                ls = read_lines(f)
                lines += ls
                topics += [f.stem] * len(ls)
            return lines, topics
    return read_lines(path), None


def split_lines(lines: list[str], topics: list[str] | None) -> dict[str, tuple[list[str], list[str] | None]]:
    """{"train": ..., "test": ...}: the unique lines, 15% held out by a fixed permutation."""
    first: dict[str, int] = {}
    for i, ln in enumerate(lines):
        first.setdefault(ln, i)
    keep = sorted(first.values())
    if len(keep) < 2:
        raise GankitError(f"{len(keep)} distinct line(s); a text corpus needs at least 2 (one to hold out)")
    order = list(keep)
    random.Random(SPLIT_SEED).shuffle(order)
    n_test = max(1, round(TEST_FRACTION * len(order)))
    parts = {"test": sorted(order[:n_test]), "train": sorted(order[n_test:])}
    return {k: ([lines[i] for i in ix], None if topics is None else [topics[i] for i in ix])
            for k, ix in parts.items()}


def load_text(source: str, level: str = "char", max_len: int = 64, split: str = "train",
              vocab: Vocab | None = None, classes: list[str] | None = None, vocab_size: int | None = None,
              quiet: bool = False, smiles: bool = False) -> TextData:
    """`source`'s `split` lines encoded with `vocab` (None: built from the training lines at
    `level`, at most `vocab_size` tokens) and labelled with `classes` (None: the source's own,
    sorted). `source:test` selects the held-out split. `smiles`: the lines are molecules, and a
    user's lines RDKit cannot parse are skipped (counted, one warning)."""
    if source.endswith(":test") or source.endswith(":train"):
        source, split = source.rsplit(":", 1)
    name = source if split == "train" else f"{source}:{split}"
    if split not in ("train", "test"):
        raise GankitError(f"text split {split!r}; expected train or test")
    if source == "fortunes":
        parts = split_lines(*_fortunes())
        origin = f"Debian fortunes ({FORTUNES_DIR}), cookies of at most {FORTUNES_MAX_CHARS} characters"
    elif source == "moses":
        parts = _moses()
        origin = (f"MOSES (molsets), a fixed {MOSES_TRAIN_N:,} of its training and {MOSES_TEST_N:,} of its test "
                  "SMILES")
    elif Path(source).expanduser().exists():
        lines, topics = _user_lines(Path(source).expanduser())
        if smiles:
            keep = set(valid_smiles(lines, source, quiet))
            topics = None if topics is None else [t for ln, t in zip(lines, topics) if ln in keep]
            lines = [ln for ln in lines if ln in keep]
        parts = split_lines(lines, topics)
        origin = str(Path(source).expanduser())
    else:
        raise GankitError(f"unknown text source {source!r}; expected {SOURCES_HELP}")
    train_lines, _ = parts["train"]
    sel, sel_topics = parts[split]
    vocab = vocab or Vocab.build(train_lines, level, vocab_size)
    ids, cut = vocab.encode(sel, max_len)
    if cut and not quiet:
        warn(f"{name}: {cut} of {len(sel)} lines are longer than text.max_len = {max_len} tokens and were "
             "truncated (raise text.max_len to keep them whole)")
    y = None
    if sel_topics is not None:
        classes = classes if classes is not None else sorted(set(parts["train"][1] or []) | set(sel_topics))
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(sel_topics) - set(index))
        if unknown:
            raise GankitError(f"{name}: topics {unknown[:3]} are not among the run's {len(classes)} classes")
        y = torch.tensor([index[t] for t in sel_topics], dtype=torch.int64)
    notes = [f"{origin}; {split} split: {len(sel)} of {len(parts['train'][0]) + len(parts['test'][0])} lines",
             f"{vocab.level}-level vocabulary of {len(vocab)} tokens (4 special)"]
    if cut:
        notes.append(f"{cut} lines truncated to {max_len} tokens")
    unk = int((ids == 3).sum())
    if unk:
        notes.append(f"{unk} tokens not in the vocabulary (<unk>)")
    return TextData(name, ids, y, vocab, max_len, sel, classes or [], notes)
