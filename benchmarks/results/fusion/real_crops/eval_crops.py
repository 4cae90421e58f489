"""Score single-frame SR vs fused (K) per read on the pipeline's real crop sequences (tracks.pkl from
extract_crops.py: `python extract_crops.py CLIP /tmp/fusion_work/tracks.pkl`, CLIP = benchmarks.track_reads' clip).
Each read is at a frame the pipeline's SR schedule picks (first crop, then detected frames >= 0.2 s apart),
fused only where the track has K crops (else the single-frame generator, as the pipeline); judge: rapidocr.

python eval_crops.py [--single] VARIANT [VARIANT ...]  where a variant is name=key:val;key:val  keys:
  w (weights path), motion (translation|affine), ident (1: identity alignment), detonly (1: drop coasting crops),
  k, minecc, up (ECC upsample), stride (fuse every stride-th of the track's recent crops)
"""
import pickle, sys, json, time, collections, argparse
import numpy as np, torch, cv2
torch.set_num_threads(1)
import sr_model.fusion as fusmod
import sr_model.align as almod
from sr_model.fusion import FusionEnhancer, FusionConfig
from sr_model.enhancer import PlateEnhancer
from stream.reads import PlateReader, vote_reads, normalise_plate
from benchmarks.ocr import exact_match, char_accuracy

p = argparse.ArgumentParser()
p.add_argument("variants", nargs="*")
p.add_argument("--tracks", default="/tmp/fusion_work/tracks.pkl")
p.add_argument("--single", action="store_true")
p.add_argument("--limit", type=int, default=None)
p.add_argument("--save", default=None)
args = p.parse_args()
tracks = pickle.load(open(args.tracks, "rb"))
segs = json.load(open("/work/main/benchmarks/results/track_reads/track_reads.json"))["plates"][: args.limit]

# the pipeline's SR schedule: due when first crop of a track, or detected and >= 0.2 s since last
events = []  # (seg index, track id, index in track list)
for si, seg in enumerate(segs):
    best, ov = None, 0
    for tid, items in tracks.items():
        fr = [it["frame"] for it in items]
        o = min(max(fr), seg["last_frame"]) - max(min(fr), seg["first_frame"]) + 1
        if o > ov: best, ov = tid, o
    if best is None: continue
    last = None
    for j, it in enumerate(tracks[best]):
        if last is None or (it["detected"] and it["t"] - last >= 0.2 - 1e-9):
            events.append((si, best, j)); last = it["t"]
print("segments", len(segs), "events (reads)", len(events), flush=True)
reader = PlateReader(threads=1)

def score(name, images):
    reads = reader.read(images)
    ok = [exact_match(r.text, segs[si]["text"]) for r, (si, _, _) in zip(reads, events)]
    ca = [char_accuracy(r.text, segs[si]["text"]) for r, (si, _, _) in zip(reads, events)]
    by = collections.defaultdict(list)
    for r, (si, _, _) in zip(reads, events): by[si].append(r)
    voted = sum(bool(v) and exact_match(v.text, segs[si]["text"]) for si, rs in by.items() for v in [vote_reads(rs)])
    res = dict(name=name, reads=len(ok), exact=int(sum(ok)), pct=round(100 * np.mean(ok), 2), char=round(float(np.mean(ca)), 4),
               voted=int(voted), segs=len(segs))
    print(json.dumps(res), flush=True)
    return res, [r.text for r in reads]

results = []
if args.single:
    enh = PlateEnhancer()
    t = time.time()
    imgs = enh.enhance([tracks[tid][j]["crop"] for _, tid, j in events])
    r, texts = score("single", imgs); r["s"] = round(time.time() - t, 1); results.append(r)

orig_align = almod.align_sequence
for v in args.variants:
    name, _, spec = v.partition("=")
    o = dict(kv.split(":", 1) for kv in spec.split(";") if kv)
    k = int(o.get("k", 5))
    enh = FusionEnhancer(o.get("w"), FusionConfig(k=k, min_ecc=float(o.get("minecc", almod.DEFAULT_MIN_ECC))))
    if "motion" in o: enh.motion = o["motion"]
    if "up" in o: enh.upsample = int(o["up"])
    if o.get("ident") == "1":
        def ident(crops, motion="translation", upsample=2, min_ecc=0.6):
            ref = crops[-1]; h, w = ref.shape[:2]
            fr = [almod.resize_to(c, (w, h)).astype(np.float32) / 255 for c in crops]
            return almod.AlignedSequence(fr, np.ones(len(crops), bool), [almod.Alignment(almod._identity(), 1.0, True)] * len(crops))
        fusmod.align_sequence = ident
    else:
        fusmod.align_sequence = orig_align
    t = time.time()
    seqs = []
    for si, tid, j in events:
        items = tracks[tid][: j + 1]
        if o.get("detonly") == "1":
            items = [it for it in items[:-1] if it["detected"]] + [items[-1]]
        stride = int(o.get("stride", 1))  # every stride-th crop, the newest last
        seqs.append([it["crop"] for it in items[::-1][: (k - 1) * stride + 1: stride][::-1]])
    # the pipeline fuses only when the ring holds k crops; else single-frame SR. Here: the model with fewer frames
    # when fewer exist (pipeline: single-frame generator) -> emulate pipeline: fuse only if len == k (full ring)
    full = [len(tracks[tid][: j + 1]) >= (k - 1) * int(o.get("stride", 1)) + 1 for _, tid, j in events]
    imgs = [None] * len(events)
    out = enh.enhance([s for s, f in zip(seqs, full) if f])
    it = iter(out)
    single = None
    for i, f in enumerate(full):
        if f: imgs[i] = next(it).image
    if not all(full):
        pe = PlateEnhancer()
        idx = [i for i, f in enumerate(full) if not f]
        for i, im in zip(idx, pe.enhance([seqs[i][-1] for i in idx])): imgs[i] = im
    used = [p.frames_used for p in out]
    r, texts = score(name, imgs); r["s"] = round(time.time() - t, 1); r["mean_used"] = round(float(np.mean(used)), 2)
    print(json.dumps(r), flush=True); results.append(r)
    if args.save:
        pickle.dump(imgs, open(f"{args.save}_{name}.pkl", "wb"))
fusmod.align_sequence = orig_align
