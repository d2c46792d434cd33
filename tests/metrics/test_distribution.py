import math

import pytest
import torch
from torch.testing import assert_close

from gankit.metrics.distribution import (class_histogram, class_kl, density_coverage, knn_radii,
                                         precision_recall, stacked_modes)


def col(*xs: float) -> torch.Tensor:
    """1-D points as an (N, 1) feature tensor."""
    return torch.tensor(xs, dtype=torch.float32)[:, None]


# real = 0, 1, 3, 7 on a line. Distances to the others:
#   0: 1, 3, 7    1: 1, 2, 6    3: 2, 3, 4    7: 4, 6, 7
# so NND_1 = 1, 1, 2, 4 and NND_2 = 3, 2, 3, 6; the k=1 balls are
#   [-1, 1], [0, 2], [1, 5], [3, 11]   and the k=2 balls [-3, 3], [-1, 3], [0, 6], [1, 13].
REAL = col(0, 1, 3, 7)
SQUARE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_knn_radii_on_a_line_exclude_the_point_itself():
    for chunk in (1, 3, 2048):
        assert_close(knn_radii(REAL, 1, chunk), torch.tensor([1.0, 1.0, 2.0, 4.0], dtype=torch.float64))
        assert_close(knn_radii(REAL, 2, chunk), torch.tensor([3.0, 2.0, 3.0, 6.0], dtype=torch.float64))


def test_knn_radii_are_euclidean_and_count_duplicates_as_neighbours():
    # unit square: two neighbours at 1, the diagonal at sqrt 2 (L1 would say 2, L-inf 1)
    assert_close(knn_radii(SQUARE, 2), torch.ones(4, dtype=torch.float64))
    assert_close(knn_radii(SQUARE, 3), torch.full((4,), math.sqrt(2), dtype=torch.float64))
    # a duplicated point is its copy's nearest neighbour, at distance 0
    assert_close(knn_radii(col(0, 0, 5), 1), torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64))


def test_knn_radii_rejects_k_beyond_the_set():
    with pytest.raises(ValueError, match="1 <= k <= N - 1 = 3"):
        knn_radii(REAL, 4)


def test_precision_recall_of_a_set_against_itself_is_one():
    x = torch.randn(60, 5)
    assert precision_recall(x, x, k=3) == (1.0, 1.0)


def test_precision_recall_on_a_line_by_hand():
    fake = col(0.25, 0.75, 11, 12.5)
    # precision, real k=1 balls [-1,1] [0,2] [1,5] [3,11]: 0.25 in, 0.75 in, 11 on the edge of
    # [3,11] (counts: <=), 12.5 out -> 3/4.
    # recall, fake NND_1 = 0.5, 0.5, 1.5, 1.5, balls [-0.25,0.75] [0.25,1.25] [9.5,12.5] [11,14]:
    # real 0 in, 1 in, 3 out, 7 out -> 2/4.
    assert precision_recall(REAL, fake, k=1) == (0.75, 0.5)
    # swapping the sets swaps the roles
    assert precision_recall(fake, REAL, k=1) == (0.5, 0.75)


def test_precision_in_2d_uses_euclidean_balls():
    # square corners, k=1 radius 1 each. (0.5, 0.5) is 0.71 from every corner: in.
    # (1.8, 1.5) is sqrt(0.89) = 0.94 from (1, 1): in (its L1 distance 1.3 would be out).
    # (1.9, 1.9) is sqrt(1.62) = 1.27 from (1, 1): out (its L-inf distance 0.9 would be in).
    fake = torch.tensor([[0.5, 0.5], [1.8, 1.5], [1.9, 1.9]])
    # recall: fake NND_1 = sqrt(2.69) = 1.64, sqrt(0.17), sqrt(0.17); every corner is 0.71 from
    # (0.5, 0.5), inside its 1.64 ball -> 1.
    p, r = precision_recall(SQUARE, fake, k=1)
    assert_close(p, 2 / 3)
    assert r == 1.0


def test_far_away_fakes_have_zero_precision_and_recall():
    # fake NND_1 = 50: balls [50, 150] and [100, 200] hold no real point
    assert precision_recall(REAL, col(100, 150), k=1) == (0.0, 0.0)


