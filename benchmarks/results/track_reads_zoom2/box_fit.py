"""Box fit of matched detections on the US hold-out photos shrunk into 1080p frames (non-EU data):
predicted / true box width and height, IoU, refined-corner width; default input vs --zoom 2.

    YOLO_OFFLINE=1 PYTHONPATH=. python benchmarks/results/track_reads_zoom2/box_fit.py

2026-11-28, weights of that day (OpenVINO bf16, one thread):
default (imgsz auto=960): n=64 width ratio median 1.045 mean 1.077; height ratio 1.007; IoU median 0.735
zoom 2: n=127 width ratio median 0.996 mean 1.016; height ratio 1.009; IoU median 0.857
zoom 2, no coarse pass: n=124 width ratio median 1.002 mean 1.019; height ratio 1.022; IoU median 0.855
imgsz 1920 (frame own size), no coarse pass: n=114 width ratio median 1.005 mean 1.038; height ratio 0.983; IoU 0.818
(corner width / true box width, median: 1.030 / 1.035 / 1.031 / 1.038)
"""
import numpy as np
from tracker.detector import PlateDetector, DetectorConfig
from train.detector import shrunk_photo_mosaics, openalpr_split
from train.sr_data import DEFAULT_DATA
from benchmarks.detection import match, box_iou
us = DEFAULT_DATA / 'openalpr' / 'us'
_, hold = openalpr_split(us)
frames, gts = shrunk_photo_mosaics(us, hold)
def stats(cfg, name):
    det = PlateDetector(config=cfg)
    preds = det.detect(frames)
    wr, hr, ious, cw = [], [], [], []
    for p, g in zip(preds, gts):
        p = [d for d in p if d.score >= 0.25]
        if not p or not len(g): continue
        pb = np.stack([d.box for d in p]); ps = np.array([d.score for d in p])
        tp, m = match(pb, ps, g)
        for i in np.where(tp)[0]:
            b, t = pb[i], g[m[i]]
            wr.append((b[2]-b[0])/(t[2]-t[0])); hr.append((b[3]-b[1])/(t[3]-t[1]))
            ious.append(box_iou(b[None], t[None])[0, 0])
            if p[i].corners is not None:
                c = p[i].corners; cw.append((np.linalg.norm(c[1]-c[0]) + np.linalg.norm(c[2]-c[3]))/2/(t[2]-t[0]))
    print(f"{name}: n={len(wr)} width ratio median {np.median(wr):.3f} mean {np.mean(wr):.3f}; "
          f"height ratio {np.median(hr):.3f}; IoU median {np.median(ious):.3f}; "
          f"corner width/gt box width median {np.median(cw):.3f}", flush=True)
stats(DetectorConfig(), 'default (imgsz auto=960)')
stats(DetectorConfig(zoom=2.0), 'zoom 2')
stats(DetectorConfig(zoom=2.0, coarse_pass='off'), 'zoom 2, no coarse pass')
stats(DetectorConfig(imgsz=1920, coarse_pass='off'), 'imgsz 1920 (frame own size), no coarse pass')
