"""``enhance-video``: find, track and super-resolve every license plate in a video or a live
RTSP camera stream (``rtsp://user:pass@host:port/path``).

Writes, into one output folder per input: annotated.mp4 (boxes, track ids and plate reads,
enhanced inset beside each plate; fragmented MP4, playable even after a crash), tracks.jsonl (one
line per track per frame, flushed per line, with the OCR read where one happened), report.json
(one entry per track, with its voted plate text) and crops/ (per track: the best crop as input |
bicubic | enhanced, the enhanced crop alone, and the plate image its text was read from, written
as soon as they are chosen); --no-video leaves out annotated.mp4. With --fuse K, once a plate has been seen in K frames its
enhancement fuses its last K crops.
Live streams also get events.jsonl (connections, reconnections, frame-size changes) and a status
line on stderr. SIGINT / SIGTERM finish the files and exit 130 / 143.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from pathlib import Path

from stream.outputs import PRESET_TWEAKS, X264_PRESETS
from stream.redact import RedactingFilter, is_url, redact, safe_name
from stream.signals import Stopped, stop_on_signals

DEMO_CLIP = Path(__file__).parent / "assets" / "demo.mp4"
DEFAULT_FUSE_K = 5
MAX_FUSE_K = 32


class SetupError(Exception):
    """A feature asked for cannot run in this install (exit 2, one line)."""


def _imgsz(text: str) -> int | None:
    """--imgsz: "auto" (None) or a positive multiple of 32."""
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 32 or value % 32:
        raise argparse.ArgumentTypeError("must be 'auto' or a positive multiple of 32")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="enhance-video", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 done, 1 unexpected failure, 2 bad input/output/weights, "
               "130 interrupted (SIGINT), 143 terminated (SIGTERM).",
    )
    p.add_argument("input", nargs="*", default=[],
                   help=f"video files or rtsp:// URLs to enhance (default: the bundled demo clip {DEMO_CLIP.name}); "
                        "several inputs run at once, sharing one detector and one generator (see --workers)")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="output folder (default: ./enhanced/<input name>, or <host_port_path> for a URL); with "
                        "several inputs, the parent of one folder per input")
    g = p.add_argument_group("models")
    g.add_argument("--detector", type=Path, default=None, help="detector weights (.safetensors from train.detector)")
    g.add_argument("--corner-refiner", type=Path, default=None, metavar="PATH",
                   help="corner refiner weights (.safetensors from train.corners; default: the shipped one)")
    g.add_argument("--no-corner-refiner", action="store_true",
                   help="use the detector's own corners for rectification instead of re-finding them in the "
                        "full-resolution frame (saves ~1.5 ms per plate per detector frame on the CPU)")
    g.add_argument("--detector-backend", default="auto", choices=("auto", "torch", "onnx", "openvino"),
                   help="detector and corner refiner back end (default auto: OpenVINO on the CPU when installed, "
                        "then ONNX Runtime; torch on a GPU)")
    g.add_argument("--detector-precision", default="auto", choices=("auto", "f32", "bf16", "fp16"),
                   help="the detector's number format (default auto: on OpenVINO bf16 on CPUs with native bf16 "
                        "units, the same plates found, else f32; f32 on torch); fp16: torch on a CUDA GPU")
    g.add_argument("--generator", type=Path, default=None, help="generator weights (.safetensors from train.generator)")
    g.add_argument("--no-sr", action="store_true", help="track only, no super-resolution (insets show nothing)")
    g.add_argument("--backend", default="auto", choices=("auto", "eager", "compile", "onnx", "openvino", "tensorrt"),
                   help="generator inference back end (default auto: ONNX Runtime int8 on CPU (eager channels-last "
                        "for an fp32 request), TensorRT on an NVIDIA GPU when installed; openvino: fp32, or bf16 "
                        "on CPUs with native bf16 units)")
    g.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16", "int8"),
                   help="generator precision (default auto: int8 on the CPU through ONNX Runtime, 1.3-1.9x faster "
                        "than fp32 with the same plate reads; bf16 with openvino where the CPU has bf16 units; fp16 "
                        "with TensorRT; else fp32. fp16 needs a GPU). With --fuse, the fusion model's decoder runs "
                        "int8 for auto / int8 on the CPU, fp32 otherwise")
    g.add_argument("--device", default="cpu", help="torch device for the models: cpu, cuda, cuda:1 (default cpu)")
    g.add_argument("--sr-interval", type=float, default=0.2, metavar="S",
                   help="super-resolve each plate at most every S seconds; its inset shows the latest result "
                        "in between (default 0.2; 0 = every frame)")
    g.add_argument("--fuse", type=int, nargs="?", const=DEFAULT_FUSE_K, default=0, metavar="K",
                   help=f"multi-frame super-resolution: once a plate has K crops, fuse its last K (--fuse alone: "
                        f"K = {DEFAULT_FUSE_K}; default off: it costs about 2-3x the int8 single-frame generator per plate and reads about as well on "
                        "real footage: benchmarks/results/track_reads)")
    g.add_argument("--fusion-weights", type=Path, default=None, metavar="PATH",
                   help="fusion weights (.safetensors; default: the shipped sr_model/weights/fusion_x4.safetensors)")
    g.add_argument("--no-read", action="store_true",
                   help="no plate reads (OCR of each enhanced plate's bicubic x4 upscale, see --read-from, voted "
                        "per track; on by default)")
    g.add_argument("--reread-settled", type=float, default=1.0, metavar="S",
                   help="once a plate's reads agree (8 reads, 75 %% of them and the latest one reading the voted "
                        "text), read it again only every S seconds, or at once when it is seen 20 %% wider than in "
                        "any read so far (default 1.0; 0: read every enhanced crop, about 5 reads a second per "
                        "plate)")
    g.add_argument("--read-from", choices=("auto", "both", "enhanced", "bicubic"), default="auto",
                   help="which image of each plate the OCR reads: both (the enhanced plate and its bicubic x4 "
                        "upscale, one vote over all, for twice the OCR work), enhanced, or bicubic; default auto: "
                        "bicubic (on footage of real plates it reads as many plates exactly as both, and more "
                        "than the enhanced image alone: benchmarks/results/track_reads)")
    g = p.add_argument_group("detection and tracking")
    g.add_argument("--imgsz", type=_imgsz, default=None, metavar="N|auto",
                   help="detector input size, px of the long side (default auto: half the frame's long side "
                        "within 640-1280, so 640 for 720p, 960 for 1080p, 1280 for 4K)")
    g.add_argument("--zoom", type=float, default=None, metavar="F",
                   help="enlarge each frame (or --roi region) F times at the detector's input instead of --imgsz: "
                        "finds plates under 40 px wide, for many times the detector's time. Real plates 16-40 px wide "
                        "in 1080p frames: recall 0.31 (US) / 0.11 (EU) by default, 0.94 / 0.91 with --zoom 2, at "
                        "about 330-410 instead of 25 ms per 1080p frame on 2 cores (55 instead of 21 at 360p); pair it "
                        "with --roi or --detect-every. Plates 30 px and wider do not need it (it read no more of them "
                        "in benchmarks/results/track_reads_zoom2)")
    g.add_argument("--conf", type=float, default=0.1,
                   help="minimum detection score (default 0.1); scores under 0.5 only extend existing tracks")
    g.add_argument("--roi", type=_roi, default=None, metavar="X,Y,W,H",
                   help="search for plates only in this region of the frame (pixels: left, top, width, height); "
                        "on a fixed camera a region around the road finds smaller plates at the same cost "
                        "(region drawn on the output video)")
    g.add_argument("--coarse-pass", dest="coarse_pass", action="store_const", const="on", default="auto",
                   help="also search every frame at half the detector's input size and merge: finds plates that "
                        "fill much of the view (close cameras, parking gates), which the main pass scores low, for "
                        "about 60%% more detector time on 720p. By default this second search runs on frames no "
                        "larger than the input size, where it is cheap, and on frames where the first search saw a "
                        "candidate at least 128 px wide at its input; not with --roi. Real photos, recall / AP50: "
                        "EU 1.000 / 0.977 without it, 1.000 / 0.992 by default, 1.000 / 0.994 with it; US hold-out "
                        "0.955 / 0.976, 0.977 / 0.983, 0.977 / 0.981")
    g.add_argument("--no-coarse-pass", dest="coarse_pass", action="store_const", const="off",
                   help="never run the second, half-size search (not even on small frames)")
    g.add_argument("--detect-every", type=int, default=1, metavar="N",
                   help="run the detector on every N-th frame; the tracker predicts in between (default 1)")
    g.add_argument("--skip-still", type=float, default=0.0, metavar="S",
                   help="fixed cameras watching mostly still scenes (car parks, gates): frames where nothing "
                        "moved since the detector's last frame skip it (the tracker carries parked cars), but it "
                        "runs at least every S seconds (default 0: off; 1 is a good start)")
    g.add_argument("--margin", type=float, default=0.15, help="crop margin, fraction of the plate box (default 0.15)")
    g.add_argument("--no-rectify", action="store_true",
                   help="cut plate boxes as they are (default: with the corner detector, warp each plate to "
                        "a frontal rectangle first)")
    g = p.add_argument_group("output video")
    g.add_argument("--no-video", action="store_true",
                   help="no annotated video: tracks, report and crops only (saves the encoder, the "
                        "largest CPU cost at 1080p)")
    g.add_argument("--video-height", type=int, default=None, metavar="PX",
                   help="annotated video at most PX px tall: taller frames are scaled down before the boxes and "
                        "insets are drawn (a 4K camera encoded at 1080p costs x264 about a quarter; tracks, "
                        "reports, crops and the insets' enhanced plates keep the input's resolution; default: "
                        "the input's size)")
    g.add_argument("--crf", type=int, default=23, help="x264 quality, lower is better (default 23)")
    g.add_argument("--preset", default="veryfast", choices=X264_PRESETS, metavar="PRESET",
                   help="x264 speed preset, ultrafast ... placebo (default veryfast)")
    g.add_argument("--x264-params", default=None, metavar="K=V:...",
                   help="x264 options over the preset (default with veryfast: " + PRESET_TWEAKS["veryfast"]
                        + ", about 1.5x faster at 1080p for a 10-15%% larger file; \"\" for the preset alone)")
    g = p.add_argument_group("runtime")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for the models (default: all cores)")
    g.add_argument("--detector-batch", type=int, default=4, metavar="N",
                   help="frames per detector forward pass (default 4). Several streams' frames are joined into one "
                        "call and run N at a time: on a GPU serving many streams larger passes may run faster "
                        "(benchmarks/results/throughput_streams_gpu)")
    g.add_argument("--workers", type=int, default=0, metavar="N",
                   help="run the inputs' pipelines (decode, tracking, drawing, encoding) in N worker processes, "
                        "the inputs dealt out in turn; the models stay in this process, one copy, every stream's "
                        "calls batched together. For many streams on a GPU, where one process's Python work, not "
                        "the models, is the limit (default 0: every input on a thread of this process)")
    g.add_argument("--hwaccel", default=None, metavar="TYPE",
                   help="try hardware decoding (cuda, vaapi, ...); falls back to software when unavailable")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("live streams (rtsp://)")
    g.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp", help="RTSP transport (default tcp)")
    g.add_argument("--open-timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the camera to answer when (re)connecting (default 10)")
    g.add_argument("--read-timeout", type=float, default=10.0, metavar="S",
                   help="seconds without data before the connection counts as lost (default 10)")
    g.add_argument("--max-reconnects", type=int, default=None, metavar="N",
                   help="give up after N failed reconnection attempts in a row (default: never; 0: no retries)")
    g.add_argument("--max-lag", type=float, default=1.0, metavar="S",
                   help="frames that waited more than S seconds for the pipeline are dropped (counted), so "
                        "lag stays bounded; smaller S: fresher output, more drops (default 1)")
    g.add_argument("--max-detect-every", type=int, default=4, metavar="N",
                   help="while frames wait longer than a quarter of --max-lag, run the detector on fewer frames, "
                        "step by step up to one in N (the tracker bridges the others), and back towards "
                        "--detect-every once the wait clears: a pipeline slower than the camera keeps its frames "
                        "instead of dropping them (1080p30 on 2 CPU cores: 269-293 of 749 frames dropped with 1, "
                        "none with 4, the same reads: benchmarks/results/live_interval; default 4; 1: fixed)")
    g.add_argument("--status-interval", type=float, default=10.0, metavar="S",
                   help="print a status line (fps, lag, drops, reconnects) every S seconds; 0: never (default 10)")
    g.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop cleanly after S seconds (default: run until stopped)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return p


def _roi(text: str) -> tuple[int, int, int, int]:
    """argparse type of --roi: ``X,Y,W,H`` in pixels, X and Y >= 0, W and H > 0."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y,W,H (four whole numbers of pixels)") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: X and Y must be >= 0, W and H > 0")
    return x, y, w, h


