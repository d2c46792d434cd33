"""The fashion-mnist sources: Debian's dataset-fashion-mnist read in place, its test split, the
class-balanced @N subsets; a one-line error naming the package when the files are missing."""

import numpy as np
import pytest

from gankit.data import load_data
from gankit.data.fashion import fashion_available
from gankit.errors import GankitError
from gankit.metrics.memorization import held_out_source

needs_files = pytest.mark.skipif(not fashion_available(),
                                 reason="Fashion-MNIST missing: apt-get install dataset-fashion-mnist (make corpora)")


@needs_files
def test_the_test_split_and_a_balanced_subset():
    test = load_data("fashion-mnist:test")
    assert tuple(test.x.shape) == (10_000, 1, 28, 28) and test.classes[9] == "ankle-boot"
    assert np.bincount(test.y.numpy()).tolist() == [1000] * 10
    small, larger = load_data("fashion-mnist@100"), load_data("fashion-mnist@200")
    assert len(small) == 100 and np.bincount(small.y.numpy()).tolist() == [10] * 10
    assert "10 per class" in small.notes[0]
    rows = {bytes(x.numpy()) for x in larger.x}
    assert all(bytes(x.numpy()) in rows for x in small.x)  # the subsets nest, as mnist@N's do
    assert not {bytes(x.numpy()) for x in small.x} & {bytes(x.numpy()) for x in test.x[:2000]}
    assert held_out_source("fashion-mnist@100") == "fashion-mnist:test"
    with pytest.raises(GankitError, match="^fashion-mnist@7: n must be a multiple of the 10 classes"):
        load_data("fashion-mnist@7")


def test_missing_files_name_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_FASHION_MNIST", str(tmp_path))
    with pytest.raises(GankitError, match=r"^fashion-mnist: t10k-images-idx3-ubyte.gz not found in .*; "
                                          r"install Debian's package \(apt-get install dataset-fashion-mnist\)"):
        load_data("fashion-mnist:test")
