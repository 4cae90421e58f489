"""Models in one process, pipelines in workers: the transport (frames through a shared mapping,
errors raised in the caller) and ``enhance-video --workers`` end to end."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from stream.model_server import (FrameBuffer, ModelServer, RemoteDetector, RemoteEnhancer, RemoteError,
                                 model_facts, serve)


@dataclass(frozen=True)
class _Config:
    roi: tuple | None = None
    imgsz: int = 640


class _FrameModel:
    """Stands in for a detector: per frame, its shape, its sum and whether it may be written."""

    config = _Config(roi=(1, 2, 3, 4))
    info = {"sha256": "abc"}
    backend = "fake"
    unpicklable = threading.Lock()

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def detect(self, images):
        if any(im.shape[0] == 13 for im in images):
            raise ValueError("13 rows are unlucky")
        return [(im.shape, int(im.sum(dtype=np.int64)), im.flags.writeable) for im in images]


def _linked(model, kind="detector"):
    here, there = multiprocessing.Pipe()
    method = model.detect if kind == "detector" else model.enhance
    t = threading.Thread(target=serve, args=(here, method), daemon=True)
    t.start()
    remote = (RemoteDetector if kind == "detector" else RemoteEnhancer)(there, model_facts(model))
    return remote, t


def test_frames_reach_the_server_intact_through_a_growing_mapping():
    remote, _ = _linked(_FrameModel())
    rng = np.random.default_rng(0)
    for shape in [(96, 160, 3), (96, 160, 3), (360, 640, 3), (20, 30, 3)]:  # the third batch needs a larger map
        frames = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(3)]
        out = remote.detect(frames)
        assert out == [(f.shape, int(f.sum(dtype=np.int64)), False) for f in frames]  # read-only views
    # the mapping's file is unlinked once the server has it: a crash leaves nothing behind
    assert not any(n.startswith("license-enhancer-frames-") for n in os.listdir(remote._frames._dir))
    remote.close()


def test_a_model_error_is_raised_in_the_caller_with_its_type_and_the_link_keeps_working():
    remote, _ = _linked(_FrameModel())
    with pytest.raises(ValueError, match="unlucky"):
        remote.detect([np.zeros((13, 4, 3), np.uint8)])
    assert remote.detect([np.ones((2, 2, 3), np.uint8)]) == [((2, 2, 3), 12, False)]
    remote.close()


def test_a_stopped_server_is_a_clear_error():
    here, there = multiprocessing.Pipe()
    gone = RemoteEnhancer(there, {})
    here.close()  # the server's end: its process has ended
    with pytest.raises(RemoteError, match="model server has stopped"):
        gone.enhance([np.zeros((2, 2, 3), np.uint8)])


def test_facts_copy_what_the_pipeline_reads_and_skip_what_cannot_travel():
    facts = model_facts(_FrameModel())
    assert facts["config"].roi == (1, 2, 3, 4) and facts["info"] == {"sha256": "abc"} and facts["backend"] == "fake"
    assert "unpicklable" not in facts
    remote, _ = _linked(_FrameModel())
    assert remote.config.imgsz == 640
    with pytest.raises(AttributeError):
        remote.unpicklable  # noqa: B018
    remote.close()


def test_model_server_serves_each_link_with_the_shared_model():
    server = ModelServer({"detector": _FrameModel(), "enhancer": None})
    links = [server.link(None, str(i)) for i in range(3)]
    assert all(set(link.conns) == {"detector"} for link in links)
    remotes = [link.remotes()["detector"] for link in links]
    results = [None] * 3

    def call(i):
        results[i] = remotes[i].detect([np.full((4, 5, 3), i, np.uint8)])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[((4, 5, 3), 60 * i, False)] for i in range(3)]
    for r in remotes:
        r.close()
    server.join(timeout=5)


def test_frame_buffer_grows_with_headroom():
    buf = FrameBuffer()
    path, slots = buf.put([np.zeros((10, 10, 3), np.uint8)])
    assert path is not None and buf.size >= 300
    assert buf.put([np.zeros((10, 10, 3), np.uint8)])[0] is None  # fits: same mapping
    assert buf.put([np.zeros((100, 10, 3), np.uint8)])[0] is not None
    buf.close()


# ------------------------------------------------------------------ enhance-video --workers
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stream", *args]


def test_workers_give_the_same_outputs_as_one_process(tmp_path, clip_3s):
    from conftest import make_video

    other = make_video(tmp_path / "plain.mp4", n_frames=12)
    inputs = [str(clip_3s.video_path), str(other), str(clip_3s.video_path)]
    runs = {}
    for workers in ("0", "2"):
        out = tmp_path / f"out{workers}"
        proc = subprocess.run(_cli(*inputs, "-o", str(out), "--quiet", "--workers", workers), capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("frames in") == 3 and "Traceback" not in proc.stderr
        runs[workers] = out
    for name in ("clip", "plain", "clip_2"):
        same = [(runs[w] / name / "tracks.jsonl").read_text().splitlines() for w in runs]
        diff = next(((k, x, y) for k, (x, y) in enumerate(zip(*same)) if x != y), None)
        assert diff is None and len(same[0]) == len(same[1]), (name, len(same[0]), len(same[1]), diff)
        reports = [json.loads((runs[w] / name / "report.json").read_text()) for w in runs]
        assert reports[0]["tracks"] == reports[1]["tracks"] and reports[0]["models"] == reports[1]["models"]
        assert (runs["2"] / name / "annotated.mp4").stat().st_size > 0
    assert json.loads((runs["2"] / "clip" / "report.json").read_text())["tracks"]


def test_workers_finish_their_files_on_sigterm(tmp_path):
    from conftest import make_video
    from stream.source import read_frames

    clip = make_video(tmp_path / "long.mp4", n_frames=900, width=320, height=192)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli(str(clip), "-o", str(out), "--workers", "1", "--no-read"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "annotated.mp4").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # some frames in
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "terminated" in stderr
    report = json.loads((out / "report.json").read_text())
    assert 0 < report["frames_processed"] < 900
    assert len(read_frames(out / "annotated.mp4")) > 0


def test_negative_workers_is_a_usage_error(tmp_path):
    proc = subprocess.run(_cli("--workers", "-1"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--workers must be >= 0" in proc.stderr
