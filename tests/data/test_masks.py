"""Inpainting masks: boxes, free-form strokes, config strings, user mask files, matching, compositing."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data.masks import (MASK_KINDS, MaskKind, box_masks, composite, load_mask, masks_for_folder,
                               parse_mask_kind, stroke_masks)
from gankit.errors import GankitError


def _fractions(m):
    return m.float().mean(dim=(1, 2, 3))


def _bbox(m):
    """(top, bottom, left, right), exclusive ends, of the True pixels of one (H, W) mask."""
    rows, cols = m.any(1).nonzero()[:, 0], m.any(0).nonzero()[:, 0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _save(path, a):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(a, dtype=np.uint8)).save(path)
    return path


# -- boxes -----------------------------------------------------------------------------------

def test_fixed_area_boxes_are_one_filled_rectangle_of_that_area_and_bounded_aspect():
    m = box_masks(300, 64, 64, (0.25, 0.25), 0)
    assert m.shape == (300, 1, 64, 64) and m.dtype == torch.bool
    assert (_fractions(m) - 0.25).abs().max() < 0.03
    aspects = []
    for k in m[:, 0]:
        t, b, lft, r = _bbox(k)
        box = torch.zeros_like(k)
        box[t:b, lft:r] = True
        assert torch.equal(k, box)  # the True pixels are exactly their bounding box
        aspects.append((r - lft) / (b - t))
    aspects = np.array(aspects)
    assert aspects.min() >= 0.5 * 0.95 and aspects.max() <= 2 * 1.05
    assert aspects.min() < 0.6 and aspects.max() > 1.7  # the whole log-uniform range is used


def test_box_area_range_statistics_and_placement_covers_the_image():
    m = box_masks(500, 64, 64, (0.1, 0.5), 0)
    f = _fractions(m)
    assert abs(float(f.mean()) - 0.3) < 0.03
    assert 0.1 - 0.03 <= float(f.min()) < 0.13 and 0.47 < float(f.max()) <= 0.5 + 0.03
    hits = m[:, 0].float().mean(0)  # every row and column is in some hole, the centre most often
    assert hits.sum(0).min() > 0 and hits.sum(1).min() > 0 and hits[32, 32] > 2 * hits[0, 0]


def test_boxes_fit_wide_images_keeping_their_area():
    m = box_masks(200, 16, 128, (0.5, 0.5), 1)  # a 2:1 box of half the area cannot fit 16 px high
    assert (_fractions(m) - 0.5).abs().max() < 0.03
    assert all(_bbox(k)[1] - _bbox(k)[0] <= 16 for k in m[:, 0])


def test_masks_are_deterministic_per_seed_and_accept_torch_and_numpy_generators():
    for fn in (lambda g: box_masks(20, 32, 32, (0.1, 0.5), g), lambda g: stroke_masks(20, 32, 32, g)):
        assert torch.equal(fn(3), fn(3)) and not torch.equal(fn(3), fn(4))
        assert torch.equal(fn(3), fn(np.random.default_rng(3)))
        assert torch.equal(fn(torch.Generator().manual_seed(7)), fn(torch.Generator().manual_seed(7)))
        assert not torch.equal(fn(torch.Generator().manual_seed(7)), fn(torch.Generator().manual_seed(8)))


# -- strokes ---------------------------------------------------------------------------------

def test_stroke_masks_cover_the_measured_share_at_256():
    m = stroke_masks(1000, 256, 256, 5)  # the docstring's 15.0% was measured with seed 0
    assert m.shape == (1000, 1, 256, 256) and m.dtype == torch.bool
    f = _fractions(m)
    assert abs(float(f.mean()) - 0.150) < 0.01
    assert float(f.min()) > 0 and float(f.max()) < 0.6
    assert float(f.std()) > 0.03  # strokes vary, unlike a fixed box


def test_stroke_widths_scale_down_so_small_images_keep_sane_holes():
    f = _fractions(stroke_masks(500, 28, 28, 0))
    assert float(f.min()) > 0 and float(f.max()) < 0.7
    assert abs(float(f.mean()) - 0.184) < 0.02
    g = _fractions(stroke_masks(100, 128, 128, 0))
    assert 0.12 < float(g.mean()) < 0.2  # scaled by the side, the share barely changes


# -- config strings --------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, area", [
    ("box:0.25", "box", (0.25, 0.25)), ("box:0.1-0.5", "box", (0.1, 0.5)), ("box:.3", "box", (0.3, 0.3)),
    ("stroke", "stroke", None), ("mixed", "mixed", (0.1, 0.5)), (" Box:0.2-0.2 ", "box", (0.2, 0.2)),
])
def test_parse_mask_kind_accepts(text, kind, area):
    k = parse_mask_kind(text)
    assert k == MaskKind(kind, area) and k.kind in MASK_KINDS
    d = k.describe()
    assert d and "\n" not in d


@pytest.mark.parametrize("text", ["bxo:3", "box:3", "box:0", "box:1", "box:0.5-0.1", "box", "box:", "box:0.1-",
                                  "box:-0.1", "box:nan", "box:0.1-0.2-0.3", "strokes", "", "mixed:0.3"])
def test_parse_mask_kind_rejects_with_one_line_naming_the_text(text):
    with pytest.raises(GankitError) as e:
        parse_mask_kind(text)
    msg = str(e.value)
    assert "\n" not in msg and repr(text) in msg and "box:A-B" in msg and "stroke or mixed" in msg


def test_describe_states_the_area():
    assert "25%" in parse_mask_kind("box:0.25").describe()
    assert "10%-50%" in parse_mask_kind("box:0.1-0.5").describe()


def test_sample_dispatches_and_mixed_draws_both_kinds():
    assert torch.equal(parse_mask_kind("box:0.2").sample(5, 32, 32, 1), box_masks(5, 32, 32, (0.2, 0.2), 1))
    assert torch.equal(parse_mask_kind("stroke").sample(5, 32, 32, 1), stroke_masks(5, 32, 32, 1))
    m = parse_mask_kind("mixed").sample(200, 48, 48, 0)
    assert m.shape == (200, 1, 48, 48) and m.dtype == torch.bool
    rect = []
    for k in m[:, 0]:
        t, b, lft, r = _bbox(k)
        rect.append(bool(k[t:b, lft:r].all()) and int(k.sum()) == (b - t) * (r - lft))
    rect = np.array(rect)
    assert 70 < rect.sum() < 130
    f = _fractions(m).numpy()
    assert f[rect].min() >= 0.07 and f[rect].max() <= 0.53


# -- user masks ------------------------------------------------------------------------------

def test_load_mask_binary_round_trip_grey_and_rgb(tmp_path):
    want = np.random.default_rng(0).random((20, 30)) < 0.3
    m, notes = load_mask(_save(tmp_path / "m.png", want * 255))
    assert m.shape == (1, 20, 30) and m.dtype == torch.bool and torch.equal(m[0], torch.from_numpy(want))
    assert notes == []
    m, notes = load_mask(_save(tmp_path / "rgb.png", np.repeat(want[:, :, None] * 255, 3, 2)), size=(20, 30))
    assert torch.equal(m[0], torch.from_numpy(want)) and notes == []


def test_load_mask_thresholds_a_non_binary_mask_with_a_note(tmp_path):
    a = np.array([[0, 127, 128, 200], [255, 10, 250, 0]])
    p = _save(tmp_path / "soft.png", a)
    m, notes = load_mask(p)
    assert m[0].tolist() == [[False, False, True, True], [True, False, True, False]]
    assert len(notes) == 1 and str(p) in notes[0] and "not binary" in notes[0] and ">= 128" in notes[0]
    rgb = np.zeros((2, 2, 3))
    rgb[0, 0] = (255, 0, 0)  # mean 85: known
    rgb[1, 1] = (255, 255, 0)  # mean 170: missing
    m, notes = load_mask(_save(tmp_path / "rgb.png", rgb))
    assert m[0].tolist() == [[False, False], [False, True]] and len(notes) == 1


def test_load_mask_size_mismatch_is_an_error_unless_resized(tmp_path):
    a = np.zeros((20, 30))
    a[5:10, 0:15] = 255
    p = _save(tmp_path / "m.png", a)
    with pytest.raises(GankitError, match="--resize-mask") as e:
        load_mask(p, size=(40, 60))
    assert str(p) in str(e.value) and "20x30" in str(e.value) and "40x60" in str(e.value)
    m, notes = load_mask(p, size=(40, 60), resize=True)
    assert m.shape == (1, 40, 60) and m.dtype == torch.bool
    assert torch.equal(m[0], torch.from_numpy(a > 0).repeat_interleave(2, 0).repeat_interleave(2, 1))
    assert len(notes) == 1 and "resized" in notes[0] and str(p) in notes[0]
    assert load_mask(p, size=(20, 30))[1] == []


def test_load_mask_refuses_empty_full_unreadable_and_missing_files(tmp_path):
    with pytest.raises(GankitError, match="nothing to repair"):
        load_mask(_save(tmp_path / "empty.png", np.zeros((8, 8))))
    with pytest.raises(GankitError, match="no known pixels"):
        load_mask(_save(tmp_path / "full.png", np.full((8, 8), 255)))
    with pytest.raises(GankitError, match="nothing to repair"):
        load_mask(_save(tmp_path / "faint.png", np.full((8, 8), 100)))  # thresholded to empty
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    for p in (bad, tmp_path / "absent.png"):
        with pytest.raises(GankitError) as e:
            load_mask(p)
        assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_masks_for_folder_matches_stems_and_names_what_is_missing_or_ambiguous(tmp_path):
    images = [_save(tmp_path / "img" / n, np.zeros((4, 4))) for n in ("a.jpg", "b.png")]
    masks = tmp_path / "masks"
    for n in ("a.png", "b.BMP", "c.png", "notes.txt"):
        _save(masks / n, np.zeros((4, 4))) if n != "notes.txt" else (masks / n).write_text("x")
    assert masks_for_folder(images, masks) == [masks / "a.png", masks / "b.BMP"]
    extra = _save(tmp_path / "img" / "d.png", np.zeros((4, 4)))
    with pytest.raises(GankitError) as e:
        masks_for_folder(images + [extra], masks)
    assert str(extra) in str(e.value) and str(masks) in str(e.value)
    _save(masks / "a.tif", np.zeros((4, 4)))
    with pytest.raises(GankitError) as e:
        masks_for_folder(images, masks)
    assert "a.png" in str(e.value) and "a.tif" in str(e.value) and str(images[0]) in str(e.value)


# -- compositing -----------------------------------------------------------------------------

def test_composite_keeps_known_pixels_bit_exactly_and_fills_the_holes():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(4, 1, 16, 16, generator=g) < 0.3
    known, hole = ~mask.expand(4, 3, 16, 16), mask.expand(4, 3, 16, 16)
    img = torch.randint(0, 256, (4, 3, 16, 16), generator=g, dtype=torch.uint8)
    fill = torch.randint(0, 256, (4, 3, 16, 16), generator=g, dtype=torch.uint8)
    out = composite(img, fill, mask)
    assert out.dtype == torch.uint8 and torch.equal(out[known], img[known]) and torch.equal(out[hole], fill[hole])
    x = torch.randn(4, 3, 16, 16, generator=g, dtype=torch.float64) * 1e-3 + 0.1234567
    y = torch.randn(4, 3, 16, 16, generator=g, dtype=torch.float64)
    out = composite(x, y, mask)
    assert out.dtype == torch.float64 and torch.equal(out[known], x[known]) and torch.equal(out[hole], y[hole])
    out = composite(img, torch.full((4, 3, 16, 16), 299.6), mask)  # a float fill into uint8: rounded, clamped
    assert out.dtype == torch.uint8 and (out[hole] == 255).all() and torch.equal(out[known], img[known])
    out = composite(img, 0, mask[0])  # one (1, H, W) mask for the whole batch
    assert (out[mask[0].expand(4, 3, 16, 16)] == 0).all()
    assert torch.equal(out[~mask[0].expand(4, 3, 16, 16)], img[~mask[0].expand(4, 3, 16, 16)])