def test_density_coverage_on_a_line_by_hand():
    fake = col(0.25, 0.75, 11, 12.5)
    # k=1 balls [-1,1] [0,2] [1,5] [3,11]: 0.25 and 0.75 each in 2 balls, 11 in 1, 12.5 in none
    # -> density 5 / (1 * 4) = 1.25; balls holding a fake: 0, 1, 7 -> coverage 3/4
    assert density_coverage(REAL, fake, k=1) == (1.25, 0.75)
    # k=2 balls [-3,3] [-1,3] [0,6] [1,13]; fakes 0.25, 0.75, 11, 14:
    # 0.25 and 0.75 in the first 3 (not [1,13]), 11 in [1,13] only, 14 in none
    # -> density 7 / (2 * 4), below 1 this time; every ball holds a fake -> coverage 1
    assert density_coverage(REAL, col(0.25, 0.75, 11, 14), k=2) == (7 / 8, 1.0)


def test_density_exceeds_one_when_fakes_pile_into_shared_balls():
    # five fakes at 0.5, each inside both [-1,1] and [0,2]: density 10 / (1 * 5) = 2, coverage 2/4
    assert density_coverage(REAL, col(*[0.5] * 5), k=1) == (2.0, 0.5)


def test_identical_sets_are_fully_covered():
    x = torch.randn(60, 5)
    assert density_coverage(x, x, k=5)[1] == 1.0


def test_chunked_and_unchunked_agree_on_2000_random_points():
    real, fake = torch.randn(2000, 2), 1.3 * torch.randn(2000, 2) + 0.2
    whole, part = 2048, 333  # one chunk holding every row; 7 chunks, the last one short
    assert_close(knn_radii(real, 3, chunk=part), knn_radii(real, 3, chunk=whole))
    pr = precision_recall(real, fake, 3, chunk=whole)
    assert 0.3 < pr[0] < 1.0 and 0.3 < pr[1] < 1.0  # neither trivially 0 nor 1
    assert precision_recall(real, fake, 3, chunk=part) == pr
    assert density_coverage(real, fake, 5, chunk=part) == density_coverage(real, fake, 5, chunk=whole)


def test_chunks_bound_the_distance_matrix(monkeypatch):
    rows = []
    cdist = torch.cdist

    def spy(a, b, *args, **kwargs):
        rows.append(len(a))
        return cdist(a, b, *args, **kwargs)

    monkeypatch.setattr(torch, "cdist", spy)
    x, y = torch.randn(300, 4), torch.randn(250, 4)
    precision_recall(x, y, chunk=64)
    density_coverage(x, y, chunk=64)
    assert rows and max(rows) == 64


def test_class_kl_one_class_against_uniform_is_ln_10():
    one = class_histogram(torch.full((50,), 3), 10)
    assert_close(one, torch.eye(10, dtype=torch.float64)[3])
    uniform = class_histogram(torch.arange(10).repeat(7), 10)
    assert_close(uniform, torch.full((10,), 0.1, dtype=torch.float64))
    assert_close(class_kl(one, uniform), math.log(10))


def test_class_kl_identical_is_zero_and_zeros_are_handled():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    assert_close(class_kl(p, p), 0.0)  # 0 log 0 = 0, not nan
    # p_real = 0 where p_fake > 0: guarded by eps -> 0.5 log(0.5/1) + 0.5 log(0.5 / 1e-10)
    q = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert_close(class_kl(p, q), 0.5 * math.log(0.5) + 0.5 * math.log(0.5 / 1e-10))


def test_class_histogram_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match="expected 0..9"):
        class_histogram(torch.tensor([0, 10]), 10)


def test_stacked_modes_three_modes_by_hand():
    # modes 0 (x2), 123 (x1), 999 (x1): p = 1/2, 1/4, 1/4 against 1/1000 each
    # KL = 1/2 ln 500 + 2 * 1/4 ln 250
    d = torch.tensor([[0, 0, 0], [0, 0, 0], [1, 2, 3], [9, 9, 9]])
    s = stacked_modes(d)
    assert s["modes"] == 3 and s["n"] == 4
    assert_close(s["kl"], 0.5 * math.log(500) + 0.5 * math.log(250))


def test_stacked_modes_every_mode_once():
    ids = torch.arange(1000)
    d = torch.stack([ids // 100, ids // 10 % 10, ids % 10], 1)  # (1000, 3)
    s = stacked_modes(d)
    assert s["modes"] == 1000 and s["n"] == 1000
    assert_close(s["kl"], 0.0)
