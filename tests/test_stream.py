"""The streaming data path (gankit.data.stream): the same images as the resident path for the same
indices, the automatic choice, exact resume after SIGKILL, data-parallel shards."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gankit.data import BatchSampler, Dataset, load_data
from gankit.data.stream import StreamData, _Replay
from gankit.errors import GankitError
from gankit.training.checkpoint import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))  # the zip maker beside it
from test_archive import make_zip  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def zip300(tmp_path_factory):
    path = tmp_path_factory.mktemp("z") / "d.zip"
    make_zip(path, n=300, size=16, classes=3, shuffle=False)
    return path


@pytest.mark.parametrize("mirror", [False, True])
def test_streamed_batches_equal_the_resident_ones(zip300, mirror):
    """Same seed, same indices, same images: the workers' conformed (grey, 8 px) batches equal the
    resident set's, mirrored indices flipped on both, across an epoch boundary and a restart at
    a position (what a resume does)."""
    kw = dict(resolution=8, channels=1, mirror=mirror)
    mem = load_data(str(zip300), load="memory", **kw)
    st = load_data(str(zip300), load="stream", workers=2, prefetch=2, **kw)
    assert isinstance(mem, Dataset) and isinstance(st, StreamData) and not st.resident
    assert st.shape == mem.shape == (1, 8, 8) and st.indices == mem.indices == 300 * (1 + mirror)
    sampler = BatchSampler(st.indices, 64, seed=5)
    flipped = 0
    for step in range(12):
        if step == 7:  # a resume: a fresh loader from the sampler's checkpointed position
            st.close()
        pos, idx = sampler.consumed, sampler.next()
        x = st.fetch(sampler, pos, idx, (0, len(idx)))
        assert torch.equal(x, mem.take(idx)), step
        assert torch.equal(st.labels(idx), mem.labels(idx))
        flipped += int((idx >= 300).sum())
    assert (flipped > 0) == mirror
    idx = torch.tensor([3, 299] + ([300, 599] if mirror else []))
    assert torch.equal(st.read(idx), mem.read(idx))
    if mirror:
        assert torch.equal(mem.read(torch.tensor([303]))[0], mem.read(torch.tensor([3]))[0].flip(-1))
    st.close()


def test_the_loader_alone_iterates_the_runs_order(zip300):
    st = load_data(str(zip300), load="stream", workers=1)
    it = st.batches(32, seed=2)
    s = BatchSampler(300, 32, 2)
    for _ in range(3):
        assert torch.equal(next(it), st.read(s.next()))


def test_ranks_decode_disjoint_slices_of_the_global_batch():
    s = BatchSampler(100, 8, seed=1)
    a = iter(_Replay(s, 16, (0, 4)))
    b = iter(_Replay(s, 16, (4, 4)))
    s.consumed = 16
    for _ in range(20):
        mine, theirs, whole = next(a), next(b), s.next().tolist()
        assert not set(mine) & set(theirs) and mine + theirs == whole


def test_auto_streams_when_the_decoded_set_passes_the_budget(zip300):
    small = load_data(str(zip300), load="auto", memory_budget=1e-4, workers=0)  # 100 kB < 230 kB decoded
    assert isinstance(small, StreamData)
    assert small.notes[0] == "streaming from d.zip: 300 images of 3x16x16 (0.0 GB decoded > budget 0.0 GB, " \
                             "data.memory_budget), no workers"
    big = load_data(str(zip300), load="auto", memory_budget=1.0)
    assert isinstance(big, Dataset) and big.notes[0].startswith("in memory: 300 images of 3x16x16 (0.0 GB decoded <= budget 1.0 GB")
    with pytest.raises(GankitError, match=r"data.load=stream: 'fake:1x8x8:64' cannot stream; streaming reads a .zip"):
        load_data("fake:1x8x8:64", load="stream")


# -- training -------------------------------------------------------------------------------------

# seed-mlp keeps D's dropout: its masks come from torch's global generator, which a loader's
# (re)start must not move (tested by the exact resumes below)
TINY = ["--set", "model.g_hidden=[16]", "--set", "model.d_hidden=[16]", "--set", "model.z_dim=4",
        "--set", "train.batch=8", "--set", "log.every=1", "--set", "log.progress=false",
        "--device", "cpu", "--set", "train.precision=fp32", "--set", "data.resolution=8", "--set", "data.load=stream",
        "--set", "data.workers=1", "--set", "data.mirror=true", "--set", "log.grid_every=1000"]

def _train(*args):
    p = subprocess.run([sys.executable, "-m", "gankit", "train", *args], env=ENV, capture_output=True,
                       text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def _nets(run):
    return load_checkpoint(run / "checkpoints" / "last.pt")["nets"]


def test_sigkill_mid_epoch_then_resume_equals_the_run_left_alone(zip300, tmp_path, sigkill_mid_run):
    """300 images mirrored (600 indices) in batches of 8: the kill lands mid-epoch; the resumed
    run's loader restarts at the checkpoint's position and the end is bitwise the uninterrupted one."""
    common = ["--data", str(zip300), *TINY, "--set", "log.ckpt_every=4"]
    p = _train("--out", str(tmp_path / "whole"), "--steps", "14", *common)
    assert "gankit: data: streaming from d.zip: 300 images of 3x8x8 (0.0 GB decoded; data.load=stream), 1 worker, " \
        "mirrored" in p.stderr  # said on the terminal too
    out = tmp_path / "part"
    sigkill_mid_run("gankit.tasks.generate.task:g_phase", 0.15, ["train", "--out", str(out), "--steps", "14", *common],
                    out, ENV)
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4
    _train("--resume", str(out), "--steps", "14")
    a, b = _nets(tmp_path / "whole"), _nets(out)
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    assert "streaming from d.zip" in (tmp_path / "whole" / "train.log").read_text()


@pytest.mark.slow  # four processes on two cores: ~30 s
def test_two_processes_stream_the_one_process_batches(zip300, tmp_path):
    """Data-parallel over gloo on the streaming path: each rank decodes its half of every global
    batch, and the run follows the one-process run (as tests/training/test_distributed.py's)."""
    common = ["--data", str(zip300), *TINY, "--steps", "6", "--set", "model.d_dropout=0"]  # masks differ by world size
    _train("--out", str(tmp_path / "one"), *common)
    _train("--nproc", "2", "--out", str(tmp_path / "two"), *common)
    assert "global batch 8 = 4 per process x 2" in (tmp_path / "two" / "train.log").read_text()

    def losses(run):
        rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
        return torch.tensor([[r["loss_d"], r["loss_g"]] for r in rows if "loss_d" in r])

    torch.testing.assert_close(losses(tmp_path / "two"), losses(tmp_path / "one"), atol=1e-5, rtol=1e-5)


def test_fid_reference_from_a_zip_is_read_in_place_and_bounded(zip300, tmp_path, monkeypatch):
    """eval.ref naming a zip: its features come from at most REF_MAX images decoded a chunk at a
    time (a fixed subset), equal to those of the same images decoded whole."""
    from gankit.metrics import evaluate as ev

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(ev, "REF_MAX", 100)
    monkeypatch.setattr(ev, "REF_CHUNK_BYTES", 16 * 16 * 3 * 30)  # chunks of 30
    e = ev.Evaluator()
    fs = e.reference(str(zip300))
    assert len(fs) == 100
    keep = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:100].sort().values
    whole = e.features(load_data(str(zip300)).x[keep])
    torch.testing.assert_close(fs.feats, whole.feats)
    assert len(list((tmp_path / "refs").glob("*.npz"))) == 1  # cached


