"""GPU A/B: the detector's letterbox on the CPU (OpenCV) vs on the device, 16 1080p frames in batches of 4,
with the letterbox and the network timed alone (medians of 5 after a warm-up). Run on a lent GPU:

    python3 scripts/detector_letterbox_ab.py [cuda|cpu]   # results: benchmarks/results/throughput_streams_gpu/letterbox_ab.txt
"""
import sys

import numpy as np
import torch

from gpu_ab_setup import detector_and_frames, timed

dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
det, frames = detector_and_frames(dev)


found = {}
for name, on_device in (("device", True), ("cpu", False), ("device", True), ("cpu", False)):
    det._input_on_device = on_device  # where PlateDetector._letterbox prepares the batch
    total = timed(lambda: [det.detect(frames[i:i + 4]) for i in range(0, 16, 4)], dev) / 16
    lbt = timed(lambda: [det._letterbox(frames[i:i + 4]) for i in range(0, 16, 4)], dev) / 16
    x, _ = det._letterbox(frames[:4])
    with torch.inference_mode():
        fwd = timed(lambda: det._forward(x), dev) / 4
    print(f"letterbox {name}: detect {total:.2f} ms/frame, letterbox {lbt:.2f}, forward {fwd:.2f} (batch 4)", flush=True)
    found[name] = det.detect(frames[:4])
a, b = found["device"], found["cpu"]
print("dets device vs cpu letterbox:", [len(x) for x in a], [len(x) for x in b],
      max((float(np.abs(p.box - q.box).max()) for x, y in zip(a, b) for p, q in zip(x, y)), default=0))
