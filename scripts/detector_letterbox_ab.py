"""GPU A/B: the detector's letterbox on the CPU (OpenCV) vs on the device, 16 1080p frames in batches of 4,
with the letterbox and the network timed alone (medians of 5 after a warm-up). Run on a lent GPU:

    python3 scripts/detector_letterbox_ab.py   # results: benchmarks/results/throughput_streams_gpu/letterbox_ab.txt
"""
import time
from dataclasses import replace

import numpy as np
import torch

from tracker.detector import DetectorConfig, PlateDetector
from train.synth.scenes import SceneConfig, render_scene_frame

det = PlateDetector(config=DetectorConfig(device="cuda"))
frames = [render_scene_frame(SceneConfig(width=1920, height=1080, seconds=1, n_plates=3), 1, i)[0] for i in range(16)]


def cpu_letterbox(ims, f=1.0):
    cfg = det.config
    det.config = replace(cfg, device="cpu")
    try:
        x, r = PlateDetector._letterbox(det, ims, f)
    finally:
        det.config = cfg
    return x.to("cuda"), r


def timed(fn, reps=5):
    fn(); torch.cuda.synchronize()
    best = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); torch.cuda.synchronize(); best.append(time.perf_counter() - t)
    return 1000 * float(np.median(best))


dev_lb = det._letterbox
for name, lb in (("device", dev_lb), ("cpu", cpu_letterbox), ("device", dev_lb), ("cpu", cpu_letterbox)):
    det._letterbox = lb
    total = timed(lambda: [det.detect(frames[i:i + 4]) for i in range(0, 16, 4)]) / 16
    lbt = timed(lambda: [lb(frames[i:i + 4]) for i in range(0, 16, 4)]) / 16
    x, _ = lb(frames[:4])
    with torch.inference_mode():
        fwd = timed(lambda: det._forward(x)) / 4
    print(f"letterbox {name}: detect {total:.2f} ms/frame, letterbox {lbt:.2f}, forward {fwd:.2f} (batch 4)", flush=True)
det._letterbox = dev_lb
a = det.detect(frames[:4]); det._letterbox = cpu_letterbox; b = det.detect(frames[:4])
print("dets device vs cpu letterbox:", [len(x) for x in a], [len(x) for x in b],
      max((float(np.abs(p.box - q.box).max()) for x, y in zip(a, b) for p, q in zip(x, y)), default=0))
