"""Frame-interpolation data: Moving MNIST, pans over photos, videos and folders of videos, triplets."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from gankit.data import frames, photos
from gankit.data.frames import Triplets, load_triplets, triplets_of
from gankit.data.frames.moving_digits import digit_paths, moving_mnist
from gankit.data.frames.photo_pans import pan_paths, pans
from gankit.data.mnist import load_mnist
from gankit.errors import GankitError
from gankit.media.video import VideoWriter, read_frames


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """Moving MNIST's cache in a temporary folder (MNIST itself stays in the user's cache)."""
    monkeypatch.setattr("gankit.util.cache_dir", lambda: tmp_path / "cache")
    return tmp_path / "cache"


def _video(path, n=8, w=32, h=32, seed=0):
    """An H.264 clip of n frames of random blocks (each 8x8 px, so that the codec keeps them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    with VideoWriter(path, 25, crf=0) as vw:
        for _ in range(n):
            blocks = g.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
            vw.write(np.ascontiguousarray(blocks.repeat(8, 0).repeat(8, 1)))
    return path


def _com(frame):
    """Centre of mass (y, x) of a (1, H, W) frame, float64."""
    return np.array(ndimage.center_of_mass(frame[0].numpy().astype(np.float64)))


# -- triplets ----------------------------------------------------------------------------------

def test_triplets_of_cuts_every_consecutive_triplet_clip_by_clip():
    clips = torch.randint(0, 256, (3, 7, 2, 5, 4), dtype=torch.uint8)
    prev, mid, nxt = triplets_of(clips)
    assert prev.shape == mid.shape == nxt.shape == (3 * 5, 2, 5, 4)  # S * (T - 2)
    for s in range(3):
        for t in range(1, 6):
            i = s * 5 + t - 1
            assert torch.equal(prev[i], clips[s, t - 1]) and torch.equal(mid[i], clips[s, t])
            assert torch.equal(nxt[i], clips[s, t + 1])
    with pytest.raises(ValueError, match="T >= 3"):
        triplets_of(clips[:, :2])


def test_triplets_meta_len_and_to():
    x = torch.zeros((4, 3, 8, 8), dtype=torch.uint8)
    t = Triplets(x, x.clone(), x.clone(), "pans:test", ["a note"])
    assert len(t) == 4 and t.to("cpu") is t
    assert t.meta() == {"name": "pans:test", "shape": [3, 8, 8], "count": 4}
    with pytest.raises(GankitError, match="pans: no frame triplets"):
        Triplets(x[:0], x[:0], x[:0], "pans")


# -- Moving MNIST ----------------------------------------------------------------------------

def test_moving_mnist_shapes_range_and_seeds():
    a = moving_mnist("train", 3, frames=6, seed=7)
    assert a.shape == (3, 6, 1, 64, 64) and a.dtype == torch.uint8
    assert a.min() == 0 and a.max() >= 250  # MNIST strokes reach 255; the background is 0
    assert torch.equal(a, moving_mnist("train", 3, frames=6, seed=7))
    assert not torch.equal(a, moving_mnist("train", 3, frames=6, seed=8))
    assert moving_mnist("test", 2, frames=4, side=40).shape == (2, 4, 1, 40, 40)
    # without a seed each split has its own fixed one: the same each call, different between splits
    tr, te = moving_mnist("train", 3, frames=4), moving_mnist("test", 3, frames=4)
    assert torch.equal(te, moving_mnist("test", 3, frames=4)) and not torch.equal(tr, te)
    with pytest.raises(GankitError, match="side 28: .* larger than its 28x28 digits"):
        moving_mnist("train", 1, side=28)
    with pytest.raises(GankitError, match="unknown Moving MNIST split 'val'"):
        moving_mnist("val", 1)


@pytest.mark.parametrize("split", ["train", "test"])
def test_moving_mnist_draws_digits_of_its_own_mnist_split(split):
    """The 28x28 box of a lone digit is one MNIST image of the split, exactly."""
    known = {x.tobytes() for x in load_mnist(split)[0][:, 0]}
    clips = moving_mnist(split, 4, frames=1, digits=1)
    for f in clips[:, 0, 0].numpy():
        ys, xs = np.nonzero(f)
        boxes = {f[r:r + 28, c:c + 28].tobytes() for r in range(max(0, ys.max() - 27), ys.min() + 1)
                 for c in range(max(0, xs.max() - 27), xs.min() + 1) if r + 28 <= 64 and c + 28 <= 64}
        assert boxes & known, f"no {split} digit found in a {split} frame"


def test_digit_paths_move_in_straight_lines_and_bounce_off_the_edges():
    span = 36.0
    g = np.random.default_rng(3)
    p = digit_paths(g, 1, 60, 1, span)[0, :, 0]  # (T, 2) top-left (y, x)
    assert p.min() >= 0 and p.max() <= span
    speed = np.abs(np.diff(p, axis=0)).max(0)  # (2,) per axis: steps without a bounce move this far
    assert 2 <= np.linalg.norm(speed) <= 5
    # A straight line folded into [0, span] by reflection at both edges (a triangle wave), for the
    # one direction (of the 4 with these speeds) that fits
    fits = []
    for sign in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        line = p[0] + np.arange(60)[:, None] * (speed * sign)  # (T, 2)
        if np.allclose(p, span - np.abs(np.mod(line, 2 * span) - span), atol=1e-9):
            fits.append(line)
    assert len(fits) == 1
    line = fits[0]
    assert ((line < 0) | (line > span)).any(axis=0).all()  # it bounced along both axes


def test_a_lone_digit_moves_rigidly_inside_the_frame_and_linearly_between_bounces():
    bounces = 0
    for clip in moving_mnist("train", 8, frames=20, seed=11, digits=1):  # (T, 1, 64, 64) each
        mass = clip.double().sum((1, 2, 3))
        assert torch.equal(mass, mass[:1].expand(20))  # never clipped by the frame edge: it stays inside
        shift = np.rint([_com(f) - _com(clip[0]) for f in clip]).astype(int)  # (T, 2) whole-pixel moves
        for t in range(20):  # each frame is the first one moved by whole pixels: the digit is not deformed
            assert torch.equal(clip[t], torch.roll(clip[0], tuple(shift[t]), dims=(1, 2)))
        for axis in range(2):
            d = np.diff(shift[:, axis])
            sign = np.sign(d)
            for i in range(1, len(sign)):  # a step of 0 (speed < 1 px/frame) continues the leg it is in
                sign[i] = sign[i] or sign[i - 1]
            runs = np.split(d, np.nonzero(np.diff(sign))[0] + 1)  # one run per straight leg
            bounces += len(runs) - 1
            for run in runs:
                inner = run[1:-1]  # the first and last steps of a leg may hold part of a bounce
                if len(inner):  # round(x0 + v t) steps by floor(v) or ceil(v): two neighbours at most
                    assert inner.max() - inner.min() <= 1, (axis, run)
    assert bounces >= 4


def test_two_digits_show_as_two_blobs():
    clip = moving_mnist("test", 1, frames=20, seed=0)[0, :, 0].numpy()  # (T, 64, 64)
    big = []
    for f in clip:
        labels, _ = ndimage.label(f > 127)
        big.append(sum(np.bincount(labels.ravel())[1:] >= 30))
    assert max(big) >= 2  # two separated blobs of ink at some frame
    lone = moving_mnist("test", 1, frames=20, seed=0, digits=1)[0, :, 0].numpy()
    assert max(sum(np.bincount(ndimage.label(f > 127)[0].ravel())[1:] >= 30) for f in lone) == 1


def test_load_moving_mnist_test_is_fixed_and_cached(own_cache, monkeypatch):
    monkeypatch.setitem(frames.MOVING_MNIST_COUNTS, "test", 5)
    t = load_triplets("moving-mnist:test")
    assert t.mid.shape == (5 * 18, 1, 64, 64) and t.name == "moving-mnist:test"
    assert t.meta() == {"name": "moving-mnist:test", "shape": [1, 64, 64], "count": 90}
    assert len(list(own_cache.glob("moving-mnist-test-*.npz"))) == 1
    again = load_triplets("moving-mnist", split="test")  # from the cache
    assert torch.equal(again.mid, t.mid) and torch.equal(again.next, t.next)
    assert torch.equal(t.mid[:18], moving_mnist("test", 5, seed=1)[0, 1:-1])
    small = load_triplets("moving-mnist:test", size=32)
    assert small.prev.shape == (90, 1, 32, 32) and "resized 64x64 -> 32x32" in small.notes


# -- pans --------------------------------------------------------------------------------------

def test_pan_frames_are_exact_windows_and_the_middle_one_is_at_the_middle_position():
    T, side = 5, 32
    clips = pans("train", 6, T, side, seed=2)
    assert clips.shape == (6, T, 3, side, side) and clips.dtype == torch.uint8
    which, top, left, dy, dx = pan_paths("train", 6, T, side, 2)
    assert ((np.abs(dy) <= 3) & (np.abs(dx) <= 3) & ((dy != 0) | (dx != 0))).all()
    images = photos.load_photos("train")
    prev, mid, nxt = triplets_of(clips)
    for s in range(6):
        p = torch.from_numpy(np.ascontiguousarray(images[which[s]].transpose(2, 0, 1)))  # (3, H, W)
        for t in range(1, T - 1):
            i = s * (T - 2) + t - 1
            (y0, x0), (y1, x1) = ((top[s] + k * dy[s], left[s] + k * dx[s]) for k in (t - 1, t + 1))
            assert (y0 + y1) % 2 == 0 and (x0 + x1) % 2 == 0  # the middle position is a whole pixel
            y, x = (y0 + y1) // 2, (x0 + x1) // 2
            assert torch.equal(prev[i], p[:, y0:y0 + side, x0:x0 + side])
            assert torch.equal(nxt[i], p[:, y1:y1 + side, x1:x1 + side])
            assert torch.equal(mid[i], p[:, y:y + side, x:x + side])


def test_consecutive_pan_frames_are_shifted_copies():
    clips = pans("test", 4, 6, 32, seed=5)
    for clip in clips:
        found = set()
        for a, b in zip(clip[:-1], clip[1:]):
            # b[y, x] = a[y + dy, x + dx] on the overlap: exactly one shift of at most 3 px does it
            fits = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4) if (dy, dx) != (0, 0)
                    and torch.equal(torch.roll(a, (-dy, -dx), dims=(1, 2))[:, max(0, -dy):32 - max(0, dy),
                                                                           max(0, -dx):32 - max(0, dx)],
                                    b[:, max(0, -dy):32 - max(0, dy), max(0, -dx):32 - max(0, dx)])]
            assert len(fits) == 1 and not torch.equal(a, b)
            found.add(fits[0])
        assert len(found) == 1  # one constant step through the pan


