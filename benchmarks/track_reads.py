"""Per-track plate reads on footage of real plates: the whole product, single-frame vs fused vs no SR.

    python -m benchmarks.track_reads --out benchmarks/results/track_reads

``../shared/data`` holds photos, not videos, so the footage is made from them: each openalpr
``eu`` photo (evaluation only: never trained on) becomes a 3-second segment of a 640x360, 15 fps
clip in which a camera slowly zooms in on the car (the plate grows from ~30 to ~60 px wide, 7-13
px tall: the sizes where plates stop being legible) and shakes by sub-pixel amounts, with sensor
noise and H.264 compression (CRF 30), followed by 2 s of plain grey so that no track carries
over to the next photo. The plates and everything around them are real; the camera motion is
synthetic. The clip then goes through ``enhance-video`` three times: single-frame SR (default)
and ``--fuse``, both with ``--read-from both`` (each due plate's enhanced image and its bicubic
x4 upscale read, so the reads of each image can be counted apart), and ``--no-sr`` (reads of the
bicubic x4 crops alone: the baseline that says what super-resolution adds, and what the CLI's
default ``--read-from auto`` reads). For each photo, the track with the most frames inside
its segment is its track (one annotated plate per photo); its voted read (report.json) is
compared with the annotated text. Writes
track_reads.json, track_reads.md (every plate: truth, each run's read, confidence, evidence crop) and
each read's evidence image (the plate image the voted text was best read from, JPEG) under
``evidence/``; the clip and the runs' full outputs stay in ``--work``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

SIZE = (640, 360)
FPS = 15
SECONDS = 3.0
GAP_SECONDS = 2.0  # plain frames between plates, so no track carries over from one photo to the next
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def render_segment(photo: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator,
                   n_frames: int, width_px: tuple[float, float] = (30.0, 60.0),
                   plate_boxes: list | None = None) -> list[np.ndarray]:
    """Frames of a camera zooming in on ``box`` (x, y, w, h photo px) of ``photo``: the plate's
    width goes from ``width_px[0]`` to ``width_px[1]`` output px, the plate centre drifts from a
    random point of the frame towards the middle, plus sub-pixel shake; out-of-photo areas repeat
    the photo's border. plate_boxes: if given, gets the plate's (4,) x1 y1 x2 y2 box in frame px
    (clipped to the frame) of every frame appended."""
    import cv2

    W, H = SIZE
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    start = np.array([rng.uniform(0.3, 0.7) * W, rng.uniform(0.35, 0.65) * H])
    end = np.array([W / 2, H / 2]) + rng.uniform(-20, 20, 2)
    frames = []
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        s = (width_px[0] + (width_px[1] - width_px[0]) * t) / w  # output px per photo px
        centre = start + (end - start) * t + rng.normal(0, 0.35, 2)
        src = photo
        if s < 0.5:  # low-pass before shrinking, as a camera's optics would
            src = cv2.GaussianBlur(photo, (0, 0), 0.5 / s * 0.6)
        M = np.array([[s, 0, centre[0] - s * cx], [0, s, centre[1] - s * cy]], np.float32)
        if plate_boxes is not None:
            x1, y1 = M[:, :2] @ (x, y) + M[:, 2]
            plate_boxes.append(np.clip([x1, y1, x1 + s * w, y1 + s * h], 0, [W, H, W, H]).astype(np.float32))
        frame = cv2.warpAffine(src, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        noise = rng.normal(0, 3.0, frame.shape).astype(np.float32)
        frames.append(np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8))
    return frames


def clip_segments(data: Path, limit: int | None = None) -> list[dict]:
    """One record per usable ``eu`` photo (one plate, readable image), in clip order: photo, text
    and the segment's first / last frame in the clip that :func:`write_clip` renders."""
    import cv2

    from benchmarks.plate_sets import parse_annotation

    n = int(round(FPS * SECONDS))
    gap = int(round(FPS * GAP_SECONDS))
    segments, frame_index = [], 0
    for txt in sorted((data / "openalpr" / "eu").glob("*.txt"))[:limit]:
        boxes, _ = parse_annotation(txt.read_text(errors="replace"))
        if len(boxes) != 1 or cv2.imread(str(txt.with_suffix(".jpg"))) is None:
            continue
        segments.append({"photo": txt.stem, "text": boxes[0].text, "first_frame": frame_index,
                         "last_frame": frame_index + n - 1})
        frame_index += n + gap
    return segments


