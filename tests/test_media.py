from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from gankit.errors import GankitError
from gankit.media.apply import AtomicDir, input_kind
from gankit.media.images import conform, list_images, read_image, write_image
from gankit.media.video import VideoWriter, probe_video, read_frames


def rgb_image(h=24, w=32, seed=0):
    """Smooth colour gradients plus a little noise: JPEG-friendly but not trivially flat."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
    a += np.random.default_rng(seed).normal(0, 4, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def moving_square(n=12, w=32, h=24):
    """(n, H, W, 3): an orange 8x8 square moving right one pixel a frame on grey."""
    frames = np.full((n, h, w, 3), 60, np.uint8)
    for i in range(n):
        frames[i, 4:12, 2 + i:10 + i] = (255, 128, 0)
    return frames


def assert_same_clip(back, frames):
    """Lossy H.264 at these tiny sizes smears colour edges (chroma is stored at half resolution),
    so pixels are compared on average, and the square is tracked: it must be where it was."""
    back = back.astype(int)
    assert back.shape == frames.shape and np.abs(back - frames).mean() < 5
    orange = (back[..., 0] > 160) & (back[..., 2] < 100)  # (n, H, W)
    x_centre = [np.nonzero(m)[1].mean() for m in orange]
    np.testing.assert_allclose(x_centre, 2 + np.arange(len(frames)) + 3.5, atol=0.5)


def write_clip(path, frames, fps):
    with VideoWriter(path, fps) as vw:
        for f in frames:
            vw.write(f)
    return vw


# --- images -----------------------------------------------------------------------------------


def test_png_round_trip_is_exact_and_jpg_is_close(tmp_path):
    a = rgb_image()
    assert write_image(a, tmp_path / "a.png") == tmp_path / "a.png"
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), a)
    write_image(a, tmp_path / "a.jpg")
    b = read_image(tmp_path / "a.jpg")
    assert b.shape == a.shape and np.abs(b.astype(int) - a).mean() < 4
    grey = a[:, :, :1]
    write_image(grey, tmp_path / "g.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "g.bmp"), grey)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png", "g.bmp"]  # no temp files


def test_write_image_refuses_an_unknown_suffix(tmp_path):
    with pytest.raises(GankitError, match=r"out\.gif.*\.png, \.jpg, \.jpeg, \.bmp"):
        write_image(rgb_image(), tmp_path / "out.gif")
    assert list(tmp_path.iterdir()) == []


def test_read_image_modes(tmp_path):
    a = rgb_image()
    Image.fromarray(a[:, :, 0]).save(tmp_path / "grey.png")
    assert read_image(tmp_path / "grey.png").shape == (24, 32, 1)
    rgba = np.dstack([a, np.full(a.shape[:2], 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), a)  # alpha dropped
    pal = Image.fromarray(a).quantize(8)
    pal.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(read_image(tmp_path / "pal.png"), np.asarray(pal.convert("RGB")))
    # 16-bit grey: scaled down, not clipped at 255
    Image.fromarray(np.full((4, 4), 65535 // 2, np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png")[0, 0, 0] == 127


def test_read_image_applies_exif_orientation(tmp_path):
    a = np.zeros((4, 6, 3), np.uint8)
    a[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; show rotated 90 degrees clockwise
    Image.fromarray(a).save(tmp_path / "phone.png", exif=exif)
    b = read_image(tmp_path / "phone.png")
    assert b.shape == (6, 4, 3) and b[0, -1, 0] == 255


def test_a_corrupt_image_names_the_file(tmp_path):
    write_image(rgb_image(), tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    for name in ("cut.png", "junk.jpg"):
        with pytest.raises(GankitError, match=rf"{name}: corrupt, truncated or unsupported image"):
            read_image(tmp_path / name)


def test_input_kind_and_list_images(tmp_path):
    (tmp_path / "pics" / "sub").mkdir(parents=True)
    (tmp_path / "pics" / ".hidden").mkdir()
    for p in ("pics/b.png", "pics/sub/a.JPG", "pics/.hidden/c.png", "pics/notes.txt", "x.bmp", "clip.MP4"):
        (tmp_path / p).write_bytes(b"")
    assert input_kind(tmp_path / "x.bmp") == "image"
    assert input_kind(tmp_path / "clip.MP4") == "video"
    assert input_kind(tmp_path / "pics") == "folder"
    with pytest.raises(GankitError, match=r"notes\.txt: unknown suffix '\.txt'; expected an image \(\.png.*"
                                          r"a video \(\.mp4.*or a scan"):
        input_kind(tmp_path / "pics" / "notes.txt")
    with pytest.raises(GankitError, match=r"nope\.png: no such file or folder"):
        input_kind(tmp_path / "nope.png")
    assert list_images(tmp_path / "pics") == [tmp_path / "pics/b.png", tmp_path / "pics/sub/a.JPG"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match=r"empty: no images found \(looked for \.png"):
        list_images(tmp_path / "empty")


# --- video ------------------------------------------------------------------------------------


def test_video_round_trip_keeps_count_size_rate_and_pixels(tmp_path):
    frames = moving_square()
    vw = write_clip(tmp_path / "clip.mp4", frames, fps=25)
    assert vw.note is None and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    info = probe_video(tmp_path / "clip.mp4")
    assert (info.fps, info.n_frames, info.size, info.has_audio) == (Fraction(25), 12, (32, 24), False)
    assert_same_clip(np.stack(list(read_frames(tmp_path / "clip.mp4"))), frames)


@pytest.mark.parametrize("fps, exact", [(Fraction(30000, 1001), Fraction(30000, 1001)),
                                        (29.97, Fraction(30000, 1001)), (12.5, Fraction(25, 2))])
def test_ntsc_and_fractional_rates_are_kept_exactly(tmp_path, fps, exact):
    write_clip(tmp_path / "clip.mkv", moving_square(4), fps)
    info = probe_video(tmp_path / "clip.mkv")
    assert info.fps == exact and info.n_frames in (None, 4)


def test_a_variable_rate_video_reports_its_average_rate(tmp_path):
    """Written back at a constant rate, the average keeps the duration; the nominal 30 would not."""
    with av.open(str(tmp_path / "vfr.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        for pts in [0, 1, 2, 3, 4, 5, 8, 11, 14, 17, 20, 23]:  # 6 frames at 30 fps, then 6 at 10 fps
            f = av.VideoFrame.from_ndarray(moving_square(1)[0], format="rgb24")
            f.pts, f.time_base = pts, Fraction(1, 30)
            c.mux(s.encode(f))
        c.mux(s.encode())
    info = probe_video(tmp_path / "vfr.mp4")
    assert info.n_frames == 12 and 10 < info.fps < 30


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = moving_square(w=29, h=21)
    vw = write_clip(tmp_path / "odd.mp4", frames, fps=25)
    assert "padded from 29x21 to 30x22" in vw.note
    assert probe_video(tmp_path / "odd.mp4").size == (30, 22)
    back = np.stack(list(read_frames(tmp_path / "odd.mp4")))
    assert_same_clip(back[:, :21, :29], frames)
    edge = back[:, :, 29].astype(int) - back[:, :, 28]  # the new column repeats the last one
    assert np.abs(edge).mean() < 3 and np.abs(back[:, 21].astype(int) - back[:, 20]).mean() < 3


def test_grey_frames_are_written_as_grey_video(tmp_path):
    frames = moving_square(4)[..., :1]  # (n, H, W, 1)
    write_clip(tmp_path / "grey.mp4", frames, 25)
    back = np.stack(list(read_frames(tmp_path / "grey.mp4"))).astype(int)  # (n, H, W, 3)
    assert np.abs(back - frames).mean() < 3 and np.abs(back[..., 0] - back[..., 2]).max() <= 2


def test_rotated_video_is_read_upright(tmp_path):
    frames = moving_square(3)
    with av.open(str(tmp_path / "rot.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        if not hasattr(s, "set_display_rotation"):
            pytest.skip("this PyAV cannot write rotation metadata")
        s.set_display_rotation(90)  # counter-clockwise, as a phone held upright records
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    assert probe_video(tmp_path / "rot.mp4").size == (24, 32)
    back = next(read_frames(tmp_path / "rot.mp4")).astype(int)
    assert np.abs(back - np.rot90(frames[0])).mean() < 5


def make_clip_with_audio(path):
    """A 12-frame clip with a 440 Hz AAC track, written with PyAV's bundled FFmpeg."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 32, 24, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        for f in moving_square():
            c.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        t = np.arange(48000 // 2) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]  # (1 channel, samples)
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate = 48000
        c.mux(a.encode(frame))
        c.mux(v.encode())
        c.mux(a.encode())


def test_audio_is_detected(tmp_path):
    make_clip_with_audio(tmp_path / "talk.mp4")
    info = probe_video(tmp_path / "talk.mp4")
    assert info.has_audio and info.n_frames == 12
    write_clip(tmp_path / "mute.mp4", moving_square(), 25)
    assert not probe_video(tmp_path / "mute.mp4").has_audio


def test_damaged_videos_name_the_file(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(GankitError, match=r"junk\.mp4: not a readable video"):
        probe_video(tmp_path / "junk.mp4")
    rng = np.random.default_rng(0)
    write_clip(tmp_path / "noise.mp4", rng.integers(0, 256, (30, 48, 64, 3), dtype=np.uint8), 25)
    data = (tmp_path / "noise.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    assert probe_video(tmp_path / "cut.mp4").n_frames == 30  # the index survives (moov is first)...
    with pytest.raises(GankitError, match=r"cut\.mp4: corrupt or truncated video data after frame \d+"):
        for _ in read_frames(tmp_path / "cut.mp4"):  # ...but the frames stop halfway
            pass


def test_a_failed_write_leaves_nothing_at_the_target(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="model blew up"):
        with VideoWriter(target, 25) as vw:
            vw.write(moving_square(1)[0])
            raise RuntimeError("model blew up")
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"the user's old file")
    with pytest.raises(RuntimeError):
        with VideoWriter(target, 25):
            raise RuntimeError
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"the user's old file"


def test_a_full_disk_names_the_output_and_leaves_nothing(tmp_path, monkeypatch):
    """What translate, superres, repair and interpolate write (an image, a folder, a video) on a
    disk that fills up mid-write: one line naming the user's path; no partial file or folder."""
    import errno
    import re

    from gankit.media import apply, video
    from gankit.errors import DiskError

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        write_image(rgb_image(), src / name)
    real_save, real_open = Image.Image.save, av.open

    def full(self, fp, *a, **k):
        real_save(self, fp, *a, **k)  # the bytes land, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    class FullMuxer:  # a container whose writes find the disk full
        def __init__(self, c):
            self.c = c

        def __getattr__(self, name):
            return getattr(self.c, name)

        def mux(self, packet):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    monkeypatch.setattr(video.av, "open", lambda *a, **k: FullMuxer(real_open(*a, **k)))

    def same(img, where):
        return img

    for source, out, named in [(src / "a.png", tmp_path / "x.png", tmp_path / "x.png"),
                               (src, tmp_path / "folder", tmp_path / "folder" / "a.png")]:
        with pytest.raises(DiskError, match="^" + re.escape(f"cannot write {named}: no space left on device (")):
            apply.apply_to_media(same, source, out)
    with pytest.raises(DiskError, match="^" + re.escape(f"cannot write {tmp_path / 'v.mp4'}: no space left on device (")):
        write_clip(tmp_path / "v.mp4", moving_square(3), 25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_video_writer_refuses_bad_suffix_and_rate(tmp_path):
    with pytest.raises(GankitError, match=r"out\.webm: cannot write video as '\.webm'; use one of \.mp4"):
        VideoWriter(tmp_path / "out.webm", 25)
    with pytest.raises(GankitError, match="fps 0: not a usable frame rate"):
        VideoWriter(tmp_path / "out.mp4", 0)


# --- conform and folders ------------------------------------------------------------------------


def test_conform_converts_channels_with_601_luma():
    px = np.array([[[200, 100, 50]]], np.uint8)  # (1, 1, 3)
    grey, note = conform(px, (1, 1, 1), strict=False, where="a.png")
    assert grey.shape == (1, 1, 1) and grey[0, 0, 0] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert note == "a.png: converted RGB to grey (the run expects grey)"  # the size was kept: not named
    rgb, note = conform(np.full((2, 2, 1), 9, np.uint8), (3, 2, 2), strict=False, where="g.png")
    assert rgb.shape == (3, 2, 2) and (rgb == 9).all() and "converted grey to RGB" in note


def test_conform_resizes_and_says_so():
    a = rgb_image(24, 32)
    out, note = conform(a, (3, 12, 16), strict=False, where="a.png")
    assert out.shape == (3, 12, 16) and out.dtype == np.uint8
    assert note == "a.png: resized 32x24 to 16x12 (the run expects 16x12 RGB)"
    np.testing.assert_allclose(out.mean(axis=(1, 2)), a.mean(axis=(0, 1)), atol=2)  # antialiased
    _, note = conform(a, (1, 16, 16), strict=False, where="a.png")
    assert note == "a.png: converted RGB to grey, resized 32x24 to 16x16 (aspect ratio not kept) " \
                   "(the run expects 16x16 grey)"
    same, note = conform(a, (3, 24, 32), strict=False, where="a.png")
    assert note is None and np.array_equal(same, a.transpose(2, 0, 1))


def test_conform_strict_refuses_a_mismatch():
    with pytest.raises(GankitError, match=r"clip\.mp4 frame 3: is 32x24 RGB but the run expects 64x64 grey "
                                          r"images; --strict refuses"):
        conform(rgb_image(), (1, 64, 64), strict=True, where="clip.mp4 frame 3")
    out, note = conform(rgb_image(), (3, 24, 32), strict=True, where="a.png")
    assert note is None


def test_atomic_dir(tmp_path):
    out = tmp_path / "out"
    with AtomicDir(out) as d:
        assert d == tmp_path / "out.partial"
        write_image(rgb_image(), d / "sub" / "a.png")
    assert [p.relative_to(out).as_posix() for p in sorted(out.rglob("*"))] == ["sub", "sub/a.png"]
    with pytest.raises(GankitError, match=r"out: already exists"):
        with AtomicDir(out):
            pass
    with pytest.raises(RuntimeError):
        with AtomicDir(out, overwrite=True) as d:
            write_image(rgb_image(), d / "b.png")
            raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (out / "sub" / "a.png").exists()
    with AtomicDir(out, overwrite=True) as d:
        write_image(rgb_image(), d / "b.png")
    assert [p.name for p in out.iterdir()] == ["b.png"] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- audio carried into outputs -----------------------------------------------------------------


def make_clip_with_pcm(path, codec="pcm_mulaw", rate=8000):
    """12 frames at 25 fps with 0.48 s of a 440 Hz tone in `codec` (telephone audio: .mov takes it,
    .mp4 and .mkv do not)."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 32, 24, "yuv420p"
        a = c.add_stream(codec, rate=rate, layout="mono")
        t = np.arange(rate * 12 // 25) / rate
        tone = av.AudioFrame.from_ndarray((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)[None],
                                          format="s16", layout="mono")
        tone.sample_rate, tone.pts = rate, 0
        for f in moving_square():
            c.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(a.encode(tone))
        c.mux(v.encode())
        c.mux(a.encode())
    return path


def audio_of(path):
    """(codec, sample rate, channels, duration in s, samples (channels, n) as float in [-1, 1])."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        x = np.concatenate([f.to_ndarray() for f in c.decode(s)], axis=1)
        x = x / 32768 if x.dtype == np.int16 else x.astype(np.float64)  # pcm decodes to s16, AAC to float
        return s.codec_context.name, s.sample_rate, s.codec_context.channels, float(s.duration * s.time_base), x


def test_audio_the_container_refuses_is_re_encoded_to_aac(tmp_path):
    src = make_clip_with_pcm(tmp_path / "phone.mov")
    vw = write_clip_from(src, tmp_path / "out.mp4")
    assert vw.notes == [f"{src}: its pcm_mulaw audio is re-encoded to AAC (the mp4 container does not take it)"]
    codec, rate, channels, seconds, got = audio_of(tmp_path / "out.mp4")
    _, _, _, want_s, want = audio_of(src)
    assert (codec, rate, channels) == ("aac", 8000, 1) and abs(seconds - want_s) <= 1 / 25
    n = want.shape[1]
    err = got[:, :n] - want
    assert np.sqrt((err ** 2).mean() / (want ** 2).mean()) < 0.1  # the same tone, in step (AAC is lossy)
    # a container that takes the codec gets it copied, without a word
    vw = write_clip_from(src, tmp_path / "out.mov")
    assert vw.notes == [] and audio_of(tmp_path / "out.mov")[0] == "pcm_mulaw"
    np.testing.assert_array_equal(audio_of(tmp_path / "out.mov")[4], want)


def test_audio_neither_copied_nor_encoded_is_left_out_with_a_note(tmp_path, monkeypatch):
    from gankit.media import soundtrack

    monkeypatch.setattr(soundtrack, "AAC", "no-such-encoder")  # as a build of FFmpeg without one would be
    src = make_clip_with_pcm(tmp_path / "phone.mov")
    vw = write_clip_from(src, tmp_path / "out.mp4")
    assert len(vw.notes) == 1 and vw.notes[0].startswith(
        f"{src}: its audio track is dropped (neither it nor AAC goes into mp4: ")
    assert vw.notes[0].endswith("); the video is written without it")
    info = probe_video(tmp_path / "out.mp4")
    assert not info.has_audio and info.n_frames == 12


def test_a_failed_write_with_audio_leaves_nothing(tmp_path):
    make_clip_with_audio(tmp_path / "talk.mp4")
    with pytest.raises(RuntimeError, match="model blew up"):
        with VideoWriter(tmp_path / "out.mp4", 25, audio_from=tmp_path / "talk.mp4") as vw:
            vw.write(moving_square(1)[0])
            raise RuntimeError("model blew up")
    assert [p.name for p in tmp_path.iterdir()] == ["talk.mp4"]


def write_clip_from(src, out):
    """`src`'s frames written to `out` with its audio, as the video commands do."""
    with VideoWriter(out, probe_video(src).fps, audio_from=src) as vw:
        for f in read_frames(src):
            vw.write(f)
    return vw