def test_train_and_test_pans_use_disjoint_photos():
    tr, te = load_triplets("pans", size=16), load_triplets("pans:test", size=16)
    assert tr.mid.shape == (1000 * 7, 3, 16, 16) and te.mid.shape == (100 * 7, 3, 16, 16)
    assert tr.meta() == {"name": "pans", "shape": [3, 16, 16], "count": 7000}
    assert set(tr.sources) <= set(photos.PHOTO_SPLIT["train"]) and len(tr.sources) == 11
    assert set(te.sources) <= set(photos.PHOTO_SPLIT["test"]) and len(te.sources) == 5
    assert not set(tr.sources) & set(te.sources)
    assert all(n in te.notes[0] for n in te.sources)
    with pytest.raises(GankitError, match="photo 'text' is 448x172, too small .* use a size <= 148"):
        load_triplets("pans", size=160)


# -- videos ------------------------------------------------------------------------------------

def test_a_folder_of_videos_gives_every_triplet_of_each(tmp_path):
    _video(tmp_path / "one" / "a.mp4")
    t = load_triplets(str(tmp_path / "one"))
    assert t.mid.shape == (6, 3, 32, 32) and t.sources == ["a.mp4"]
    decoded = torch.from_numpy(np.stack(list(read_frames(tmp_path / "one" / "a.mp4")))).permute(0, 3, 1, 2)
    assert torch.equal(t.prev, decoded[:6]) and torch.equal(t.mid, decoded[1:7]) and torch.equal(t.next, decoded[2:])
    _video(tmp_path / "two" / "a.mp4", seed=1)
    _video(tmp_path / "two" / "sub" / "b.mkv", seed=2)
    two = load_triplets(str(tmp_path / "two"))
    assert len(two) == 12 and two.sources == ["a.mp4", "sub/b.mkv"]
    assert not torch.equal(two.next[5], two.prev[6])  # no triplet spans the two videos