def _check_roi(args: argparse.Namespace, source) -> None:
    """--roi must overlap the input's frame: checked when the file opens, before the models load
    (the pipeline checks it again for callers that build one themselves)."""
    from stream.errors import InputError
    from tracker.types import clip_roi  # light: no torch

    width, height = source.info.width, source.info.height
    if args.roi is not None and clip_roi(args.roi, width, height) is None:
        x, y, w, h = args.roi
        raise InputError(f"--roi {x},{y},{w},{h} lies outside the {width}x{height} frame of {source.display_name}")


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.skip_still < 0:
        parser.error("--skip-still must be >= 0 (s)")
    if args.detect_every < 1:
        parser.error("--detect-every must be >= 1")
    if args.max_detect_every < 1:
        parser.error("--max-detect-every must be >= 1")
    if args.detector_batch < 1:
        parser.error("--detector-batch must be >= 1")
    if args.sr_interval < 0:
        parser.error("--sr-interval must be >= 0")
    if args.video_height is not None and args.video_height < 16:
        parser.error("--video-height must be at least 16 (px)")
    if args.reread_settled < 0:
        parser.error("--reread-settled must be >= 0")
    if not 0 <= args.fuse <= MAX_FUSE_K:
        parser.error(f"--fuse must be between 0 and {MAX_FUSE_K}")
    if not 0 < args.conf < 1:
        parser.error("--conf must be between 0 and 1")
    if args.zoom is not None and not 0 < args.zoom <= 8:
        parser.error("--zoom must be between 0 and 8")
    if args.zoom is not None and args.imgsz is not None:
        parser.error("--zoom and --imgsz both set the detector's input size: give one")
    if not 0 <= args.margin <= 2:
        parser.error("--margin must be between 0 and 2")
    for name in ("open_timeout", "read_timeout", "max_lag"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    if args.max_reconnects is not None and args.max_reconnects < 0:
        parser.error("--max-reconnects must be >= 0")
    if args.status_interval < 0 or (args.duration is not None and args.duration <= 0):
        parser.error("--status-interval must be >= 0 and --duration > 0")
    if args.workers < 0:
        parser.error("--workers must be >= 0")


def _output_dir(args: argparse.Namespace, src: str) -> Path:
    """The output folder, checked: not a file, not the input's own video (nothing is created)."""
    from stream.errors import OutputError
    from stream.outputs import VIDEO_NAME

    if args.out is not None:
        out_dir = args.out
    else:
        out_dir = Path("enhanced") / (safe_name(src) if is_url(src) else Path(src).stem or "video")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output folder {out_dir} is an existing file")
    if not args.no_video and not is_url(src) and (out_dir / VIDEO_NAME).resolve() == Path(src).resolve():
        raise OutputError(f"output {out_dir / VIDEO_NAME} would overwrite the input")
    return out_dir


def _make_output_dir(out_dir: Path) -> None:
    """Create the output folder and prove it writable, so a read-only place fails before any work."""
    from stream.errors import OutputError

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


def _check_url(url: str) -> None:
    """Scheme, host and port of a stream URL, checked before anything slow happens."""
    from urllib.parse import urlsplit

    from stream.errors import InputError

    if url.split("://", 1)[0].lower() not in ("rtsp", "rtsps"):
        raise InputError(f"unsupported URL scheme in {redact(url)} (use rtsp:// or a file path)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in 0-65535
    except ValueError as exc:
        raise InputError(f"malformed URL {redact(url)}: {redact(exc)}") from None
    if not parts.hostname:
        raise InputError(f"malformed URL {redact(url)}: no host")


def _open_source(args: argparse.Namespace, src: str):
    """A VideoSource for a file, a LiveSource for an rtsp:// URL (connects now)."""
    from stream.source import VideoSource

    if not is_url(src):
        return VideoSource(src, hwaccel=args.hwaccel)
    from stream.live import LiveConfig, LiveSource
    from stream.status import StatusLine

    config = LiveConfig(transport=args.rtsp_transport, open_timeout_s=args.open_timeout,
                        read_timeout_s=args.read_timeout, max_reconnects=args.max_reconnects,
                        max_lag_s=args.max_lag, duration_s=args.duration)
    return LiveSource(src, config, status=StatusLine(redact(src), args.status_interval))


def configure_opencv_threads() -> None:
    """One OpenCV thread for the whole process. The pipeline already overlaps decode, inference,
    encode and reads on their own threads, and OpenCV's pool, busy-waiting on plate-sized images,
    only burnt CPU: ECC alignment took the same wall time on one thread as on two, at half the CPU
    (benchmarks/results/fusion/cost.md); end to end at 1080p, detect-every-3, the fps stayed within
    noise (27.8 / 27.8 fps on two threads, 28.3 / 25.8 on one) and ``--fuse 5`` used 2-6 % less CPU."""
    import cv2

    cv2.setNumThreads(1)


def _load_models(args: argparse.Namespace):
    """(detector, single-frame enhancer or None, fusion enhancer or None), as the options ask."""
    import torch

    from sr_model.enhancer import EnhancerConfig, PlateEnhancer
    from tracker.detector import DetectorConfig, DetectorWeightsError, PlateDetector

    if args.threads:
        torch.set_num_threads(args.threads)
    configure_opencv_threads()
    config = DetectorConfig(imgsz=args.imgsz, conf=args.conf, device=args.device, roi=args.roi,
                            coarse_pass=args.coarse_pass, zoom=args.zoom,
                            refine_corners=not args.no_corner_refiner, refiner_weights=args.corner_refiner,
                            backend=args.detector_backend, precision=args.detector_precision,
                            batch_size=args.detector_batch)
    try:
        detector = PlateDetector(args.detector, config)
    except DetectorWeightsError:
        raise
    except ValueError as exc:  # a back end this install or device cannot run
        raise SetupError(str(exc)) from None
    enhancer = None if args.no_sr else PlateEnhancer(args.generator, EnhancerConfig(
        device=args.device, backend=args.backend, precision=args.precision))
    fusion = None if args.no_sr else _fusion(args)
    return detector, enhancer, fusion


def _pipeline(args: argparse.Namespace, models, live: bool, reader=None):
    """The pipeline for one input; ``reader``: a plate reader to use (default: a new one unless
    --no-read)."""
    from stream.pipeline import EnhancePipeline, PipelineConfig

    detector, enhancer, fusion = models
    if reader is None and not args.no_read:
        reader = _reader()
    return EnhancePipeline(detector, enhancer, PipelineConfig(
        detect_every=args.detect_every, margin=args.margin, enhance=not args.no_sr, crf=args.crf,
        preset=args.preset, x264_params=args.x264_params,
        detect_batch=1 if live else 4, sr_interval_s=args.sr_interval,  # live: no waiting to fill a batch
        fuse_k=fusion.config.k if fusion is not None else 0, rectify=not args.no_rectify,
        video=not args.no_video, video_height=args.video_height, read_from=args.read_from,
        reread_settled_s=args.reread_settled, skip_still_s=args.skip_still,
        detect_ahead=not live, live_max_detect_every=args.max_detect_every),  # live: no frame of added latency
        reader=reader,
        fusion=fusion)


def _print_result(args: argparse.Namespace, result, out_dir: Path, prefix: str = "") -> None:
    print(f"{prefix}{result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} fps), "
          f"{len(result.tracks)} plate tracks")
    if not args.no_read:
        read = [t for t in result.tracks if t.read]
        print(f"{prefix}{len(read)} tracks read" + (":" if read else ""))
        for t in read[:20]:
            print(f"{prefix}  #{t.track_id}: {t.read} (confidence {t.read_confidence:.2f}, {t.read_support} of "
                  f"{t.n_reads} reads agree; frames {t.first_frame}-{t.last_frame}; {t.read_crop or 'no crop yet'})")
        if len(read) > 20:
            print(f"{prefix}  ... {len(read) - 20} more in report.json")
    video = f"{result.video.name}, " if result.video is not None else ""
    print(f"{prefix}outputs in {out_dir}/: {video}tracks.jsonl, report.json, crops/")


def run(args: argparse.Namespace) -> int:
    inputs = args.input or [str(DEMO_CLIP)]
    if len(inputs) > 1 or args.workers:
        return run_many(args, inputs)
    src = inputs[0]
    live = is_url(src)
    if live:
        _check_url(src)
    out_dir = _output_dir(args, src)
    # A file is opened before the heavy imports, so a bad one fails in a second. A camera is
    # connected after the models are loaded, so no frames go stale while they load.
    source = None if live else _open_source(args, src)
    try:
        if source is not None:
            _check_roi(args, source)
        if args.fusion_weights is not None and not args.fusion_weights.is_file() and not args.no_sr:
            raise SetupError(f"fusion weights not found: {args.fusion_weights}")
        _make_output_dir(out_dir)
        pipeline = _pipeline(args, _load_models(args), live)
        if source is None:
            source = _open_source(args, src)
        result = pipeline.run(source, out_dir, progress=not (args.quiet or live), label=source.display_name)
    finally:
        if source is not None:
            source.close()
    _print_result(args, result, out_dir)
    return 0


def _stream_dirs(args: argparse.Namespace, inputs: list[str]) -> list[Path]:
    """One output folder per input under --out (default ./enhanced): the input's name, made
    unique with a number when two inputs share one."""
    root = args.out if args.out is not None else Path("enhanced")
    seen: dict[str, int] = {}
    dirs = []
    for src in inputs:
        name = safe_name(src) if is_url(src) else (Path(src).stem or "video")
        seen[name] = seen.get(name, 0) + 1
        dirs.append(root / (name if seen[name] == 1 else f"{name}_{seen[name]}"))
    return dirs


def run_many(args: argparse.Namespace, inputs: list[str]) -> int:
    """Several inputs at once: one pipeline thread per input, in this process or (``--workers N``)
    in N worker processes; the detector and the generator are loaded once, here, and shared (their
    calls from all streams are batched together, see :mod:`stream.batching` and
    :mod:`stream.model_server`). Every input is checked before any work starts; after that, a
    stream that fails is reported and the others go on. A signal stops every stream, each
    finishing its files. Exit status: 0 when all succeeded, else the worst (2 bad input, 1 other)."""
    from stream.batching import SharedDetector, SharedEnhancer, SharedReader
    from stream.errors import OutputError

    out_dirs = _stream_dirs(args, inputs) if len(inputs) > 1 else [_output_dir(args, inputs[0])]
    for src, out_dir in zip(inputs, out_dirs):
        if is_url(src):
            _check_url(src)
        if out_dir.exists() and not out_dir.is_dir():
            raise OutputError(f"output folder {out_dir} is an existing file")
    sources: dict[int, object] = {}
    try:
        for i, src in enumerate(inputs):
            if not is_url(src):
                sources[i] = _open_source(args, src)  # a bad file fails now, before any model loads
                _check_roi(args, sources[i])
        if args.fusion_weights is not None and not args.fusion_weights.is_file() and not args.no_sr:
            raise SetupError(f"fusion weights not found: {args.fusion_weights}")
        for out_dir in out_dirs:
            _make_output_dir(out_dir)
        detector, enhancer, fusion = _load_models(args)
        n = len(inputs)
        shared = (SharedDetector(detector, max_batch=4 * n),
                  None if enhancer is None else SharedEnhancer(enhancer, max_batch=64),
                  None if fusion is None else SharedEnhancer(fusion, max_batch=16))
        reader = None if args.no_read else SharedReader(_reader())
        results: dict[int, object] = {}
        errors: dict[int, BaseException] = {}
        try:
            if args.workers:
                for source in sources.values():  # checked; each worker opens its own
                    source.close()
                sources.clear()
                _run_in_workers(args, inputs, out_dirs, shared, reader, results, errors)
            else:
                _run_in_threads(args, inputs, out_dirs, sources, shared, reader, results, errors)
        finally:
            for model in (*shared, reader):
                if model is not None:
                    model.close()
    finally:
        for source in sources.values():
            source.close()
    return _report_many(args, inputs, out_dirs, results, errors)


def _run_in_threads(args: argparse.Namespace, inputs: list[str], out_dirs: list[Path], sources: dict,
                    shared: tuple, reader, results: dict, errors: dict) -> None:
    """Run every input's pipeline on a thread of this process (``sources``: the files already
    open, by input index; URLs connect on their thread). Fills ``results`` / ``errors`` per input.
    A signal stops every pipeline; each finishes its files, then the signal's exit status applies."""
    import threading

    stop = threading.Event()

    def work(i: int) -> None:
        src = inputs[i]
        try:
            if i not in sources:
                sources[i] = _open_source(args, src)
            source = sources[i]
            pipeline = _pipeline(args, shared, is_url(src), reader)
            results[i] = pipeline.run(source, out_dirs[i], progress=not args.quiet, label=source.display_name,
                                      stop=stop, progress_position=i)
        except BaseException as exc:  # noqa: BLE001 - reported per stream by _report_many
            errors[i] = exc

    threads = [threading.Thread(target=work, args=(i,), name=f"stream-{i}", daemon=True) for i in range(len(inputs))]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join()
        raise


def _report_many(args: argparse.Namespace, inputs: list[str], out_dirs: list[Path], results: dict,
                 errors: dict) -> int:
    """Print each input's result or error line; the exit status of the worst."""
    code = 0
    for i, src in enumerate(inputs):
        name = redact(src)
        if i in results:
            _print_result(args, results[i], out_dirs[i], prefix=f"[{name}] ")
        else:
            exc = errors[i]
            bad = _is_usage_error(exc)
            print(f"enhance-video: error: [{name}] {redact(_one_line(exc))}", file=sys.stderr)
            code = max(code, 2 if bad else 1)
    return code


def _run_in_workers(args: argparse.Namespace, inputs: list[str], out_dirs: list[Path], shared: tuple,
                    reader, results: dict, errors: dict) -> None:
    """Deal the inputs out to ``args.workers`` worker processes (input i to worker i mod N) that
    run the pipelines while this process serves their model calls (:class:`stream.model_server.
    ModelServer`). Fills ``results`` / ``errors`` per input. A signal here tells the workers to
    stop; they finish their files (a signal they get themselves does the same) and this process
    serves their last model calls until they are done."""
    import multiprocessing

    from stream.model_server import ModelServer, RemoteError

    ctx = multiprocessing.get_context("spawn")  # never fork a process that holds models and threads
    detector, enhancer, fusion = shared
    server = ModelServer({"detector": detector, "enhancer": enhancer, "fusion": fusion, "reader": reader})
    stop = ctx.Event()
    n_workers = min(args.workers, len(inputs))
    workers = []
    for k in range(n_workers):
        jobs = [(i, inputs[i], out_dirs[i], server.link(ctx, str(i))) for i in range(k, len(inputs), n_workers)]
        here, there = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker_main, args=(args, jobs, there, stop), name=f"enhance-worker-{k}")
        proc.start()
        there.close()
        for _, _, _, link in jobs:  # the worker holds them now; EOF reaches the server when it exits
            for conn in link.conns.values():
                conn.close()
        workers.append((proc, here, [i for i, *_ in jobs]))

    def collect(block_s: float) -> None:
        for proc, conn, _ in workers:
            try:
                while conn.poll(block_s / len(workers)):
                    i, ok, payload = conn.recv()
                    (results if ok else errors)[i] = payload
            except (EOFError, OSError):
                pass

    try:
        try:
            while any(proc.is_alive() for proc, _, _ in workers):
                collect(0.2)
        except KeyboardInterrupt:
            stop.set()  # every worker finishes its files, then the signal's exit status applies
            while any(proc.is_alive() for proc, _, _ in workers):
                collect(0.2)
            raise
        finally:
            collect(0.0)
    finally:
        for proc, conn, ids in workers:
            proc.join()
            conn.close()
            for i in ids:
                if i not in results and i not in errors:
                    errors[i] = RemoteError(f"its worker process ended with exit status {proc.exitcode}")
        server.join(timeout=5)


def _worker_main(args: argparse.Namespace, jobs: list, results, stop_all) -> None:
    """A worker process: run each job's pipeline on its own thread with the server's models and
    send back ``(input index, ok, RunResult or exception)``. SIGINT / SIGTERM, here or from the
    parent (``stop_all``), stop the pipelines, which finish their files."""
    import threading

    from stream.model_server import error_payload

    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    _configure_logging(args)
    configure_opencv_threads()
    lock = threading.Lock()

    def work(i: int, src: str, out_dir: Path, link) -> None:
        remotes = link.remotes()
        source = None
        try:
            source = _open_source(args, src)
            pipeline = _pipeline(args, (remotes["detector"], remotes.get("enhancer"), remotes.get("fusion")),
                                 is_url(src), remotes.get("reader"))
            outcome = (i, True, pipeline.run(source, out_dir, progress=not args.quiet, label=source.display_name,
                                             stop=stop, progress_position=i))
        except BaseException as exc:  # noqa: BLE001 - reported by the parent, per input
            outcome = (i, False, error_payload(exc))
        finally:
            if source is not None:
                source.close()
            for remote in remotes.values():
                remote.close()
        with lock:
            try:
                results.send(outcome)
            except OSError:  # the parent is gone (killed): say what happened here, the outputs stay
                message = "done" if outcome[1] else redact(_one_line(outcome[2]))
                print(f"enhance-video: [{redact(src)}] {message}; the parent process has stopped", file=sys.stderr)

    threads = [threading.Thread(target=work, args=job, name=f"stream-{job[0]}", daemon=True) for job in jobs]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.2)
        if stop_all.is_set():
            stop.set()
    results.close()


