"""The lfw / lfw:test sources: scikit-image's bundled faces, split once."""

import numpy as np
import torch

from gankit.data import SOURCES_HELP, load_data
from gankit.data.faces import LFW_FACES, lfw_faces, lfw_split

# the documented held-out split (docs/low-data.md): changing the seed or the rule moves it, and
# every memorisation result measured against lfw:test with it
HELD_OUT = [5, 8, 9, 10, 11, 13, 16, 20, 27, 36, 37, 52, 72, 75, 81, 82, 83, 90, 93, 94]


def test_split_is_fixed_disjoint_and_faces_only():
    train, test = lfw_split()
    assert test.tolist() == HELD_OUT
    assert len(train) == 80 and not set(train) & set(test)
    assert sorted([*train, *test]) == list(range(LFW_FACES))  # the 100 faces, none of the 100 background patches


def test_sources_hold_the_split_faces():
    faces = torch.from_numpy(lfw_faces())
    train, test = load_data("lfw"), load_data("lfw:test")
    assert train.x.dtype == torch.uint8 and tuple(train.x.shape) == (80, 1, 25, 25) and train.y is None
    assert tuple(test.x.shape) == (20, 1, 25, 25)
    torch.testing.assert_close(test.x, faces[HELD_OUT])
    torch.testing.assert_close(train.x, faces[lfw_split()[0]])
    assert load_data("lfw:train").x.equal(train.x)
    # the bundled array is floats in [0, 1]: stored as uint8 they must use the range, not collapse
    assert int(faces.max()) > 200 and int(faces.min()) < 40 and len(torch.unique(faces)) > 200
    assert "lfw" in SOURCES_HELP


def test_resized_to_a_model_resolution():
    d = load_data("lfw", resolution=32, channels=3)
    assert tuple(d.x.shape) == (80, 3, 32, 32)
    assert any("25x25 -> 32x32" in n for n in d.notes)


def test_the_first_hundred_of_lfw_subset_only():
    from skimage.data import lfw_subset

    raw = np.round(lfw_subset() * 255)  # (200, 25, 25): 100 faces, then 100 background patches
    assert np.array_equal(lfw_faces()[:, 0].astype(np.float64), raw[:100])