def test_one_video_holds_out_its_last_tenth_with_no_frame_in_both(tmp_path):
    path = _video(tmp_path / "a.mp4", n=23)  # 21 triplets: the last 3 (10%, rounded up) held out
    decoded = torch.from_numpy(np.stack(list(read_frames(path)))).permute(0, 3, 1, 2)
    tr, te = load_triplets(str(path)), load_triplets(str(path), "test")
    assert len(tr) == 16 and len(te) == 3  # 21 - 3 held out - 2 that share frames with them
    assert torch.equal(te.mid, decoded[19:22]) and torch.equal(tr.next[-1], decoded[17])  # frames 0-17 | 18-22
    assert "held out" in te.notes[0]
    with pytest.raises(GankitError, match="a.mp4: unknown split 'val'"):
        load_triplets(str(path), "val")
    with pytest.raises(GankitError, match="short.mp4: has 5 frames; .* at least 6 frames"):
        load_triplets(str(_video(tmp_path / "short.mp4", n=5)))


def test_a_test_subfolder_is_the_held_out_split(tmp_path):
    _video(tmp_path / "a.mp4", seed=1)
    _video(tmp_path / "test" / "b.mp4", n=5, seed=2)
    tr, te = load_triplets(str(tmp_path)), load_triplets(str(tmp_path), "test")
    assert tr.sources == ["a.mp4"] and len(tr) == 6 and te.sources == ["test/b.mp4"] and len(te) == 3
    with pytest.raises(GankitError, match="no val/ subfolder"):
        load_triplets(str(tmp_path), "val")


