"""Run detector + tracker once over the clip, cut crops exactly as stream.pipeline does, save per-track sequences."""
import pickle, sys, json
from dataclasses import replace
import numpy as np, torch, av
torch.set_num_threads(1)
from stream.source import VideoSource, Frame
from stream.crops import expand_box, rectified, cut
from stream.pipeline import PipelineConfig
from tracker.detector import PlateDetector, DetectorConfig
from tracker.sort import PlateTracker, TrackerConfig

clip = sys.argv[1]; out = sys.argv[2]
cfg = PipelineConfig()
det = PlateDetector(None, DetectorConfig(imgsz=640, conf=0.1, device="cpu"))
src = VideoSource(clip)
tracker = None
tracks_out = {}
chunk = []
def flush():
    global tracker
    found = dict(zip((f.index for f in chunk), det.detect([f.image for f in chunk])))
    for frame in chunk:
        if tracker is None:
            w, h = frame.size
            tracker = PlateTracker(replace(TrackerConfig(), frame_wh=(w, h)))
        w, h = frame.size
        for tr in tracker.update(found.get(frame.index), frame.pts_s):
            box = expand_box(tr.box, cfg.margin, w, h)
            pix = None
            rect = False
            if cfg.rectify and tr.corners is not None:
                pix = rectified(frame.image, tr.corners, box, cfg.rectify_margin); rect = pix is not None
            if pix is None:
                pix = cut(frame.image, box)
            if pix is None: continue
            tracks_out.setdefault(tr.track_id, []).append(dict(frame=frame.index, t=frame.pts_s, detected=bool(tr.detected),
                                   rect=rect, box=np.asarray(tr.box).tolist(), crop=pix))
    chunk.clear()
n = 0
for item in src:
    if not isinstance(item, Frame): continue
    chunk.append(item); n += 1
    if len(chunk) == cfg.detect_batch: flush()
    if n % 500 == 0: print(n, len(tracks_out), flush=True)
if chunk: flush()
pickle.dump(tracks_out, open(out, "wb"))
print("frames", n, "tracks", len(tracks_out))
