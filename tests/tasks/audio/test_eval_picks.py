"""Which clips the audio task's scores use: spread over the whole set, so every digit of a set
stored in digit order is in the reference (a stride cut at n dropped the last digits when n did
not divide the set's size), and the same picks as that stride where it does."""

import numpy as np
import pytest

from gankit.tasks.audio.evaluation import spread


@pytest.mark.parametrize("n, total", [(1000, 5000), (100, 1000), (1000, 1000), (20, 1000)])
def test_an_exact_stride_keeps_its_old_picks(n, total):
    np.testing.assert_array_equal(spread(n, total), np.arange(total)[::total // n][:n])


@pytest.mark.parametrize("n, total", [(2000, 5000), (300, 1000), (7, 10)])
def test_every_digit_is_picked_about_equally_when_n_does_not_divide(n, total):
    digits = np.repeat(np.arange(10), total // 10)  # the set's storage order: digit by digit
    counts = np.bincount(digits[spread(n, total)], minlength=10)
    assert len(spread(n, total)) == n and len(set(spread(n, total))) == n
    assert counts.max() - counts.min() <= 1


def test_more_than_the_set_gives_the_whole_set():
    np.testing.assert_array_equal(spread(2000, 1000), np.arange(1000))
