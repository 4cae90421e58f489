"""``enhance-video``: find, track and super-resolve every license plate in a video.

Writes, into one output folder per input: annotated.mp4 (boxes, track ids, enhanced inset beside
each plate), tracks.jsonl (one line per track per frame), report.json (one entry per track) and
crops/ (per track: the best crop as input | bicubic | enhanced, and the enhanced crop alone).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

DEMO_CLIP = Path(__file__).parent / "assets" / "demo.mp4"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="enhance-video", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 done, 1 unexpected failure, 2 bad input/output/weights, 130 interrupted.",
    )
    p.add_argument("input", nargs="?", default=None,
                   help=f"video file to enhance (default: the bundled demo clip {DEMO_CLIP.name})")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="output folder (default: ./enhanced/<input name>)")
    g = p.add_argument_group("models")
    g.add_argument("--detector", type=Path, default=None, help="detector weights (.safetensors from train.detector)")
    g.add_argument("--generator", type=Path, default=None, help="generator weights (.safetensors from train.generator)")
    g.add_argument("--no-sr", action="store_true", help="track only, no super-resolution (insets show nothing)")
    g = p.add_argument_group("detection and tracking")
    g.add_argument("--imgsz", type=int, default=640, help="detector input size, px of the long side (default 640)")
    g.add_argument("--conf", type=float, default=0.1,
                   help="minimum detection score (default 0.1); scores under 0.5 only extend existing tracks")
    g.add_argument("--detect-every", type=int, default=1, metavar="N",
                   help="run the detector on every N-th frame; the tracker predicts in between (default 1)")
    g.add_argument("--margin", type=float, default=0.15, help="crop margin, fraction of the plate box (default 0.15)")
    g = p.add_argument_group("output video")
    g.add_argument("--crf", type=int, default=23, help="x264 quality, lower is better (default 23)")
    g.add_argument("--preset", default="veryfast", help="x264 speed preset (default veryfast)")
    g = p.add_argument_group("runtime")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for the models (default: all cores)")
    g.add_argument("--hwaccel", default=None, metavar="TYPE",
                   help="try hardware decoding (cuda, vaapi, ...); falls back to software when unavailable")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return p


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.detect_every < 1:
        parser.error("--detect-every must be >= 1")
    if not 0 < args.conf < 1:
        parser.error("--conf must be between 0 and 1")
    if args.imgsz < 32 or args.imgsz % 32:
        parser.error("--imgsz must be a positive multiple of 32")
    if not 0 <= args.margin <= 2:
        parser.error("--margin must be between 0 and 2")


def run(args: argparse.Namespace) -> int:
    # Heavy imports here, so --help and argument errors answer at once.
    import torch

    from sr_model.enhancer import PlateEnhancer
    from stream.errors import OutputError
    from stream.pipeline import VIDEO_NAME, EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import DetectorConfig, PlateDetector

    if args.threads:
        torch.set_num_threads(args.threads)
    src_path = Path(args.input) if args.input else DEMO_CLIP
    out_dir = args.out or Path("enhanced") / src_path.stem
    if (out_dir / VIDEO_NAME).resolve() == src_path.resolve():
        raise OutputError(f"output {out_dir / VIDEO_NAME} would overwrite the input")
    source = VideoSource(src_path, hwaccel=args.hwaccel)
    detector = PlateDetector(args.detector, DetectorConfig(imgsz=args.imgsz, conf=args.conf))
    enhancer = None if args.no_sr else PlateEnhancer(args.generator)
    pipeline = EnhancePipeline(detector, enhancer, PipelineConfig(
        detect_every=args.detect_every, margin=args.margin, enhance=not args.no_sr, crf=args.crf, preset=args.preset))
    with source:
        result = pipeline.run(source, out_dir, progress=not args.quiet, label=src_path.name)
    print(f"{result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} fps), {len(result.tracks)} plate tracks")
    print(f"outputs in {out_dir}/: {VIDEO_NAME}, tracks.jsonl, report.json, crops/")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(args, parser)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="enhance-video: %(levelname)s: %(message)s")
    from sr_model.weights import WeightsError
    from stream.errors import InputError, OutputError
    from tracker.detector import DetectorWeightsError

    try:
        return run(args)
    except (InputError, OutputError, WeightsError, DetectorWeightsError) as exc:
        print(f"enhance-video: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("enhance-video: interrupted; outputs written so far are kept", file=sys.stderr)
        return 130
    except Exception as exc:  # the promise is one line, never a traceback, unless asked for
        if args.debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"enhance-video: error: {type(exc).__name__}: {first} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
