"""Text metrics in Texygen's protocol (Zhu et al. 2018), which text-GAN papers report:

    bleu(samples, references, n)   mean sentence BLEU-n of each sample against all references
    self_bleu(samples, n)          mean BLEU-n of each sample against all the other samples

Sentences are lists of tokens (characters or words). Each sample's BLEU-n is NLTK's
`sentence_bleu` with uniform weights 1/n over 1..n-grams and `SmoothingFunction().method1`, the
settings Texygen uses:

    p_k  = sum over k-grams g of the sample: min(count(g), max over references of count_ref(g))
           / number of k-grams of the sample                      (modified precision)
           (the denominator at least 1); a zero numerator becomes 0.1 (method1's epsilon), but
           a sample with no unigram in common with the references scores 0, as in NLTK
    BP   = 1 if c > r else exp(1 - r / c), c the sample's length, r the reference length closest
           to c (the shorter one on a tie)
    BLEU = BP * exp(sum_k log(p_k) / n)

Texygen scores the samples against the test set (quality) and each sample against the other
samples (self-BLEU: lower is more diverse). NLTK recounts every reference's n-grams for every
sample, which makes 1,000 x 10,000 sentences take minutes; here the references are counted once
into the maximum count of each n-gram (and, for self-BLEU, the largest two with the owner of the
largest, so a sample can be left out of its own references), which gives the same numbers
(checked against NLTK 3.10's sentence_bleu on random sentences for n = 2..5: equal to 1e-12).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence

EPSILON = 0.1  # NLTK's SmoothingFunction(epsilon=0.1).method1


def ngrams(tokens: Sequence, k: int) -> Counter:
    return Counter(tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1))


def _closest(lengths: list[int], c: int) -> int:
    """The reference length closest to c, the shorter on a tie (NLTK's closest_ref_length);
    `lengths` sorted."""
    i = bisect.bisect_left(lengths, c)
    cands = lengths[max(0, i - 1):i + 1]
    return min(cands, key=lambda r: (abs(r - c), r))


def _sentence(sample: Sequence, n: int, max_count, ref_len: int) -> float:
    c = len(sample)
    if c == 0:
        return 0.0
    logs = 0.0
    for k in range(1, n + 1):
        counts = ngrams(sample, k)
        total = max(1, sum(counts.values()))  # NLTK: a sample shorter than k has precision 0/1
        hit = sum(min(v, max_count(g)) for g, v in counts.items())
        if k == 1 and hit == 0:  # no unigram in common: BLEU 0, whatever the smoothing
            return 0.0
        logs += math.log((hit if hit else EPSILON) / total)
    bp = 1.0 if c > ref_len else math.exp(1 - ref_len / c)
    return bp * math.exp(logs / n)


def _check(sentences: Sequence[Sequence], what: str, n: int) -> None:
    if n < 1:
        raise ValueError(f"BLEU-n needs n >= 1, got {n}")
    if not sentences:
        raise ValueError(f"{what}: no sentences")


def bleu(samples: Sequence[Sequence], references: Sequence[Sequence], n: int = 4) -> float:
    """Mean sentence BLEU-n of `samples` against the whole set `references` (Texygen)."""
    _check(samples, "samples", n)
    _check(references, "references", n)
    best: dict[tuple, int] = {}
    for ref in references:
        for k in range(1, n + 1):
            for g, v in ngrams(ref, k).items():
                if v > best.get(g, 0):
                    best[g] = v
    lengths = sorted({len(r) for r in references})
    return sum(_sentence(s, n, lambda g: best.get(g, 0), _closest(lengths, len(s))) for s in samples) / len(samples)


def self_bleu(samples: Sequence[Sequence], n: int = 4) -> float:
    """Mean BLEU-n of each sample against all the others (Texygen's self-BLEU; lower: more diverse)."""
    _check(samples, "samples", n)
    if len(samples) < 2:
        raise ValueError("self-BLEU needs at least 2 samples")
    top: dict[tuple, list] = {}  # n-gram -> [largest count, its owner, second largest count]
    for i, s in enumerate(samples):
        for k in range(1, n + 1):
            for g, v in ngrams(s, k).items():
                t = top.setdefault(g, [0, -1, 0])
                if v > t[0]:
                    t[:] = [v, i, t[0]]
                elif v > t[2]:
                    t[2] = v
    lengths = Counter(len(s) for s in samples)
    total = 0.0
    for i, s in enumerate(samples):
        def max_count(g, i=i):
            t = top.get(g)
            return 0 if t is None else (t[2] if t[1] == i else t[0])
        lengths[len(s)] -= 1  # the others' lengths
        others = sorted(k for k, v in lengths.items() if v > 0)
        total += _sentence(s, n, max_count, _closest(others, len(s)))
        lengths[len(s)] += 1
    return total / len(samples)
