"""Videos on the streaming path (gankit.data.frames.streamed): the same triplets as the in-memory
path for the same indices, with and without flow warps; frame stores made once and reused;
held-out triplets capped; the choice by size; bad input refused as in memory."""

import numpy as np
import pytest
import torch

from gankit.data import BatchSampler
from gankit.data.frames import load_triplets
from gankit.data.frames.store import existing_store, frame_store
from gankit.data.frames.streamed import StreamedTriplets, open_frames
from gankit.errors import GankitError
from gankit.metrics.frames import halfway_warps
from gankit.media.video import VideoWriter


def _video(path, n, seed, side=24):
    """An H.264 clip of n frames of random 8x8 blocks (lossless, so decoding is exact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    with VideoWriter(path, 25, crf=0) as vw:
        for _ in range(n):
            blocks = g.integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
            vw.write(np.ascontiguousarray(blocks.repeat(8, 0).repeat(8, 1)))
    return path


@pytest.fixture
def folder(tmp_path, tmp_cache):
    root = tmp_path / "clips"
    _video(root / "b.mp4", 7, 1)
    _video(root / "a" / "c.mp4", 9, 2)  # sorted by path: a/c.mp4 first, then b.mp4
    _video(root / "test" / "t.mp4", 6, 3)  # held out: never in the training split
    return root


def _open(source, size=16, flow=False, **kw):
    """open_frames with the interpolate task's guides when `flow` (its Farneback halfway warps)."""
    kw = {"load": "stream", "memory_budget": None, "workers": 1, "prefetch": 2, **kw}
    return open_frames(str(source), size, "cpu", kw.pop("load"), kw.pop("memory_budget"), kw.pop("workers"),
                       kw.pop("prefetch"), guides=halfway_warps if flow else None, **kw)


@pytest.mark.parametrize("flow", [False, True])
def test_streamed_triplets_equal_the_in_memory_ones(folder, tmp_cache, flow):
    """A folder of two videos: triplet i streamed == triplet i in memory (crop + resize to 16 px
    applied once, into the store), batches replayed from a position across an epoch boundary and
    a restart (a resume); with flow, the workers' warps == the ones the in-memory path caches."""
    from gankit.tasks.interpolate.guide import with_warps

    mem = load_triplets(str(folder), "train", 16)
    st, why = _open(folder, flow=flow)
    assert isinstance(st, StreamedTriplets) and not st.resident and len(st) == len(mem) == 5 + 7
    assert st.meta() == mem.meta() and why == st.notes[0]
    assert st.notes[0].startswith("streaming from clips/: 12 triplets of 3x16x16 from 2 videos (")
    assert st.notes[1].startswith(f"frames stored once in {tmp_cache / 'frames'}: 0.0 GB on disk, 2 of 2 videos "
                                  "decoded now")
    assert st.notes[2:] == mem.notes  # which videos, the resize
    if flow:
        mem = with_warps(mem)
    s = BatchSampler(len(st), 5, seed=3)
    for step in range(6):  # 30 positions over 12 triplets
        if step == 4:
            st.close()
        pos, idx = s.consumed, s.next()
        got = st.fetch(s, pos, idx, (0, 5))
        want = (mem.prev[idx], mem.mid[idx], mem.next[idx]) + ((mem.warp_prev[idx], mem.warp_next[idx]) if flow else ())
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and torch.equal(g, w), step
    st.close()
    again, _ = _open(folder, flow=flow)  # the stores are reused, not decoded again
    assert "0 of 2 videos decoded now, the rest read from earlier runs" in again.notes[1]
    t = again.take([11, 0])
    assert torch.equal(t.mid, mem.mid[[11, 0]]) and torch.equal(t.prev, mem.prev[[11, 0]])


def test_one_video_streams_its_training_split_and_grids_read_the_store(tmp_path, tmp_cache):
    """One file: the training triplets are those before the held-out tail, as in memory; once its
    store exists, the held-out triplets asked for are read from it, equal to the decoded ones."""
    src = _video(tmp_path / "v.mp4", 24, 4)
    mem, test = load_triplets(str(src), "train", None), load_triplets(str(src), "test", None)
    st, _ = _open(src, size=None, workers=0)
    assert len(st) == len(mem) == 22 - 3 - 2 and st.notes[2:] == mem.notes
    s = BatchSampler(len(st), 4, seed=0)
    for _ in range(5):
        pos, idx = s.consumed, s.next()
        assert torch.equal(torch.stack(st.fetch(s, pos, idx, (0, 4))), torch.stack([mem.prev[idx], mem.mid[idx],
                                                                                      mem.next[idx]]))
    capped = load_triplets(str(src), "test", None, limit=2)
    assert "read from the frame store" in capped.notes[-1] and len(capped) == 2
    assert torch.equal(capped.mid, test.mid[:2]) and torch.equal(capped.next, test.next[:2])