def write_clip(data: Path, out: Path, limit: int | None = None, seed: int = 0,
               plate_boxes: dict[int, np.ndarray] | None = None) -> list[dict]:
    """Render the clip of every annotated ``eu`` photo; returns one segment record per photo.
    plate_boxes: if given, gets each segment frame's plate box (x1 y1 x2 y2 frame px) by frame index."""
    import av
    import cv2

    from benchmarks.plate_sets import parse_annotation

    rng = np.random.default_rng(seed)
    segments = clip_segments(data, limit)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "30", "preset": "medium"}
        for seg in segments:
            txt = data / "openalpr" / "eu" / f"{seg['photo']}.txt"
            b = parse_annotation(txt.read_text(errors="replace"))[0][0]
            photo = cv2.imread(str(txt.with_suffix(".jpg")))
            boxes: list = []
            frames = render_segment(photo, (b.x, b.y, b.width, b.height), rng,
                                    seg["last_frame"] - seg["first_frame"] + 1, plate_boxes=boxes)
            if plate_boxes is not None:
                plate_boxes.update({seg["first_frame"] + i: bx for i, bx in enumerate(boxes)})
            gap = [np.full_like(frames[0], 96)] * int(round(FPS * GAP_SECONDS))
            for f in frames + gap:
                vf = av.VideoFrame.from_ndarray(f, format="bgr24")
                for packet in stream.encode(vf):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return segments


def run_cli(clip: Path, out_dir: Path, extra: list[str]) -> dict:
    subprocess.run([sys.executable, "-m", "stream.cli", str(clip), "-o", str(out_dir), "-q", *extra], check=True)
    return json.loads((out_dir / "report.json").read_text())


def per_read(segments: list[dict], report: dict, tracks_jsonl: Path) -> dict:
    """Every OCR read (``tracks.jsonl``) of each segment's track (:func:`assign`), scored one by
    one: {"reads", "exact", "by_source": {image kind: {"reads", "exact", "voted_exact"}}}, where
    ``voted_exact`` counts the segments whose track's reads *of that image kind alone*, voted
    (:func:`stream.reads.vote_reads`), give the plate exactly: what each image would read alone."""
    from benchmarks.ocr import exact_match
    from stream.reads import Read, vote_reads

    reads: dict[int, list[tuple[str, float, str]]] = {}
    with open(tracks_jsonl) as f:
        for line in f:
            r = json.loads(line)
            for rd in r.get("reads", []):
                reads.setdefault(r["track_id"], []).append((rd["text"], rd.get("confidence", 0.0), rd["from"]))
    n = ok = 0
    by_source: dict[str, dict[str, int]] = {}
    for seg, track in zip(segments, assign(segments, report)):
        mine = reads.get(track["track_id"], []) if track is not None else []
        for text, _, source in mine:
            n += 1
            hit = exact_match(text, seg["text"])
            ok += hit
            b = by_source.setdefault(source, {"reads": 0, "exact": 0, "voted_exact": 0})
            b["reads"] += 1
            b["exact"] += hit
        for source in {src for *_, src in mine}:
            voted = vote_reads([Read(t, c) for t, c, src in mine if src == source])
            by_source[source]["voted_exact"] += bool(voted) and exact_match(voted.text, seg["text"])
    return {"reads": n, "exact": ok, "by_source": by_source}


def assign(segments: list[dict], report: dict) -> list[dict | None]:
    """Each segment's track: the one with the most frames inside the segment (None if none)."""
    out = []
    for seg in segments:
        best, overlap = None, 0
        for tr in report["tracks"]:
            o = min(tr["last_frame"], seg["last_frame"]) - max(tr["first_frame"], seg["first_frame"]) + 1
            if o > overlap:
                best, overlap = tr, o
        out.append(best)
    return out


