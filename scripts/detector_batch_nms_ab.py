"""GPU A/B: where the detector's post-processing runs (NMS on the GPU vs the raw output moved to the
CPU first) and the forward batch (4 vs 16), 16 1080p frames; medians of 5 after a warm-up; each
variant's detections against those of batch 4 with NMS on the device. Run on a lent GPU:

    python3 scripts/detector_batch_nms_ab.py [cuda|cpu]   # results/throughput_streams_gpu/batch_nms_ab.txt
"""
import sys
from dataclasses import replace

import numpy as np
import torch

from gpu_ab_setup import detector_and_frames, timed

dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
det, frames = detector_and_frames(dev)
det._batch_pixels = 32 * 1280 * 736  # batches of 16 1080p frames also on a CPU dry run
gpu_forward = det._forward


def cpu_post_forward(x):
    return gpu_forward(x).cpu()


ref = det.detect(frames)
for rnd in range(2):
    for nms_where, fwd in (("device", gpu_forward), ("cpu", cpu_post_forward)):
        for batch in (4, 16):
            det._forward = fwd
            det.config = replace(det.config, batch_size=batch)
            ms = timed(lambda: det.detect(frames), dev) / 16
            out = det.detect(frames)
            counts = all(len(a) == len(b) for a, b in zip(out, ref))
            moved = max((float(np.abs(p.box - q.box).max()) for a, b in zip(out, ref) for p, q in zip(a, b)), default=0.0)
            print(f"round {rnd} NMS on {nms_where:6s} batch {batch:2d}: detect {ms:.2f} ms/frame, same counts {counts}, "
                  f"boxes moved up to {moved:.3f} px", flush=True)
det._forward = gpu_forward
from ultralytics.utils.nms import non_max_suppression  # noqa: E402

x, _ = det._letterbox(frames[:4])
with torch.inference_mode():
    p = det._forward(x)
    g = timed(lambda: [d.cpu() for d in non_max_suppression(p, 0.02, 0.5, max_det=300, nc=1)], dev) / 4
    c = timed(lambda: non_max_suppression(p.cpu(), 0.02, 0.5, max_det=300, nc=1), dev) / 4
print(f"NMS alone per frame (batch of 4): on the device {g:.2f} ms, moved to the CPU first {c:.2f} ms", flush=True)