def test_sizes_resize_or_refuse_mismatched_videos(tmp_path):
    _video(tmp_path / "a.mp4")
    _video(tmp_path / "b.mp4", w=48, h=32)
    with pytest.raises(GankitError, match=r"b\.mp4: is 48x32 but .*a\.mp4 is 32x32 .* must share a size"):
        load_triplets(str(tmp_path))
    t = load_triplets(str(tmp_path), size=16)
    assert t.mid.shape == (12, 3, 16, 16)
    assert any("48x32" in n and "to 16x16" in n for n in t.notes)
    assert load_triplets(str(tmp_path / "a.mp4"), size=32).notes[1:] == []  # nothing to resize


def test_a_two_frame_video_is_refused_naming_it(tmp_path):
    _video(tmp_path / "a.mp4")
    short = _video(tmp_path / "short.mp4", n=2)
    with pytest.raises(GankitError, match=r"short\.mp4: has 2 frames, fewer than 3"):
        load_triplets(str(short))
    with pytest.raises(GankitError, match=r"short\.mp4: has 2 frames, fewer than 3"):
        load_triplets(str(tmp_path))  # not skipped: the file is readable, just too short


def test_an_unreadable_video_is_skipped_with_a_note_unless_strict(tmp_path):
    _video(tmp_path / "a.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all" * 10)
    t = load_triplets(str(tmp_path))
    assert len(t) == 6 and t.sources == ["a.mp4"]
    assert any(n.startswith("skipped 1 unreadable videos (bad.mp4)") for n in t.notes)
    with pytest.raises(GankitError, match=r"bad\.mp4: not a readable video"):
        load_triplets(str(tmp_path), strict=True)
    (tmp_path / "a.mp4").unlink()
    with pytest.raises(GankitError, match=r"none of its 1 videos is readable; the first: .*bad\.mp4"):
        load_triplets(str(tmp_path))
    with pytest.raises(GankitError, match=r"bad\.mp4: not a readable video"):
        load_triplets(str(tmp_path / "bad.mp4"))


def test_bad_sources_and_sizes_are_one_line_errors(tmp_path):
    with pytest.raises(GankitError, match="unknown frame-interpolation data source 'ucf101'; expected "
                                          "moving-mnist, moving-mnist:test, pans, pans:test, a video"):
        load_triplets("ucf101")
    with pytest.raises(GankitError, match="no such file or folder"):
        load_triplets(str(tmp_path / "missing.mp4"))
    with pytest.raises(GankitError, match=r"\(the folder is empty\)"):
        load_triplets(str(tmp_path))
    (tmp_path / "test").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(GankitError, match=r"no videos found outside test/, val/; looked for \.mp4"):
        load_triplets(str(tmp_path))
    with pytest.raises(GankitError, match="notes.txt: not a video"):
        load_triplets(str(tmp_path / "notes.txt"))
    with pytest.raises(GankitError, match="size 4: expected a whole number of pixels >= 8"):
        load_triplets("pans", size=4)
    with pytest.raises(GankitError, match="unknown split 'val'; expected pans or pans:test"):
        load_triplets("pans:val")
    with pytest.raises(GankitError, match="moving-mnist: unknown split 'val'"):
        load_triplets("moving-mnist", split="val")


@pytest.mark.slow
def test_default_named_sources_have_the_stated_counts():
    for source, count, shape in (("moving-mnist", 36000, [1, 64, 64]), ("moving-mnist:test", 3600, [1, 64, 64]),
                                 ("pans", 7000, [3, 64, 64]), ("pans:test", 700, [3, 64, 64])):
        assert load_triplets(source).meta() == {"name": source, "shape": shape, "count": count}