def main(argv: list[str] | None = None) -> None:
    from benchmarks.ocr import exact_match

    p = argparse.ArgumentParser(prog="python -m benchmarks.track_reads", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--limit", type=int, default=None, help="first N photos only")
    p.add_argument("--work", type=Path, default=None, help="clip and run outputs (default: a temp dir)")
    p.add_argument("--runs", nargs="+", choices=("single-frame", "fused", "bicubic"),
                   default=["single-frame", "fused", "bicubic"],
                   help="runs to (re)do; the other's outputs are reused from --work when there")
    p.add_argument("--fusion-weights", type=Path, default=None, help="fusion weights for the fused run "
                   "(default: the shipped sr_model/weights/fusion_x4.safetensors)")
    p.add_argument("--reuse-clip", action="store_true", help="use --work's clip if there (it is deterministic)")
    p.add_argument("--generator", type=Path, default=None,
                   help="generator weights for the runs with SR (default: the shipped one)")
    p.add_argument("--cli-args", default="", metavar="ARGS",
                   help="more enhance-video options for every run, e.g. --cli-args=--coarse-pass")
    args = p.parse_args(argv)
    import tempfile

    import cv2

    work = args.work or Path(tempfile.mkdtemp(prefix="le-track-reads-"))
    if not (args.data / "openalpr" / "eu").is_dir():
        sys.exit(f"track_reads: error: {args.data / 'openalpr' / 'eu'} not found")
    args.out.mkdir(parents=True, exist_ok=True)
    clip = work / "eu_zoom_640x360.mp4"
    if args.reuse_clip and clip.is_file():
        segments = clip_segments(args.data, args.limit)
    else:
        segments = write_clip(args.data, clip, args.limit)
    fused = ["--fuse", "5"] + (["--fusion-weights", str(args.fusion_weights)] if args.fusion_weights else [])
    # bicubic (--no-sr): the same tracks, each read taken from the plain bicubic x4 crop on the same
    # throttle: what super-resolution adds to the reads, measured on the product's own path.
    gen = ["--generator", str(args.generator)] if args.generator else []
    more = shlex.split(args.cli_args)
    both = ["--read-from", "both"]  # both images read, each counted apart (the CLI default reads the bicubic one)
    runs = {"single-frame": ["--fuse", "0", *both, *gen, *more], "fused (--fuse 5)": fused + both + gen + more,
            "bicubic (--no-sr)": ["--no-sr", *more]}
    reports = {}
    for name, extra in runs.items():
        folder = work / name.split()[0]
        if name.split()[0] in args.runs or not (folder / "report.json").is_file():
            reports[name] = run_cli(clip, folder, extra)
        else:
            reports[name] = json.loads((folder / "report.json").read_text())
    rows = []
    for i, seg in enumerate(segments):
        row = dict(seg)
        for name, rep in reports.items():
            tr = assign([seg], rep)[0]
            evidence = ""
            if tr is not None and tr["read_crop"]:
                img = cv2.imread(str(work / name.split()[0] / tr["read_crop"]))
                if img is not None:
                    evidence = f"evidence/{name.split()[0]}/{seg['photo']}.jpg"
                    (args.out / evidence).parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(args.out / evidence), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
            row[name] = None if tr is None else {
                "track_id": tr["track_id"], "read": tr["read"], "confidence": tr["read_confidence"],
                "n_reads": tr["n_reads"], "support": tr["read_support"],
                "evidence": evidence,
                "exact": bool(tr["read"]) and exact_match(tr["read"], seg["text"])}
        rows.append(row)
    summary = {name: {"plates": len(rows),
                      "tracked": sum(r[name] is not None for r in rows),
                      "read": sum(bool(r[name] and r[name]["read"]) for r in rows),
                      "exact": sum(bool(r[name] and r[name]["exact"]) for r in rows),
                      **{f"{k}_per_read": v for k, v in per_read(segments, reports[name], work / name.split()[0] / "tracks.jsonl").items()},
                      "read_source": reports[name].get("reads", {}).get("source"),
                      "fusion": reports[name].get("fusion", {})} for name in runs}
    summary["fused (--fuse 5)"]["fusion_weights"] = str(args.fusion_weights or "sr_model/weights/fusion_x4.safetensors")
    (args.out / "track_reads.json").write_text(json.dumps({"summary": summary, "plates": rows}, indent=2,
                                                          ensure_ascii=False))
    lines = ["# Per-track reads on footage of real plates (openalpr eu photos, synthetic camera motion)", "",
             f"`python -m benchmarks.track_reads --out {args.out}"
             f"{' --generator ' + str(args.generator) if args.generator else ''}"
             f"{' --cli-args=' + shlex.quote(args.cli_args) if args.cli_args else ''}`: {len(rows)} plates, 640x360 @ {FPS} fps, "
             f"{SECONDS:.0f} s per plate, plate ~30 → 60 px wide, H.264 CRF 30.", "",
             "| run | plates | with a track | with a voted read | exact voted reads | exact reads (every read) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['plates']} | {s['tracked']} | {s['read']} | {s['exact']} "
                     f"({100 * s['exact'] / max(1, s['plates']):.1f} %) | {s['exact_per_read']} / {s['reads_per_read']} "
                     f"({100 * s['exact_per_read'] / max(1, s['reads_per_read']):.1f} %) |")
    lines += ["", "By image read (the SR runs read each plate's enhanced image and its bicubic x4 upscale, "
              "`--read-from both`; the CLI's default `--read-from auto` reads the bicubic one; `voted alone`: "
              "the track's reads of that image alone, voted):", "",
              "| run | image | exact reads (every read) | exact voted reads, that image alone |", "|---|---|---:|---:|"]
    for name, s in summary.items():
        for source, b in sorted(s["by_source_per_read"].items()):
            lines.append(f"| {name} | {source} | {b['exact']} / {b['reads']} ({100 * b['exact'] / max(1, b['reads']):.1f} %) "
                         f"| {b['voted_exact']} ({100 * b['voted_exact'] / max(1, s['plates']):.1f} %) |")
    lines += ["", "| photo | truth | " + " | ".join(f"{n}: read (confidence, agreeing/reads) | evidence" for n in runs) + " |",
              "|---|---|" + "---|---|" * len(runs)]
    for r in rows:
        cells = []
        for name in runs:
            t = r[name]
            if t is None:
                cells += ["no track", ""]
            else:
                mark = " ✓" if t["exact"] else ""
                cells += [f"{t['read'] or '—'}{mark} ({t['confidence']:.2f}, {t['support']}/{t['n_reads']})",
                          f"[img]({t['evidence']})" if t["evidence"] else ""]
        lines.append(f"| {r['photo']} | {r['text']} | " + " | ".join(cells) + " |")
    (args.out / "track_reads.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:10]))


if __name__ == "__main__":
    main()
