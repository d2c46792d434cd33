"""Texygen's BLEU and self-BLEU (gankit.metrics.text) against hand computations."""

import math

import pytest

from gankit.metrics.text import bleu, self_bleu

REFS = ["the cat sat on the mat".split(), "there is a cat on the mat".split()]


def test_bleu2_by_hand():
    # "the cat on the mat": every unigram (the x2 clipped at ref 1's 2) and bigram is in some
    # reference, so p1 = p2 = 1; c = 5, the closest reference length 6: BP = exp(1 - 6/5)
    assert bleu(["the cat on the mat".split()], REFS, 2) == pytest.approx(math.exp(-0.2))
    # "a dog sat": p1 = 2/3; no bigram matches: method1 makes p2 = 0.1 / 2; BP = exp(1 - 6/3)
    low = math.exp(-1) * math.sqrt(2 / 3 * 0.05)
    assert bleu(["a dog sat".split()], REFS, 2) == pytest.approx(low)
    assert bleu(["the cat on the mat".split(), "a dog sat".split()], REFS, 2) == pytest.approx((math.exp(-0.2) + low) / 2)


def test_bleu_clips_counts_and_edge_cases():
    # "the the the the": 'the' is clipped at 2 (ref 1 has it twice): p1 = 2/4; bigram (the, the) never occurs
    p = math.exp(1 - 6 / 4) * math.sqrt(0.5 * 0.1 / 3)
    assert bleu(["the the the the".split()], REFS, 2) == pytest.approx(p)
    # shorter than n: the bigram precision is 0/1, smoothed to 0.1; BP = exp(1 - 2/1)
    assert bleu([["a"]], [["a", "b"]], 2) == pytest.approx(math.exp(-1) * math.sqrt(0.1))
    assert bleu([["q"]], REFS, 2) == 0.0  # no unigram in common: 0 whatever the smoothing
    assert bleu([REFS[0]], REFS, 4) == pytest.approx(1.0)  # a reference itself
    with pytest.raises(ValueError):
        bleu([], REFS)


def test_self_bleu_leaves_each_sample_out_of_its_references():
    a, b, c = "a b c d".split(), "a b c e".split(), "x y z w".split()
    # a against {b, c}: p1 = 3/4, p2 = 2/3, same lengths: BP 1; b likewise; c shares nothing: 0
    assert self_bleu([a, b, c], 2) == pytest.approx(2 * math.sqrt(3 / 4 * 2 / 3) / 3)
    assert self_bleu([a, a], 4) == pytest.approx(1.0)  # each is the other's copy
    # were a sample its own reference, three distinct sentences would score 1
    assert self_bleu([a, b, c], 4) < 0.5
    with pytest.raises(ValueError):
        self_bleu([a], 2)
