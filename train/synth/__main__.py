"""Command line: ``python -m train.synth {clip,detset,plates} OUT_DIR ...``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from .plates import STYLES, render_plate
from .scenes import SceneConfig, write_detection_dataset, write_scene_clip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.synth", description="Synthetic licence-plate data.")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("clip", help="write OUT_DIR/clip.mp4 (H.264) with gt.txt (MOTChallenge) and gt.json")
    c.add_argument("out_dir", type=Path)
    c.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    c.add_argument("--width", type=int, default=1280, help="frame width px, even (default 1280)")
    c.add_argument("--height", type=int, default=720, help="frame height px, even (default 720)")
    c.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    c.add_argument("--seconds", type=float, default=3.0, help="clip length in s (default 3)")
    c.add_argument("--plates", type=int, default=3, help="number of vehicles / plates (default 3)")
    c.add_argument("--plate-width", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
                   help="plate width range in px (default 60 180 scaled by width/1280)")
    c.add_argument("--styles", nargs="+", choices=STYLES, default=list(STYLES), help="plate styles")

    d = sub.add_parser("detset", help="write a YOLO plate-detection dataset (images/, labels/, data.yaml)")
    d.add_argument("out_dir", type=Path)
    d.add_argument("--images", type=int, required=True, help="number of images")
    d.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    d.add_argument("--imgsz", type=int, default=640, help="long image side px (default 640)")
    d.add_argument("--val-fraction", type=float, default=0.15, help="fraction for the val split (default 0.15)")

    s = sub.add_parser("plates", help="write sample plate PNGs named INDEX_STYLE_TEXT.png")
    s.add_argument("out_dir", type=Path)
    s.add_argument("--n", type=int, default=16, help="number of plates (default 16)")
    s.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    s.add_argument("--height", type=int, default=64, help="plate height px (default 64)")
    s.add_argument("--style", choices=STYLES, default=None, help="plate style (default: random)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "clip":
        k = args.width / 1280.0
        pw = tuple(args.plate_width) if args.plate_width else (60.0 * k, 180.0 * k)
        cfg = SceneConfig(width=args.width, height=args.height, fps=args.fps, seconds=args.seconds,
                          n_plates=args.plates, plate_width_px=pw, styles=tuple(args.styles))
        t0 = time.perf_counter()
        ct = write_scene_clip(args.out_dir, cfg, args.seed)
        print(f"wrote {ct.video_path} ({ct.n_frames} frames, {ct.size[0]}x{ct.size[1]}, {ct.fps:g} fps) "
              f"in {time.perf_counter() - t0:.1f} s; plates: "
              + ", ".join(f"{i}={t}" for i, (t, _) in sorted(ct.plates.items())))
    elif args.cmd == "detset":
        yaml = write_detection_dataset(args.out_dir, args.images, args.seed, args.imgsz, args.val_fraction)
        print(f"wrote {yaml}")
    else:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        for i in range(args.n):
            p = render_plate(rng, args.style, height=args.height)
            # Non-ASCII (Chinese) names are fine on Linux; imencode avoids cv2.imwrite path issues.
            ok, buf = cv2.imencode(".png", p.image)
            (args.out_dir / f"{i:04d}_{p.style}_{p.text}.png").write_bytes(buf.tobytes())
        print(f"wrote {args.n} plates to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
