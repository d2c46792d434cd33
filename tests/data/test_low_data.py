"""mnist@N: the low-data split holds exactly N training digits, N/10 per class, the same ones every
time, nested (mnist@100 inside mnist@1000), and none of the test set."""

import numpy as np
import pytest
import torch

from gankit.data import load_data, low_data_indices
from gankit.data.mnist import load_mnist
from gankit.errors import GankitError


def test_the_split_holds_exactly_n_balanced_training_digits():
    d = load_data("mnist@100")
    assert d.x.shape == (100, 1, 28, 28) and torch.bincount(d.y, minlength=10).tolist() == [10] * 10
    x, y = load_mnist("train")
    keep = low_data_indices(y, 100)
    assert torch.equal(d.x, torch.from_numpy(x[keep])) and len(set(keep.tolist())) == 100
    assert torch.equal(load_data("mnist@100").x, d.x)  # the same every time


def test_splits_nest_and_never_reach_the_test_set():
    _, y = load_mnist("train")
    small, big = set(low_data_indices(y, 100).tolist()), set(low_data_indices(y, 1000).tolist())
    assert small < big
    xt, _ = load_mnist("test")
    test_rows = {r.tobytes() for r in xt.reshape(len(xt), -1)}
    d = load_data("mnist@1000").x.numpy().reshape(1000, -1)
    assert sum(r.tobytes() in test_rows for r in d) <= 2  # MNIST has a few train/test duplicates, not more


@pytest.mark.parametrize("source,msg", [("mnist@15", "multiple of the 10 classes"), ("mnist@abc", "mnist@N"),
                                        ("mnist@70000", "at most")])
def test_bad_sizes_are_refused(source, msg):
    with pytest.raises(GankitError, match=msg):
        load_data(source)


def test_indices_are_balanced_for_any_labels():
    y = np.repeat(np.arange(3), [5, 7, 9])
    idx = low_data_indices(y, 9)
    assert np.bincount(y[idx]).tolist() == [3, 3, 3]