# -- WebDataset shards ----------------------------------------------------------------------------

def make_shards(folder, counts=(7, 5, 9, 6), size=8, classes=3):
    """Shards of PNG + .cls samples (sample ids in shard order); returns the images by id."""
    import webdataset as wds
    from test_archive import images, png

    arrays = images(sum(counts), size, seed=4)
    k = 0
    for s, c in enumerate(counts):
        with wds.TarWriter(str(folder / f"part-{s:06d}.tar")) as w:
            for _ in range(c):
                w.write({"__key__": f"s{k:05d}", "png": png(arrays[k]), "cls": str(k % classes).encode()})
                k += 1
    return f"{folder}/part-{{000000..{len(counts) - 1:06d}}}.tar", arrays


@pytest.mark.parametrize("mirror", [False, True])
def test_shards_stream_in_shard_order_and_restart_at_a_position(tmp_path, mirror):
    from gankit.data.shards import ShardData, ShardSampler

    source, arrays = make_shards(tmp_path)
    data = load_data(source, load="auto", workers=2, mirror=mirror)
    assert isinstance(data, ShardData) and len(data) == 27 and data.shape == (3, 8, 8)
    assert data.notes[0].startswith("streaming from 4 WebDataset shards: 27 images of 3x8x8")
    assert data.y.tolist() == [k % 3 for k in range(27)]
    sampler = data.sampler(6, seed=3, device="cpu")
    assert isinstance(sampler, ShardSampler)
    seen = []
    for step in range(12):  # 72 positions: past two epochs of 27
        if step == 5:
            data.close()  # a resume: the shard reopened and skipped into
        pos, idx = sampler.consumed, sampler.next()
        x = data.fetch(sampler, pos, idx, (0, 6))
        ref = torch.stack([torch.from_numpy(arrays[i % 27]).permute(2, 0, 1) for i in idx.tolist()])
        ref = torch.where((idx >= 27).view(-1, 1, 1, 1), ref.flip(-1), ref)
        assert torch.equal(x, ref), step
        seen += idx.tolist()
    first = [i % 27 for i in seen[:27]]
    assert sorted(first) == list(range(27))  # an epoch visits every sample once
    runs = [first[i + 1] - first[i] for i in range(26)]
    assert runs.count(1) >= 27 - 4  # sequential within each of the 4 shards
    assert any(i >= 27 for i in seen) == mirror
    s2 = data.sampler(6, seed=3, device="cpu")
    s2.load_state_dict(sampler.state_dict())
    assert s2.consumed == 72 and torch.equal(s2.next(), sampler.next())
    assert torch.equal(data.read(torch.tensor([0, 26, 13])), torch.stack(
        [torch.from_numpy(arrays[i]).permute(2, 0, 1) for i in (0, 26, 13)]))
    data.close()


