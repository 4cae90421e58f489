"""Single reads of the pipeline's real footage crops: bicubic x4, the generator, blends of the two,
and the generator on crops first enlarged (bicubic) to the plate height it was trained on.

Crops: ``benchmarks/results/fusion/real_crops/extract_crops.py CLIP /tmp/fusion_work/tracks.pkl``
(CLIP = benchmarks.track_reads' clip); reads at the pipeline's SR schedule (first crop, then
detected frames >= 0.2 s apart), judged by rapidocr (stream.reads.PlateReader), voted per plate.

    python benchmarks/results/generator_footage_trial/blend_eval.py [/tmp/fusion_work/tracks.pkl]
"""
import collections
import json
import pickle
import sys

import cv2
import numpy as np
import torch

from benchmarks.ocr import char_accuracy, exact_match
from sr_model.enhancer import PlateEnhancer, bicubic_upscale
from stream.reads import PlateReader, vote_reads

torch.set_num_threads(2)
tracks = pickle.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fusion_work/tracks.pkl", "rb"))
segs = json.load(open("benchmarks/results/track_reads/track_reads.json"))["plates"]
events = []  # (plate segment, track id, crop index): the pipeline's read schedule
for si, seg in enumerate(segs):
    best, overlap = None, 0
    for tid, items in tracks.items():
        frames = [it["frame"] for it in items]
        o = min(max(frames), seg["last_frame"]) - max(min(frames), seg["first_frame"]) + 1
        if o > overlap:
            best, overlap = tid, o
    if best is None:
        continue
    last = None
    for j, it in enumerate(tracks[best]):
        if last is None or (it["detected"] and it["t"] - last >= 0.2 - 1e-9):
            events.append((si, best, j))
            last = it["t"]
print("reads", len(events), flush=True)
reader = PlateReader(threads=2)
crops = [tracks[tid][j]["crop"] for _, tid, j in events]
enhancer = PlateEnhancer()
sr = enhancer.enhance(crops)


def at_sr_size(images):
    return [cv2.resize(o, (s.shape[1], s.shape[0]), interpolation=cv2.INTER_AREA if o.shape[0] > s.shape[0]
                       else cv2.INTER_CUBIC) for o, s in zip(images, sr)]


def score(name, images):
    reads = reader.read(images)
    ok = [exact_match(r.text, segs[si]["text"]) for r, (si, _, _) in zip(reads, events)]
    chars = [char_accuracy(r.text, segs[si]["text"]) for r, (si, _, _) in zip(reads, events)]
    by_plate = collections.defaultdict(list)
    for r, (si, _, _) in zip(reads, events):
        by_plate[si].append(r)
    voted = sum(bool(v) and exact_match(v.text, segs[si]["text"]) for si, rs in by_plate.items()
                for v in [vote_reads(rs)])
    print(json.dumps(dict(name=name, reads=len(ok), exact=int(sum(ok)), pct=round(100 * np.mean(ok), 2),
                          char=round(float(np.mean(chars)), 4), voted=int(voted))), flush=True)


bicubic = [bicubic_upscale(c, 4) for c in crops]
score("bicubic x4", bicubic)
score("generator", sr)
for a in (0.25, 0.5, 0.75):
    score(f"blend {a} generator + {1 - a} bicubic", [cv2.addWeighted(s, a, b, 1 - a, 0) for s, b in zip(sr, at_sr_size(bicubic))])
for height in (12, 15, 20):
    pre = [cv2.resize(c, (max(1, round(c.shape[1] * height / c.shape[0])), height), interpolation=cv2.INTER_CUBIC)
           if c.shape[0] < height else c for c in crops]
    score(f"crops enlarged to {height} px high, then the generator", at_sr_size(enhancer.enhance(pre)))
