"""What the GPU A/B scripts (detector_letterbox_ab.py, detector_batch_nms_ab.py) share: the torch
detector on a device, 16 rendered 1080p frames with 3 plates, and a timer that waits for the device."""
import time

import numpy as np
import torch

from tracker.detector import DetectorConfig, PlateDetector
from train.synth.scenes import SceneConfig, render_scene_frame


def detector_and_frames(dev: str) -> tuple[PlateDetector, list[np.ndarray]]:
    det = PlateDetector(config=DetectorConfig(device=dev, backend="torch"))
    scene = SceneConfig(width=1920, height=1080, seconds=1, n_plates=3)
    return det, [render_scene_frame(scene, 1, i)[0] for i in range(16)]


def timed(fn, dev: str, reps: int = 5) -> float:
    """Median ms of ``reps`` calls of ``fn`` after one warm-up call, the device synchronised."""
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))
