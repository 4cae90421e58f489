"""Bad and unusual inputs, one test each: one clear stderr line and a non-zero exit (never a
traceback), or, for unusual but valid inputs, a correct run; outputs written so far stay readable.

Cases that fail before any model loads go through the real CLI in a subprocess (about a second
each). Cases that need the models call ``stream.cli.main`` in this process, so torch and the
detector are imported once; tiny videos (160x96, a few frames) and ``--no-sr`` keep it quick.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import make_video

from stream.cli import main
from stream.sink import VideoSink
from stream.source import read_frames

sys.path.insert(0, str(Path(__file__).parent))
from rtsp_server import free_port  # noqa: E402

FAST = ["--no-sr", "--imgsz", "160", "-q"]


REPO = Path(__file__).resolve().parents[2]
# The subprocess finds the package from any working directory, installed or not.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def run_cli(*args: str | bytes, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=ENV)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("enhance-video: error: "), lines[0]
    for f in fragments:
        assert f.lower() in lines[0].lower(), lines[0]
    return lines[0]


def in_process(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI's main() here; returns (exit status, stderr)."""
    code = main([*args])
    return code, capsys.readouterr().err


def assert_in_process_error(code: int, err: str, *fragments: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    for f in fragments:
        assert f.lower() in lines[0].lower(), lines[0]


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_video(tmp_path / "clip.mp4", n_frames=3)


# -- the input file ------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    assert_one_line_error(run_cli(str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o")), "input not found")


def test_directory(tmp_path):
    assert_one_line_error(run_cli(str(tmp_path), "-o", str(tmp_path / "o")), "directory")


def test_text_file(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video\n" * 100)
    assert_one_line_error(run_cli(str(tmp_path / "notes.mp4"), "-o", str(tmp_path / "o")), "cannot open")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert_one_line_error(run_cli(str(tmp_path / "empty.mp4"), "-o", str(tmp_path / "o")), "cannot open")


def test_png_renamed_to_mp4(tmp_path):
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((32, 48, 3), np.uint8))
    (tmp_path / "photo.mp4").write_bytes(png.tobytes())
    assert_one_line_error(run_cli(str(tmp_path / "photo.mp4"), "-o", str(tmp_path / "o")), "still image")


def test_character_device(tmp_path):
    assert_one_line_error(run_cli("/dev/null", "-o", str(tmp_path / "o")), "cannot open")


def test_truncated_mp4_without_index(tmp_path):
    """A plain MP4 keeps its index (moov) at the end: cut short, nothing can be located."""
    path = make_video(tmp_path / "v.mp4", n_frames=20)
    data = path.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    assert_one_line_error(run_cli(str(tmp_path / "cut.mp4"), "-o", str(tmp_path / "o")), "cannot open")


def test_zero_frames(tmp_path):
    """What a recording killed before its first fragment leaves: a header (ftyp + moov), no frames."""
    sink = VideoSink(tmp_path / "rec.mp4", 160, 96, 25, Fraction(1, 25))
    sink.write(np.zeros((96, 160, 3), np.uint8), 0.0)
    sink.close()
    data = (tmp_path / "rec.mp4").read_bytes()
    (tmp_path / "zero.mp4").write_bytes(data[: data.index(b"moof") - 4])
    out = tmp_path / "o"
    assert_one_line_error(run_cli(str(tmp_path / "zero.mp4"), "-o", str(out)), "no decodable frames")
    assert not (out / "annotated.mp4").exists()  # failed before writing anything


def test_audio_only(tmp_path):
    with av.open(str(tmp_path / "audio.m4a"), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        for start in range(0, 48000, 1024):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 48000, start
            for p in stream.encode(fr):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    assert_one_line_error(run_cli(str(tmp_path / "audio.m4a"), "-o", str(tmp_path / "o")), "no video stream")


def test_unsupported_codec(tmp_path):
    """A codec FFmpeg has no decoder for (the sample entry's four-cc changed to an unknown one)."""
    data = make_video(tmp_path / "v.mp4", n_frames=3).read_bytes()
    (tmp_path / "odd_codec.mp4").write_bytes(data.replace(b"avc1", b"xq9z"))
    assert_one_line_error(run_cli(str(tmp_path / "odd_codec.mp4"), "-o", str(tmp_path / "o")),
                          "unsupported video codec")


def test_huge_dimensions(tmp_path):
    path = make_video(tmp_path / "wide.mp4", n_frames=1, width=8400, height=32)
    assert_one_line_error(run_cli(str(path), "-o", str(tmp_path / "o")), "8400x32", "maximum")


def test_non_utf8_path_missing(tmp_path):
    name = os.fsencode(tmp_path) + b"/caf\xe9-\xff.mp4"  # Latin-1 bytes: not UTF-8
    proc = subprocess.run([sys.executable, "-m", "stream", name, "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, errors="replace", timeout=60, env=ENV)
    assert_one_line_error(proc, "input not found")


# -- the output folder ---------------------------------------------------------------------------

def test_output_equal_to_input(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    make_video(folder / "annotated.mp4", n_frames=3)
    assert_one_line_error(run_cli(str(folder / "annotated.mp4"), "-o", str(folder)), "overwrite the input")
    assert len(read_frames(folder / "annotated.mp4")) == 3  # untouched


def test_output_is_an_existing_file(tmp_path, clip):
    (tmp_path / "taken").write_text("x")
    assert_one_line_error(run_cli(str(clip), "-o", str(tmp_path / "taken")), "existing file")


def test_output_below_a_file(tmp_path, clip):
    (tmp_path / "taken").write_text("x")
    assert_one_line_error(run_cli(str(clip), "-o", str(tmp_path / "taken" / "sub")), "cannot write to output folder")


def test_unwritable_output_folder(tmp_path, clip):
    if os.geteuid() == 0:
        target = Path("/sys/enhance-video-test-out")  # root may write anywhere, but never into sysfs
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = ro / "out"
    assert_one_line_error(run_cli(str(clip), "-o", str(target)), "cannot write to output folder")


# -- URLs ----------------------------------------------------------------------------------------

def test_url_with_unsupported_scheme(tmp_path):
    assert_one_line_error(run_cli("ftp://cam.example/stream.mp4", "-o", str(tmp_path / "o")),
                          "unsupported URL scheme")


def test_malformed_rtsp_url(tmp_path):
    assert_one_line_error(run_cli("rtsp://admin:pw@127.0.0.1:notaport/cam", "-o", str(tmp_path / "o")),
                          "malformed URL", "rtsp://***@")


def test_rtsp_url_without_host(tmp_path):
    assert_one_line_error(run_cli("rtsp:///cam", "-o", str(tmp_path / "o")), "no host")


def test_unreachable_rtsp_host(tmp_path):
    """TEST-NET-1 (RFC 5737) is never routed: no answer, or no route; bounded by the open timeout."""
    proc = run_cli("rtsp://192.0.2.1:554/cam", "-o", str(tmp_path / "o"), "--open-timeout", "1",
                   "--max-reconnects", "0", timeout=30)
    assert_one_line_error(proc, "cannot connect")


def test_unresolvable_rtsp_host(tmp_path):
    proc = run_cli("rtsp://no-such-camera.invalid/cam", "-o", str(tmp_path / "o"), "--open-timeout", "2",
                   "--max-reconnects", "0", timeout=30)
    assert_one_line_error(proc, "cannot connect")


def test_credentials_never_in_errors_or_output_names(tmp_path):
    # No -o: the default output folder is derived from the URL, inside the working directory.
    proc = run_cli(f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/../../etc/cam", "--max-reconnects", "0",
                   cwd=tmp_path)
    line = assert_one_line_error(proc, "refused", "rtsp://***@127.0.0.1")
    assert "hunter2" not in proc.stderr + proc.stdout and "admin" not in line
    made = [p.relative_to(tmp_path) for p in tmp_path.rglob("*")]
    assert made and all(str(p).startswith("enhanced") and ".." not in p.parts for p in made), made
    assert not any("hunter2" in str(p) or "admin" in str(p) for p in made)


def test_bad_live_option(tmp_path):
    proc = run_cli("rtsp://127.0.0.1:1/cam", "--max-lag", "0")
    assert proc.returncode == 2 and "--max-lag" in proc.stderr and "Traceback" not in proc.stderr


# -- weights (the models load in this process) ---------------------------------------------------

def test_corrupt_generator_weights(tmp_path, clip, capsys):
    bad = tmp_path / "g.safetensors"
    bad.write_bytes(os.urandom(4096))
    assert_in_process_error(*in_process(capsys, str(clip), "-o", str(tmp_path / "o"), "--generator", str(bad),
                                        "--imgsz", "160", "-q"), "cannot read generator weights")


def test_generator_weights_of_another_architecture(tmp_path, clip, capsys):
    """Right format and config, wrong tensors (e.g. a file from another model size)."""
    from safetensors.torch import save_file

    from sr_model.weights import DEFAULT_WEIGHTS, read_metadata

    config, _ = read_metadata(DEFAULT_WEIGHTS)
    import torch

    wrong = tmp_path / "other.safetensors"
    save_file({"head.weight": torch.zeros(3, 7, 3, 3)}, str(wrong), metadata={"config": json.dumps(config)})
    assert_in_process_error(*in_process(capsys, str(clip), "-o", str(tmp_path / "o"), "--generator", str(wrong),
                                        "--imgsz", "160", "-q"), "does not fit")


def test_corrupt_detector_weights(tmp_path, clip, capsys):
    bad = tmp_path / "d.safetensors"
    bad.write_bytes(b"\x00" * 100)
    assert_in_process_error(*in_process(capsys, str(clip), "-o", str(tmp_path / "o"), "--detector", str(bad), *FAST),
                            "cannot read detector weights")


def test_detector_weights_of_another_model(tmp_path, clip, capsys):
    from sr_model.weights import DEFAULT_WEIGHTS

    assert_in_process_error(*in_process(capsys, str(clip), "-o", str(tmp_path / "o"), "--detector",
                                        str(DEFAULT_WEIGHTS), *FAST), "not a plate detector file")


def test_pickled_weights_are_refused_never_unpickled(tmp_path, clip, capsys):
    """A .pt pickle renamed .safetensors: refused as unreadable; its payload never runs."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Payload()))
    code, err = in_process(capsys, str(clip), "-o", str(tmp_path / "o"), "--detector", str(evil), *FAST)
    assert_in_process_error(code, err, "cannot read")
    code, err = in_process(capsys, str(clip), "-o", str(tmp_path / "o"), "--generator", str(evil), "--imgsz", "160")
    assert_in_process_error(code, err, "cannot read")
    assert not marker.exists()


# -- unusual but valid inputs: processed correctly -----------------------------------------------

def test_odd_width_and_height(tmp_path, capsys):
    path = make_video(tmp_path / "odd.mp4", n_frames=3, width=161, height=97, codec="mpeg4")
    code, err = in_process(capsys, str(path), "-o", str(tmp_path / "o"), *FAST)
    assert code == 0, err
    frames = read_frames(tmp_path / "o" / "annotated.mp4")
    assert len(frames) == 3 and frames[0].shape == (98, 162, 3)  # padded by one pixel to even


def test_rotated_display_matrix_is_respected(tmp_path, capsys):
    """Phone video: landscape frames plus a 90° display matrix. Frames are turned upright (as
    players show them) and the output is written upright, without a matrix."""
    with av.open(str(tmp_path / "rot.mp4"), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
        vs.set_display_rotation(90)
        img = np.zeros((96, 160, 3), np.uint8)
        img[:, :20] = 255  # a white band on the stored frame's left edge
        for _ in range(3):
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    code, err = in_process(capsys, str(tmp_path / "rot.mp4"), "-o", str(tmp_path / "o"), *FAST)
    assert code == 0, err
    frames = read_frames(tmp_path / "o" / "annotated.mp4")
    assert len(frames) == 3 and frames[0].shape == (160, 96, 3)
    # 90° counter-clockwise: the stored left edge becomes the bottom edge.
    assert frames[0][-15:].mean() > 200 and frames[0][:100].mean() < 60


def test_variable_frame_rate_keeps_timing(tmp_path, capsys):
    times = [0.0, 0.04, 0.2, 0.24, 0.7]  # s: irregular gaps
    with av.open(str(tmp_path / "vfr.mp4"), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 1000)
        for t in times:
            fr = av.VideoFrame.from_ndarray(np.full((96, 160, 3), int(t * 300), np.uint8), format="bgr24")
            fr.pts, fr.time_base = round(t * 1000), Fraction(1, 1000)
            for p in vs.encode(fr):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    code, err = in_process(capsys, str(tmp_path / "vfr.mp4"), "-o", str(tmp_path / "o"), *FAST)
    assert code == 0, err
    with av.open(str(tmp_path / "o" / "annotated.mp4")) as c:
        got = [float(f.time) for f in c.decode(video=0)]
    # Relative timing is what matters (a fragmented MP4 may start at the encoder's delay, not 0).
    assert [t - got[0] for t in got] == pytest.approx(times, abs=0.002)


def test_4k_input(tmp_path, capsys):
    path = make_video(tmp_path / "uhd.mp4", n_frames=2, width=3840, height=2160)
    code, err = in_process(capsys, str(path), "-o", str(tmp_path / "o"), *FAST)
    assert code == 0, err
    frames = read_frames(tmp_path / "o" / "annotated.mp4")
    assert len(frames) == 2 and frames[0].shape == (2160, 3840, 3)


def test_truncated_fragmented_recording_keeps_what_decodes(tmp_path, capsys):
    """A recording cut by a crash (fragmented, as ours are): the intact part is processed."""
    src = make_video(tmp_path / "v.mp4", n_frames=30)
    sink = VideoSink(tmp_path / "frag.mp4", 160, 96, 25, Fraction(1, 12800))
    for i, img in enumerate(read_frames(src)):
        sink.write(img, i / 25)
    sink.close()
    data = (tmp_path / "frag.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    code, err = in_process(capsys, str(tmp_path / "cut.mp4"), "-o", str(tmp_path / "o"), *FAST)
    assert code == 0, err
    n = len(read_frames(tmp_path / "o" / "annotated.mp4"))
    assert 0 < n < 30
    assert json.loads((tmp_path / "o" / "report.json").read_text())["frames_processed"] == n
