"""The labelled lesion phantoms: classes, seeds, determinism, and each lesion where and what the
recipe (gankit.data.lesions) says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gankit.data import Dataset, lesions, load_data
from gankit.data.class_folder import write_class_folder
from gankit.data.phantoms import ellipse_phantoms
from gankit.errors import GankitError


@pytest.fixture
def small(monkeypatch):
    """The sources at 12 training and 6 held-out images, so that loading takes milliseconds."""
    monkeypatch.setattr(lesions, "TRAIN_COUNT", 12)
    monkeypatch.setattr(lesions, "TEST_COUNT", 6)


def test_lesion_is_where_and_what_the_recipe_says():
    x, y, found = lesions.lesion_phantoms(10, 32, seed=5)
    body = ellipse_phantoms(10, 32, seed=5)  # the same bodies, from phantoms.py's generator
    assert y.tolist() == [0, 1] * 5  # interleaved: even normal, odd lesion
    for i in range(10):
        if not y[i]:
            assert found[i] is None
            np.testing.assert_array_equal(x[i], body[i])  # a normal image is the body untouched
            continue
        les = found[i]
        assert lesions.AXES[0] <= min(les.a, les.b) and max(les.a, les.b) <= lesions.AXES[1]
        m = les.mask(32)
        assert m.any() and not np.array_equal(x[i] * m, body[i] * m)
        np.testing.assert_array_equal(x[i][~m], body[i][~m])  # nothing changes outside the ellipse
        v = body[i][m]
        np.testing.assert_allclose(x[i][m], np.where(v < 0.5, v + 0.5, v - 0.5), atol=1e-6)  # contrast 0.5
        r, c = round(les.cy * 16 + 16), round(les.cx * 16 + 16)  # its centre is a body pixel
        assert body[i][r, c] > lesions.BODY


def test_seeded_and_deterministic():
    a, b = lesions.lesion_phantoms(6, 32, 30), lesions.lesion_phantoms(6, 32, 30)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]
    c = lesions.lesion_phantoms(6, 32, 31)
    assert not np.array_equal(a[0], c[0])


def test_sources(small):
    train, test = load_data("phantoms-lesion"), load_data("phantoms-lesion:test")
    assert train.classes == ["normal", "lesion"] and test.classes == ["normal", "lesion"]
    assert train.x.shape == (12, 1, 64, 64) and train.x.dtype == torch.uint8 and len(test) == 6
    assert train.y.bincount().tolist() == [6, 6]
    assert not any(torch.equal(a, b) for a in train.x for b in test.x)  # the held-out images are other phantoms
    sub = load_data("phantoms-lesion@4")
    assert sub.y.tolist() == [0, 1, 0, 1]
    assert torch.equal(sub.x, train.x[:4])  # @N: the first N/2 of each class, so the splits nest
    assert "seed 30" in train.notes[0] and "lesion" in train.notes[0]


@pytest.mark.parametrize("source", ["phantoms-lesion@3", "phantoms-lesion@x", "phantoms-lesion:val",
                                    "phantoms-lesion:test@4"])
def test_bad_source_is_one_line(small, source):
    with pytest.raises(GankitError) as e:
        load_data(source)
    assert "\n" not in str(e.value) and "phantoms-lesion" in str(e.value)


def test_class_folder_round_trip(small, tmp_path):
    data = load_data("phantoms-lesion")
    counts = write_class_folder(data, tmp_path / "scans")
    assert counts == {"normal": 6, "lesion": 6}
    back = load_data(str(tmp_path / "scans"))
    assert sorted(back.classes) == ["lesion", "normal"] and len(back) == 12
    assert sorted(p.name for p in (tmp_path / "scans").iterdir()) == ["lesion", "normal"]
    with pytest.raises(GankitError, match="already exists"):
        write_class_folder(data, tmp_path / "scans")
    with pytest.raises(GankitError, match="no classes"):
        write_class_folder(Dataset(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), None, "plain"), tmp_path / "other")
    assert not (tmp_path / "other").exists()
