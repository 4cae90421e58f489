from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import make_video

from stream.errors import InputError, OutputError
from stream.sink import VideoSink
from stream.source import VideoSource, frames_only, read_frames
from stream.types import Frame


def test_source_reads_every_frame_with_times(tmp_path):
    path = make_video(tmp_path / "v.mp4", n_frames=20, fps=25)
    with VideoSource(path) as src:
        assert (src.info.width, src.info.height) == (160, 96)
        assert src.info.fps == pytest.approx(25)
        frames = list(frames_only(src))
    assert [f.index for f in frames] == list(range(20))
    assert frames[0].pts_s == 0 and frames[-1].pts_s == pytest.approx(19 / 25, abs=1e-3)
    assert frames[0].image.shape == (96, 160, 3) and frames[0].image.dtype == np.uint8


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
def test_sink_round_trip_keeps_count_size_and_timing(tmp_path, background):
    src_path = make_video(tmp_path / "in.mp4", n_frames=15, fps=25)
    with VideoSource(src_path) as src:
        sink = VideoSink(tmp_path / "out.mp4", src.info.width, src.info.height, src.info.fps, src.info.time_base,
                         background=background)
        for f in frames_only(src):
            sink.write(f.image, f.pts_s)
        sink.close()
    out = read_frames(tmp_path / "out.mp4")
    assert len(out) == 15 and out[0].shape == (96, 160, 3)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert float(c.streams.video[0].average_rate) == pytest.approx(25, rel=0.01)


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
def test_audio_is_copied_through(tmp_path, background):
    src_path = make_video(tmp_path / "a.mp4", n_frames=25, fps=25, audio=True)
    with VideoSource(src_path) as src:
        assert src.info.audio is not None
        sink = VideoSink(tmp_path / "o.mp4", 160, 96, 25, src.info.time_base, audio=src.info.audio,
                         background=background)
        for item in src:
            if isinstance(item, Frame):
                sink.write(item.image, item.pts_s)
            else:
                sink.mux_audio(item)
        sink.close()
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert len(c.streams.audio) == 1 and c.streams.audio[0].codec_context.name == "aac"
        assert sum(1 for p in c.demux(c.streams.audio[0]) if p.size) > 10


def test_sink_keeps_colours(tmp_path):
    """The sink's own BGR -> YUV conversion must match the decoder's YUV -> BGR (same matrix and
    range): flat colour patches come back within x264's quantisation error."""
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (40, 200, 230), (128, 128, 128), (250, 250, 250), (10, 10, 10)]
    image = np.zeros((96, 32 * len(colours), 3), np.uint8)
    for k, c in enumerate(colours):
        image[:, 32 * k:32 * (k + 1)] = c
    sink = VideoSink(tmp_path / "c.mp4", image.shape[1], image.shape[0], 25, Fraction(1, 25), crf=10)
    for i in range(3):
        sink.write(image, i / 25)
    sink.close()
    out = read_frames(tmp_path / "c.mp4")[-1].astype(int)
    for k, c in enumerate(colours):
        patch = out[8:-8, 32 * k + 8:32 * (k + 1) - 8].reshape(-1, 3).mean(0)
        assert np.abs(patch - c).max() < 6, (c, patch)


def test_odd_frame_size_is_padded_to_even(tmp_path):
    sink = VideoSink(tmp_path / "odd.mp4", 161, 97, 25, Fraction(1, 25))
    for i in range(5):
        sink.write(np.full((97, 161, 3), i * 40, np.uint8), i / 25)
    sink.close()
    frames = read_frames(tmp_path / "odd.mp4")
    assert len(frames) == 5 and frames[0].shape == (98, 162, 3)


def test_truncated_file_keeps_the_decodable_frames(tmp_path):
    path = make_video(tmp_path / "t.mp4", n_frames=40)
    data = (tmp_path / "t.mp4").read_bytes()
    # Our sink writes fragmented MP4; a plain MP4 cut in half may lose its index, so cut a
    # fragmented copy instead, as a killed recording would be.
    with VideoSource(path) as src:
        sink = VideoSink(tmp_path / "frag.mp4", 160, 96, 25, src.info.time_base)
        for f in frames_only(src):
            sink.write(f.image, f.pts_s)
        sink.close()
    frag = (tmp_path / "frag.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(frag[: int(len(frag) * 0.6)])
    frames = read_frames(tmp_path / "cut.mp4")
    assert 0 < len(frames) < 40
    assert data  # the original stays untouched


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.mp4", "not found"),
    (lambda p: p, "directory"),
    (lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt", "cannot open"),
    (lambda p: (p / "empty.mp4").write_bytes(b"") or p / "empty.mp4", "cannot open"),
])
def test_bad_inputs_raise_one_line_input_errors(tmp_path, make, message):
    with pytest.raises(InputError, match=message) as err:
        with VideoSource(make(tmp_path)) as src:
            list(src)
    assert "\n" not in str(err.value)


def test_sink_fits_frames_of_another_size_into_its_own(tmp_path):
    """A camera that comes back at another resolution: the recording keeps its size, new frames
    are scaled to fit (aspect kept) and centred on black."""
    sink = VideoSink(tmp_path / "o.mp4", 160, 96, 25, Fraction(1, 25))
    sink.write(np.full((96, 160, 3), 100, np.uint8), 0.0)
    sink.write(np.full((180, 320, 3), 200, np.uint8), 0.04)  # larger
    sink.write(np.full((200, 100, 3), 200, np.uint8), 0.08)  # portrait: black bars left and right
    sink.close()
    frames = read_frames(tmp_path / "o.mp4")
    assert len(frames) == 3 and {f.shape for f in frames} == {(96, 160, 3)}
    assert frames[1].mean() > 180
    assert frames[2][:, :45].mean() < 30 and frames[2][:, 62:98].mean() > 180


def test_background_sink_reports_an_encoder_error_to_the_caller(tmp_path, monkeypatch):
    sink = VideoSink(tmp_path / "o.mp4", 160, 96, 25, Fraction(1, 25), background=True)
    sink.write(np.zeros((96, 160, 3), np.uint8), 0.0)

    def disk_full(image, pts_s):
        raise OutputError(f"cannot write {sink.path}: No space left on device")

    monkeypatch.setattr(sink, "_write_now", disk_full)
    sink.write(np.zeros((96, 160, 3), np.uint8), 0.04)  # queued; fails on the worker
    with pytest.raises(OutputError, match="No space left"):
        for i in range(2, 50):  # a later write (or close) raises it in this thread
            sink.write(np.zeros((96, 160, 3), np.uint8), i / 25)
        sink.close()
    sink.close()  # safe to call again; the file holds the frame written before the error
    assert len(read_frames(tmp_path / "o.mp4")) == 1