def test_shards_refuse_memory_and_bad_labels(tmp_path):
    source, _ = make_shards(tmp_path, counts=(3,))
    with pytest.raises(GankitError, match="WebDataset shards, which stream only"):
        load_data(source, load="memory")
    import webdataset as wds
    from test_archive import images, png
    with wds.TarWriter(str(tmp_path / "bad.tar")) as w:
        w.write({"__key__": "a", "png": png(images(1)[0]), "cls": b"cat"})
    with pytest.raises(GankitError, match=r"bad.tar:a.cls: b'cat' is not an integer class"):
        load_data(str(tmp_path / "bad.tar"), load="stream")


@pytest.mark.slow  # three runs: ~40 s on two busy cores
def test_training_on_shards_resumes_exactly(tmp_path):
    """Stopped at step 5 (mid-epoch, mid-shard) and resumed, a run on shards ends bitwise equal
    to the one left alone: the position is the sampler's, in the checkpoint."""
    source, _ = make_shards(tmp_path, counts=(11, 9, 13))
    common = ["--data", source, *TINY]
    _train("--out", str(tmp_path / "whole"), "--steps", "10", *common)
    _train("--out", str(tmp_path / "part"), "--steps", "5", *common)
    _train("--resume", str(tmp_path / "part"), "--steps", "10")
    a, b = _nets(tmp_path / "whole"), _nets(tmp_path / "part")
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    assert "streaming from 3 WebDataset shards: 33 images" in (tmp_path / "whole" / "train.log").read_text()


def test_graph_shaped_step_on_streamed_batches_equals_eager(zip300):
    """CUDA-graph mode copies draw's outputs into static buffers; the streamed images are among
    them: uncaptured on CPU, the static step follows the eager one bitwise, and both follow the
    in-memory set's run."""
    from gankit.config import load_config
    from gankit.training.engine import Engine

    def run(mode, load):
        cfg = load_config("dcgan", overrides=[f"data.source={zip300}", "data.resolution=28", "model.g_width=8",
                                               "model.d_width=8", "model.z_dim=4", "train.batch=8", "device=cpu",
                                               "train.precision=fp32", f"data.load={load}", "data.workers=1",
                                               "model.conditional=true"])
        from gankit.tasks import get_task
        data = get_task("generate").load_data(cfg, torch.device("cpu"))
        e = Engine.build(cfg, data, torch.device("cpu"), mode=mode)
        for t in range(4):
            e.step(t)
        return torch.cat([p.detach().flatten() for p in e.st.nets["D"].parameters()])

    eager = run("eager", "stream")
    assert torch.equal(run("static", "stream"), eager)
    assert torch.equal(run("eager", "memory"), eager)


def test_a_streamed_folder_reads_as_the_folder_loader_and_names_a_damaged_file(tmp_path):
    from PIL import Image
    from test_archive import images

    for i, a in enumerate(images(12, seed=5)):
        d = tmp_path / "f" / ("b" if i % 3 else "a")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(d / f"{i:02d}.png")
    mem = load_data(str(tmp_path / "f"), load="memory")
    st = load_data(str(tmp_path / "f"), load="stream", workers=1)
    assert st.classes == mem.classes == ["a", "b"] and torch.equal(st.y, mem.y)
    s = BatchSampler(12, 4, seed=0)
    pos, idx = s.consumed, s.next()
    assert torch.equal(st.fetch(s, pos, idx, (0, 4)), mem.take(idx))
    (tmp_path / "f" / "b" / "04.png").write_bytes(b"not a png")  # damaged after the start
    st.close()
    with pytest.raises(GankitError) as e:
        for _ in range(6):  # through the next epoch: every image read
            pos, idx = s.consumed, s.next()
            st.fetch(s, pos, idx, (0, 4))
    assert str(e.value).startswith(f"{tmp_path / 'f' / 'b' / '04.png'}: corrupt or truncated image") and "\n" not in str(e.value)


