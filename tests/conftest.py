"""Shared fixtures: tiny synthetic plate clips generated into a temp dir, once per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _ultralytics_offline(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep ultralytics' settings in a temp dir, never the user's home, and never online."""
    if "YOLO_CONFIG_DIR" not in os.environ:
        os.environ["YOLO_CONFIG_DIR"] = str(tmp_path_factory.mktemp("ultralytics"))
    from tracker.detector import configure_ultralytics_offline

    configure_ultralytics_offline()


@pytest.fixture(scope="session")
def clip_3s(tmp_path_factory: pytest.TempPathFactory):
    """A 3-second 640x360 30 fps clip with 2 plates, never seen in training (seed 9001)."""
    from train.synth.scenes import SceneConfig, write_scene_clip

    out = tmp_path_factory.mktemp("clip3s")
    cfg = SceneConfig(width=640, height=360, fps=30.0, seconds=3.0, n_plates=2, plate_width_px=(70, 130))
    return write_scene_clip(out, cfg, seed=9001)


def make_video(path: Path, n_frames: int = 20, width: int = 160, height: int = 96, fps: int = 25,
               audio: bool = False, codec: str = "libx264") -> Path:
    """Write a small moving-gradient video (and optionally a sine-wave AAC track) with PyAV."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        aus = out.add_stream("aac", rate=48000) if audio else None
        for i in range(n_frames):
            img = np.zeros((height, width, 3), np.uint8)
            img[..., 0] = (np.arange(width) * 2 + i * 5) % 256
            img[..., 1] = (np.arange(height)[:, None] * 2) % 256
            img[10:30, (i * 3) % (width - 20):(i * 3) % (width - 20) + 20] = 255
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if aus is not None:
            samples = int(48000 * n_frames / fps)
            t = np.arange(samples) / 48000
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            for start in range(0, samples, 1024):
                fr = av.AudioFrame.from_ndarray(wave[:, start:start + 1024], format="fltp", layout="mono")
                fr.sample_rate, fr.pts = 48000, start
                for p in aus.encode(fr):
                    out.mux(p)
            for p in aus.encode(None):
                out.mux(p)
    return path