def test_a_held_out_folder_decodes_only_the_frames_asked_for(folder, monkeypatch):
    from gankit.data.frames import videos

    seen = []
    real = videos.read_frames
    monkeypatch.setattr(videos, "read_frames", lambda p: (seen.append(p) or x for x in real(p)))
    whole = load_triplets(str(folder), "train", 16)
    n = len(seen)
    first = load_triplets(str(folder), "train", 16, limit=2)
    assert torch.equal(first.mid, whole.mid[:2]) and len(seen) - n == 4  # frames 0-3 of a/c.mp4 only
    assert first.notes[0] == "2 triplets from 4 frames of 1 videos (a/c.mp4): the first 2 of the split asked for, " \
                             "later frames not read"


def test_the_choice_follows_the_budget_and_names_named_sources(folder):
    """auto: 12 triplets x 3 x 768 bytes = 27,648 (x 7/3 with the flow warps) against the budget."""
    st, why = _open(folder, load="auto", memory_budget=1e-5)  # 10 kB
    assert st is not None and "(0.0 GB decoded > budget 0.0 GB, data.memory_budget)" in why
    mem, why = _open(folder, load="auto", memory_budget=3e-5)  # 30 kB: fits without flow
    assert mem is None and why.startswith("in memory: 12 triplets of 3x16x16 from 2 videos (0.0 GB decoded <=")
    assert _open(folder, load="auto", memory_budget=3e-5, flow=True)[0] is not None  # 64.5 kB with warps
    assert _open(folder, load="memory")[0] is None
    assert _open("pans", load="auto") == (None, None)
    with pytest.raises(GankitError, match=r"data.load=stream: 'moving-mnist' cannot stream; streaming reads a video"):
        _open("moving-mnist")


def test_bad_input_is_refused_as_in_memory(tmp_path, tmp_cache):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.txt").write_text("no")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.mp4").write_bytes(b"not a video")
    short = _video(tmp_path / "short.mp4", 5, 5)
    for source in (tmp_path / "nope.mp4", tmp_path / "x.txt", tmp_path / "empty", tmp_path / "junk", short):
        with pytest.raises(GankitError) as mem:
            load_triplets(str(source), "train", 16)
        with pytest.raises(GankitError) as st:
            _open(source)
        assert str(st.value) == str(mem.value) and "\n" not in str(st.value)
    with pytest.raises(GankitError, match="size 4: expected a whole number of pixels >= 8"):
        _open(short, size=4)
    assert not list((tmp_cache / "frames").glob(".*partial*"))


def test_a_video_damaged_part_way_is_skipped_and_leaves_no_store(folder, tmp_cache):
    bad = folder / "b.mp4"
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) * 2 // 3])  # cut: the first frame still decodes
    mem = load_triplets(str(folder), "train", 16)
    st, _ = _open(folder)
    assert len(st) == len(mem) == 7 and st.notes[2:] == mem.notes  # only a/c.mp4's triplets
    assert "skipped 1 unreadable videos (b.mp4); the first: " in st.notes[3]
    assert [p.name[:2] for p in (tmp_cache / "frames").iterdir()] == ["c-"]  # b.mp4 left no partial store


def test_a_store_is_keyed_by_the_video_and_size(tmp_path, tmp_cache):
    src = _video(tmp_path / "v.mp4", 6, 6)
    a, made = frame_store(src, 16, (24, 24))
    assert made and a.frames == 6 and a.shape == (3, 16, 16)
    assert np.load(a.path).shape == (6, 3, 16, 16)  # a plain .npy
    assert not frame_store(src, 16, (24, 24))[1] and frame_store(src, 8, (24, 24))[1]
    assert existing_store(src, 16).path == a.path and existing_store(src, 12) is None
    _video(src, 7, 7)  # rewritten in place: a new store
    assert existing_store(src, 16) is None


def test_frame_counts_come_without_decoding_even_where_the_container_has_none(tmp_path):
    """The choice counts frames before any decode: an .mkv has no count in its header, so its
    packets are counted."""
    from gankit.media.video import count_frames, probe_video

    mkv = tmp_path / "a.mkv"
    with VideoWriter(mkv, 25) as vw:
        for i in range(11):
            vw.write(np.full((16, 16, 3), 20 * i, np.uint8))
    assert probe_video(mkv).n_frames is None and count_frames(mkv) == 11