# -- two-domain folders (translate) ---------------------------------------------------------------

def _domains(root, paired: bool, n=10):
    from PIL import Image
    from test_archive import images

    a, b = images(n, 12, seed=6), images(n + (0 if paired else 3), 12, channels=1, seed=7)
    for side, arrays in (("A", a), ("B", b)):
        d = root / (side if paired else f"train{side}")
        d.mkdir(parents=True)
        for i, x in enumerate(arrays):
            Image.fromarray(x if x.shape[2] == 3 else x[:, :, 0]).save(d / f"{i:03d}.png")


@pytest.mark.parametrize("paired", [True, False])
def test_streamed_domains_equal_the_resident_ones(tmp_path, paired):
    from gankit.data.pairs import load_pairs
    from gankit.data.stream_pairs import open_pairs

    _domains(tmp_path / "d", paired)
    mem = load_pairs(str(tmp_path / "d"), "train", 8)
    st = open_pairs(str(tmp_path / "d"), 8, "cpu", "stream", None, 1, 2)
    assert st.meta() == mem.meta() and st.paired == paired
    assert st.notes[0].startswith(f"streaming from d/: {'paired' if paired else 'unpaired'}, A 10 of 3x8x8")
    for side, n in (("a", 10), ("b", 10 if paired else 13)):
        s = BatchSampler(n, 4, seed=1)
        for _ in range(5):
            pos, idx = s.consumed, s.next()
            assert torch.equal(getattr(st, side).fetch(s, pos, idx, (0, 4)), getattr(mem, side)[idx])
    st.close()
    assert open_pairs(str(tmp_path / "d"), 8, "cpu", "auto", 1.0, 1, 2) is None  # fits: in memory


def test_pix2pix_streams_a_paired_folder_as_it_trains_in_memory(tmp_path):
    _domains(tmp_path / "d", True)
    args = ["--preset", "pix2pix", "--data", str(tmp_path / "d"), "--steps", "3", "--device", "cpu",
            "--set", "data.resolution=16", "--set", "train.batch=4", "--set", "model.g_width=4", "--set", "model.d_width=4",
            "--set", "log.every=1", "--set", "log.progress=false", "--set", "train.precision=fp32",
            "--set", "data.workers=1", "--set", "eval.every=0"]
    _train("--out", str(tmp_path / "mem"), *args, "--set", "data.load=memory")
    _train("--out", str(tmp_path / "st"), *args, "--set", "data.load=stream")
    assert "streaming from d/: paired" in (tmp_path / "st" / "train.log").read_text()
    a, b = _nets(tmp_path / "mem"), _nets(tmp_path / "st")
    for k in a["G"]:
        assert torch.equal(a["G"][k], b["G"][k]), k


# -- crop pools from large folders (superres, inpaint, denoise) -----------------------------------

def test_a_large_folders_crop_pool_decodes_only_the_images_it_draws_from(tmp_path, monkeypatch):
    """Past LAZY_FROM images a training folder is read from headers and a pool decodes only the
    images it crops: the pool is bit for bit the one the whole folder decoded gives."""
    from PIL import Image
    from test_archive import images

    from gankit.data import files, superres
    from gankit.data.inpaint import load_inpaint

    for i, a in enumerate(images(40, 20, seed=8)):
        Image.fromarray(a if i % 5 else a[:, :, 0]).save(tmp_path / f"{i:02d}.png")  # grey ones widened to RGB
    eager = superres.load_sr(str(tmp_path), 2, 8, pool=6)
    inp_eager = load_inpaint(str(tmp_path), "train", 16)
    monkeypatch.setattr(superres, "LAZY_FROM", 10)
    decoded = []
    real = files.read_image
    monkeypatch.setattr(files, "read_image", lambda p, *a: decoded.append(p) or real(p, *a))
    lazy = superres.load_sr(str(tmp_path), 2, 8, pool=6)
    assert torch.equal(lazy.hr, eager.hr) and lazy.images == eager.images
    assert 0 < len(set(decoded)) <= 6  # not the 40
    assert "each decoded only if a crop is drawn from it" in " ".join(lazy.notes)
    assert torch.equal(load_inpaint(str(tmp_path), "train", 16).x, inp_eager.x)
