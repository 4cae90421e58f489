"""Live mode against a REAL RTSP server (gst-rtsp-server) on 127.0.0.1, started by the tests.

The server's system packages are installed by scripts/install-rtsp-test-deps.sh (CI runs it; the
session fixture runs it too when they are missing). These tests fail, never skip, when the server
cannot run, unless LICENSE_ENHANCER_SKIP_RTSP=1 is set (for machines without root).
Every test is bounded in time: subprocesses have timeouts, sources have open/read timeouts.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import make_video

from stream.errors import InputError
from stream.live import LiveConfig, LiveSource, StreamEvent
from stream.source import read_frames
from stream.types import Frame

sys.path.insert(0, str(Path(__file__).parent))
from rtsp_server import RtspServer, SilentServer, ensure_gst_rtsp, file_launch, free_port, pattern_launch  # noqa: E402

USER, PASSWORD = "alice", "Sup3r-S3cret"
FAST = ["--no-sr", "--imgsz", "160", "--open-timeout", "3", "--read-timeout", "3"]


@pytest.fixture(scope="session", autouse=True)
def gst_rtsp() -> None:
    if os.environ.get("LICENSE_ENHANCER_SKIP_RTSP") == "1":
        pytest.skip("LICENSE_ENHANCER_SKIP_RTSP=1")
    why = ensure_gst_rtsp(install=True)
    if why:
        pytest.fail(f"the RTSP test server cannot run: {why}")


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    """3 s, 160x96, 25 fps H.264 MP4 to serve."""
    return make_video(tmp_path_factory.mktemp("rtsp") / "clip.mp4", n_frames=75, fps=25)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stream", *args]


def run_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout)


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def all_text(out: Path, *streams: str) -> str:
    """Every text output of a run plus its stdout/stderr, for grepping."""
    parts = list(streams)
    for p in out.rglob("*"):
        if p.is_file() and p.suffix in (".json", ".jsonl", ".txt", ".log"):
            parts.append(p.read_text(errors="replace"))
    parts.append(" ".join(p.name for p in out.rglob("*")))
    return "\n".join(parts)


def test_reads_a_served_clip_and_never_leaks_credentials(small_clip, tmp_path):
    out = tmp_path / "out"
    with RtspServer(file_launch(small_clip), user=USER, password=PASSWORD) as srv:
        proc = run_cli(srv.url_with(USER, PASSWORD), "-o", str(out), *FAST, "--max-reconnects", "0",
                       "--status-interval", "0.5")
    assert proc.returncode == 0, proc.stderr
    frames = read_frames(out / "annotated.mp4")
    assert len(frames) >= 3 and frames[0].shape == (96, 160, 3)
    report = json.loads((out / "report.json").read_text())
    # Every frame served was either processed or (on a slow machine) dropped to bound the lag.
    assert 60 <= report["live"]["frames_dropped"] + len(frames) <= 75, report["live"]
    assert "enhance-video: live:" in proc.stderr  # the status line
    text = all_text(out, proc.stdout, proc.stderr)
    assert PASSWORD not in text and f"{USER}:" not in text
    assert "rtsp://***@127.0.0.1" in report["input"]


def test_wrong_credentials_fail_at_once(small_clip, tmp_path):
    with RtspServer(file_launch(small_clip), user=USER, password=PASSWORD) as srv:
        t = time.monotonic()
        proc = run_cli(srv.url_with(USER, "wrong-pass"), "-o", str(tmp_path / "o"), *FAST)
    assert proc.returncode == 2 and time.monotonic() - t < 30
    assert "401" in proc.stderr and "wrong-pass" not in proc.stderr and "Traceback" not in proc.stderr


def test_reconnects_after_server_restart_with_a_new_frame_size(tmp_path):
    out = tmp_path / "out"
    with RtspServer(pattern_launch(160, 96, 25)) as srv:
        proc = subprocess.Popen(cli(srv.url, "-o", str(out), *FAST, "--duration", "14", "--status-interval", "1"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: (out / "events.jsonl").is_file() and (out / "events.jsonl").stat().st_size > 0, 60,
                     "the pipeline to start")
            time.sleep(2)
            killed = time.monotonic()
            srv.restart(pattern_launch(320, 180, 25), down_s=1.0)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 0, stderr
    events = [json.loads(ln) for ln in (out / "events.jsonl").read_text().splitlines()]
    reconnected = [e for e in events if e["event"] == "reconnected"]
    assert reconnected and reconnected[0]["size"] == [320, 180] and reconnected[0]["size_changed"]
    assert reconnected[0]["down_s"] < 10 and time.monotonic() - killed > 1
    report = json.loads((out / "report.json").read_text())
    assert report["live"]["reconnects"] >= 1
    frames = read_frames(out / "annotated.mp4")  # the sink kept its size: new frames letterboxed
    assert len(frames) > 20 and {f.shape for f in frames} == {(96, 160, 3)}
    assert "reconnects 1" in stderr


def test_silent_server_open_timeout_gives_a_clear_error(tmp_path):
    with SilentServer() as silent:
        t = time.monotonic()
        proc = run_cli(silent.url, "-o", str(tmp_path / "o"), "--open-timeout", "1", "--max-reconnects", "0",
                       timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "timeout" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and time.monotonic() - t < 30


def test_silent_server_retries_with_backoff_then_gives_up():
    with SilentServer() as silent:
        t = time.monotonic()
        with pytest.raises(InputError, match="timeout"):
            LiveSource(silent.url, LiveConfig(open_timeout_s=0.5, max_reconnects=2, backoff_s=0.1))
        elapsed = time.monotonic() - t
        assert len(silent.accepted) == 3  # 1 + 2 retries, each timed out
    assert 1.5 <= elapsed < 10


def test_connection_refused(tmp_path):
    proc = run_cli(f"rtsp://127.0.0.1:{free_port()}/cam", "-o", str(tmp_path / "o"), "--max-reconnects", "0")
    assert proc.returncode == 2 and "refused" in proc.stderr.lower() and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_wrong_path_is_not_retried(small_clip, tmp_path):
    with RtspServer(file_launch(small_clip)) as srv:
        t = time.monotonic()
        proc = run_cli(f"rtsp://127.0.0.1:{srv.port}/no-such-path", "-o", str(tmp_path / "o"))  # retries forever
    assert proc.returncode == 2 and "404" in proc.stderr and time.monotonic() - t < 30
    assert len(proc.stderr.strip().splitlines()) == 1


def test_frozen_server_read_timeout_then_reconnect():
    """A camera that stops sending mid-stream (process frozen): the read timeout fires, the source
    keeps retrying (open timeouts), and recovers when the camera comes back."""
    with RtspServer(pattern_launch(160, 96, 25)) as srv:
        src = LiveSource(srv.url, LiveConfig(open_timeout_s=1, read_timeout_s=1, backoff_s=0.1, duration_s=25))
        events, n = [], 0
        thaw = threading.Timer(4.0, lambda: srv.proc.send_signal(signal.SIGCONT))
        with src:
            for item in src:
                if isinstance(item, StreamEvent):
                    events.append(item)
                    if len(events) == 2:
                        break
                    continue
                n += 1
                if n == 10:
                    srv.proc.send_signal(signal.SIGSTOP)
                    thaw.start()
        thaw.cancel()
    assert len(events) == 2 and events[1].kind == "reconnected", (events, src.stats)
    assert "timeout" in events[1].reason, events[1]
    assert 2.5 < events[1].down_s < 12


def test_latest_frame_policy_bounds_lag_for_a_slow_consumer():
    with RtspServer(pattern_launch(160, 96, 25)) as srv:
        src = LiveSource(srv.url, LiveConfig(max_lag_s=0.3, duration_s=5))
        lags: list[float] = []
        with src:
            for item in src:
                if isinstance(item, Frame):
                    lags.append(src.stats.lag_s)
                    time.sleep(0.1)  # a 10 fps consumer on a 25 fps camera
    assert len(lags) >= 15 and src.stats.dropped >= 20
    assert max(lags[5:]) <= 0.3 + 0.15  # bounded: never minutes behind


def test_udp_transport():
    with RtspServer(pattern_launch(160, 96, 25)) as srv:
        src = LiveSource(srv.url, LiveConfig(transport="udp", open_timeout_s=5, duration_s=3))
        with src:
            frames = [it for it in src if isinstance(it, Frame)]
    assert len(frames) >= 10 and frames[0].image.shape == (96, 160, 3) and frames[0].pts_s < 0.01


def _last_frame_index(tracks_jsonl) -> int:
    """The frame index of the last complete line of a growing tracks.jsonl (-1: none yet)."""
    try:
        lines = tracks_jsonl.read_text().splitlines()
    except FileNotFoundError:
        return -1
    for line in reversed(lines):
        try:
            return int(json.loads(line)["frame"])
        except (ValueError, KeyError):
            continue  # a line still being written
    return -1


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_finalise_outputs(clip_3s, tmp_path, sig, code):
    out = tmp_path / "out"
    with RtspServer(file_launch(clip_3s.video_path)) as srv:
        proc = subprocess.Popen(cli(srv.url, "-o", str(out), "--imgsz", "320", "--open-timeout", "3"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # A few frames in (a signal during the very first frame would rightly leave 0 frames).
            wait_for(lambda: _last_frame_index(out / "tracks.jsonl") >= 3, 60, "track lines of frame 3")
            proc.send_signal(sig)
            _, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    report = json.loads((out / "report.json").read_text())
    assert report["frames_processed"] > 0 and report["tracks"]
    assert len(read_frames(out / "annotated.mp4")) > 0
    for t in report["tracks"]:
        if t["best_crop"]:
            assert (out / t["best_crop"]).is_file()


def test_outputs_survive_sigkill(clip_3s, tmp_path):
    """Killed without warning: the video so far plays, every track line parses, and the evidence
    crops chosen so far are on disk (written as they are chosen, not at the end)."""
    out = tmp_path / "out"
    with RtspServer(file_launch(clip_3s.video_path)) as srv:
        proc = subprocess.Popen(cli(srv.url, "-o", str(out), "--imgsz", "320", "--open-timeout", "3"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: any((out / "crops").glob("track_*_enhanced.png")), 60, "a first evidence crop")
            time.sleep(2.5)  # a second or so of video gets into a closed MP4 fragment
        finally:
            proc.kill()
            proc.wait(timeout=10)
    assert len(read_frames(out / "annotated.mp4")) > 0
    lines = (out / "tracks.jsonl").read_text().splitlines()
    assert lines and all(json.loads(ln)["track_id"] >= 1 for ln in lines)
    assert not list((out / "crops").glob("*.tmp*"))  # atomic writes: no half files


def test_adaptive_detect_interval_keeps_the_frames_a_slow_detector_would_drop(tmp_path):
    """A detector taking 70 ms a frame on a 25 fps camera: with a fixed interval the pipeline falls
    behind and the source drops frames; allowed to detect on up to one frame in 4 while frames wait,
    it detects on fewer frames and keeps far more of them (the report says so)."""
    from stream.pipeline import EnhancePipeline, PipelineConfig

    class SlowDetector:
        def detect(self, images):
            time.sleep(0.07 * len(images))
            return [[] for _ in images]

    reports = {}
    for max_every in (1, 4):
        with RtspServer(pattern_launch(160, 96, 25)) as srv:
            src = LiveSource(srv.url, LiveConfig(max_lag_s=0.4, duration_s=6))
            config = PipelineConfig(enhance=False, video=False, detect_batch=1, detect_ahead=False,
                                    live_max_detect_every=max_every)
            with src:
                EnhancePipeline(SlowDetector(), None, config).run(src, tmp_path / str(max_every), progress=False)
        reports[max_every] = json.loads((tmp_path / str(max_every) / "report.json").read_text())
        assert src.stats.detect_every == reports[max_every]["detection"].get("every_now", 1)  # the status line's
    fixed, adaptive = reports[1], reports[4]
    assert fixed["detection"]["frames_detected"] == fixed["frames_processed"]
    assert fixed["live"]["frames_dropped"] >= 0.3 * fixed["frames_processed"]
    assert adaptive["detection"]["times_raised"] >= 1 and adaptive["detection"]["adaptive_max_every"] == 4
    assert adaptive["detection"]["frames_detected"] < 0.7 * adaptive["frames_processed"]
    assert adaptive["live"]["frames_dropped"] < 0.5 * fixed["live"]["frames_dropped"]
    assert adaptive["frames_processed"] > 1.3 * fixed["frames_processed"]