def _fusion(args: argparse.Namespace):
    """The multi-frame enhancer --fuse K (K >= 2) asks for, or None (off: the default). Fusion
    weights given without --fuse mean --fuse with its default K. A missing or bad model is an error."""
    k = DEFAULT_FUSE_K if (args.fuse == 0 and args.fusion_weights is not None) else args.fuse
    if k < 2:
        return None
    try:
        from sr_model.fusion import FusionConfig, FusionEnhancer
    except ImportError as exc:
        raise SetupError(f"multi-frame fusion is not available in this install ({exc}); leave out --fuse") from None
    # The fusion model follows --precision: int8 (its decoder, on the CPU) where the generator runs
    # int8 or auto, fp32 for every float precision.
    precision = args.precision if args.precision in ("auto", "int8") else "fp32"
    return FusionEnhancer(args.fusion_weights, FusionConfig(k=k, device=args.device, precision=precision))


def _reader():
    """The plate reader (RapidOCR recognition), one onnxruntime thread so it never crowds the models."""
    try:
        from stream.reads import PlateReader

        return PlateReader(threads=1)
    except ImportError as exc:
        raise SetupError(f"plate reads need rapidocr ({exc}); install it or use --no-read") from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(args, parser)
    _configure_logging(args)
    try:
        with stop_on_signals():
            return run(args)
    except KeyboardInterrupt as exc:
        code = exc.code if isinstance(exc, Stopped) else 130
        why = "terminated" if code == 128 + signal.SIGTERM else "interrupted"
        print(f"enhance-video: {why}; outputs written so far are kept", file=sys.stderr)
        return code
    except Exception as exc:  # the promise is one line, never a traceback, unless asked for
        if _is_usage_error(exc):
            print(f"enhance-video: error: {redact(_one_line(exc))}", file=sys.stderr)
            return 2
        if args.debug:
            print(redact(traceback.format_exc()), file=sys.stderr, end="")
            return 1
        print(f"enhance-video: error: {type(exc).__name__}: {redact(_one_line(exc))} (run with --debug for details)",
              file=sys.stderr)
        return 1


def _configure_logging(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="enhance-video: %(levelname)s: %(message)s")
    for handler in logging.getLogger().handlers:  # credentials never reach a log line
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def _is_usage_error(exc: BaseException) -> bool:
    """Bad input, output or weights (exit 2). The weights errors are looked up only when their
    modules are loaded: importing them would import torch, and an input error must answer fast."""
    from stream.errors import InputError, OutputError

    kinds: list[type] = [InputError, OutputError, SetupError]
    for module, name in (("sr_model.weights", "WeightsError"), ("tracker.detector", "DetectorWeightsError"),
                         ("sr_model.backends", "BackendUnavailable"), ("sr_model.fusion", "FusionWeightsError")):
        if module in sys.modules:
            kinds.append(getattr(sys.modules[module], name))
    return isinstance(exc, tuple(kinds))


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


if __name__ == "__main__":
    sys.exit(main())
