"""Throughput on this machine: decode fps, detector ms/frame, generator crops/s, end-to-end fps.

    python -m benchmarks.throughput --out benchmarks/results/throughput [--quick]
    python -m benchmarks.throughput --out benchmarks/results/throughput_gpu --device cuda \
        --batches 1 32 256 1024 4096 --sizes 1920x1080 --streams 1 4 16 --no-naive

End to end is the real pipeline (decode → detect → track → SR → annotate → encode) on
synthetic clips with plates: in this process for one stream, beside a naive baseline in the same
run (a detector call per frame, one eager fp32 generator call per crop on every frame,
foreground encoding), the same pipeline without the annotated video (``enhance-video
--no-video``: tracks, reports and crops only) and with plate reads (the OCR, on by default in
``enhance-video``; the other rows are ``--no-read``); ``--streams N ...`` runs the ``enhance-video`` CLI on N copies of the
largest clip at once (one process, shared models; ``--workers W``: the pipelines in W worker
processes, the models in one) and reports each stream's and the total fps.
An encoder table times the annotated video's x264 settings alone on the largest clip (fps, CPU
core-ms per frame, file size, luma PSNR). Writes throughput.json, throughput.md and throughput.png.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _cpu_model() -> tuple[str, list[str]]:
    """CPU model name and the vector extensions that decide CPU inference speed (bf16 is only fast
    with AVX-512 BF16 / AMX; without them PyTorch emulates it)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and name in ("", "x86_64", platform.machine()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
    return name, [f for f in wanted if f in flags]


def machine() -> dict:
    cpu, isa = _cpu_model()
    return {"cpu": cpu, "isa": isa, "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def time_decode(path: Path) -> float:
    from stream.source import VideoSource, frames_only

    t = time.perf_counter()
    with VideoSource(path, with_audio=False) as src:
        n = sum(1 for _ in frames_only(src))
    return n / (time.perf_counter() - t)


# x264 settings of the annotated video compared in the encoder table: (preset, x264_params);
# x264_params None is the sink's default for the preset (stream.outputs.PRESET_TWEAKS).
ENCODER_SETTINGS: tuple[tuple[str, str | None], ...] = (
    ("veryfast", ""), ("veryfast", None), ("superfast", ""), ("ultrafast", ""),
)


def encoder_table(path: Path, settings=ENCODER_SETTINGS, max_frames: int = 150) -> list[dict]:
    """The annotated video's encoder alone (``stream.sink.VideoSink``, background thread off) on
    the decoded frames of ``path``: fps, CPU core-ms per frame (this process, all threads), file
    size and luma PSNR of the re-encoded video against the decoded input."""
    import cv2

    from stream.pipeline import PipelineConfig
    from stream.sink import VideoSink
    from stream.source import VideoSource, frames_only, read_frames

    with VideoSource(path, with_audio=False) as src:
        info = src.info
        frames = [f.image for _, f in zip(range(max_frames), frames_only(src))]
    luma = [cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420)[: f.shape[0]].astype(np.float32) for f in frames]
    rows, default = [], PipelineConfig()
    with tempfile.TemporaryDirectory() as tmp:
        for preset, params in settings:
            out = Path(tmp) / f"{preset}.mp4"
            c0, t = os.times(), time.perf_counter()
            sink = VideoSink(out, info.width, info.height, info.fps, info.time_base, preset=preset, x264_params=params)
            for i, f in enumerate(frames):
                sink.write(f, i / info.fps)
            sink.close()
            wall, c1 = time.perf_counter() - t, os.times()
            cpu = (c1.user - c0.user) + (c1.system - c0.system)
            back = read_frames(out)
            mse = np.mean([np.mean((cv2.cvtColor(b, cv2.COLOR_BGR2YUV_I420)[: b.shape[0]] - y) ** 2)
                           for b, y in zip(back, luma)])
            rows.append({"preset": preset, "x264_params": sink.x264_params,
                         "default": (preset, params) == (default.preset, default.x264_params),
                         "fps": round(len(frames) / wall, 1), "cpu_ms_per_frame": round(1000 * cpu / len(frames), 1),
                         "kib": out.stat().st_size // 1024, "y_psnr_db": round(float(10 * np.log10(255**2 / mse)), 2)})
    return rows


def time_detector(detector, frames: list[np.ndarray], batch: int, repeats: int = 3) -> float:
    """ms per frame of ``detector.detect`` over ``frames`` in batches of ``batch``: the median of
    ``repeats`` timed passes after a warm-up pass over all of them (a GPU's first passes over
    new input shapes pick kernels; OpenVINO compiles each new shape)."""
    from dataclasses import replace

    detector.config = replace(detector.config, batch_size=batch)
    detector.detect(frames)  # warm-up: every input shape built (OpenVINO compiles, cuDNN picks kernels)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        detector.detect(frames)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) / len(frames) * 1000


def generator_table(batches: tuple[int, ...], repeats: int, size: tuple[int, int] = (32, 96),
                    quick: bool = False, device: str = "cpu", min_seconds: float = 0.5) -> list[dict]:
    """Crops per second of the shipped generator by back end, precision and batch size, the best
    of 3 timing windows (input: float crops already on ``device``; the timing ends with the
    outputs on the device)."""
    from sr_model.backends import BackendUnavailable, create_runner
    from sr_model.weights import load_generator

    model, _ = load_generator()
    variants = [("eager", "fp32", False), ("eager", "fp32", True), ("eager", "bf16", True), ("compile", "fp32", False),
                ("onnx", "fp32", False), ("onnx", "int8", False), ("openvino", "fp32", False), ("openvino", "bf16", False)]
    if device.startswith("cuda"):  # ONNX Runtime's CUDA provider is a separate install (onnxruntime-gpu)
        variants = [("eager", "fp32", False), ("eager", "fp16", True), ("eager", "bf16", True), ("compile", "fp16", False),
                    ("tensorrt", "fp16", False)]
    if quick:  # compile alone takes a minute on CPU
        variants = [("eager", "fp32", False), ("onnx", "fp32", False), ("onnx", "int8", False)]
    rows = []
    for backend, precision, cl in variants:
        try:
            _, run = create_runner(model, backend, device, precision, cl)
        except BackendUnavailable as exc:
            rows.append({"backend": backend, "precision": precision, "channels_last": cl, "skipped": str(exc)})
            continue
        cuda = device.startswith("cuda")
        for b in batches:
            x = torch.rand(b, 3, *size, device=device)
            best = 0.0
            with torch.inference_mode():
                run(x)  # warm-up (and compilation)
                if cuda:
                    torch.cuda.synchronize()
                for _ in range(3):  # best of 3 windows: one window caught other processes' bursts
                    t, n = time.perf_counter(), 0
                    while n < repeats or time.perf_counter() - t < min_seconds:  # fast rows: enough calls to time
                        run(x)
                        n += 1
                        if cuda:
                            torch.cuda.synchronize()
                    best = max(best, b * n / (time.perf_counter() - t))
            rows.append({"backend": backend, "precision": precision, "channels_last": cl, "batch": b,
                         "crops_per_s": round(best, 1)})
        print(rows[-1], flush=True)
    return rows


def naive_pipeline(device: str):
    """The baseline the pipeline's batching is measured against: the detector called on every
    frame alone (torch back end), the generator called once per crop (eager fp32, no
    channels-last) on every frame (no SR throttle), no reads, encoding in the pipeline thread."""
    from sr_model.enhancer import EnhancerConfig, PlateEnhancer
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from tracker.detector import DetectorConfig, PlateDetector

    detector = PlateDetector(config=DetectorConfig(device=device, backend="torch", batch_size=1))
    enhancer = PlateEnhancer(config=EnhancerConfig(device=device, backend="eager", batch_size=1))
    return EnhancePipeline(detector, enhancer, PipelineConfig(detect_batch=1, sr_interval_s=0.0,
                                                              background_encode=False, detect_ahead=False))


def streams_row(clip: Path, n: int, out_dir: Path, device: str, extra: tuple[str, ...] = (),
                processes: int = 1, workers: int = 0) -> dict:
    """Run ``enhance-video`` on ``n`` copies of ``clip``: ``processes`` CLI processes at once, each
    with its share of the copies (shared detector and generator, as a user would; ``workers`` > 0:
    its pipelines in that many worker processes, ``--workers``), and parse each stream's frames /
    seconds from their output."""
    import re
    import subprocess
    import sys

    shares = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "stream.cli", *([str(clip)] * k), "-o", str(out_dir / f"p{i}"),
                               "--device", device, "--no-read", "-q", "--workers", str(workers), *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, k in enumerate(shares) if k]
    outs = [proc.communicate() for proc in procs]
    wall = time.perf_counter() - t
    per = [(int(m[1]), float(m[2])) for out, _ in outs for m in re.finditer(r"(\d+) frames in ([\d.]+) s \(", out)]
    if any(proc.returncode for proc in procs) or len(per) != n:
        bad = next((o for o, proc in zip(outs, procs) if proc.returncode), outs[0])
        return {"streams": n, "processes": processes, "workers": workers,
                "error": (bad[1] or bad[0]).strip().splitlines()[-1:] or ["no output"]}
    fps = [f / max(sec, 1e-9) for f, sec in per]
    return {"streams": n, "processes": len(procs), "workers": workers, "frames_per_stream": per[0][0], "min_stream_fps": round(min(fps), 1),
            "mean_stream_fps": round(sum(fps) / n, 1),
            "total_fps": round(sum(f for f, _ in per) / max(sec for _, sec in per), 1),
            "wall_s_with_model_load": round(wall, 1),
            # the source's one warning per input when --hwaccel falls back to software decoding
            "hwaccel_fallbacks": sum(err.count("hardware decoding") for _, err in outs)}


def plot(results: dict, path: Path) -> None:
    """Generator crops/s by batch, end-to-end fps by clip (pipeline vs naive) and, when measured,
    total fps by number of streams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = [r for r in results.get("streams", []) if "total_fps" in r]
    encoder = results.get("encoder", [])
    gen = [r for r in results["generator"] if "crops_per_s" in r]
    n_panels = bool(gen) + 1 + bool(streams) + bool(encoder)  # a panel only for what was measured
    fig, axes = plt.subplots(1, n_panels, figsize=(5.5 * n_panels, 4), squeeze=False)
    panels = iter(axes[0])
    ax = next(panels) if gen else None
    for key in dict.fromkeys((r["backend"], r["precision"], r["channels_last"]) for r in gen):
        pts = [r for r in gen if (r["backend"], r["precision"], r["channels_last"]) == key]
        label = f"{key[0]} {key[1]}" + (" CL" if key[2] else "")
        ax.plot([r["batch"] for r in pts], [r["crops_per_s"] for r in pts], marker="o", label=label)
    if gen:
        ax.set(xscale="log", yscale="log", xlabel="batch (crops of 32x96)", ylabel="crops / s", title="generator x4")
        ax.legend(fontsize=8)
    ax = next(panels)
    vids = results["videos"]
    keys = [k for k in (vids[0] if vids else {}) if k.startswith("end_to_end_fps") or k == "naive_fps"]
    width = 0.8 / max(1, len(keys))
    for i, k in enumerate(keys):
        ax.bar([j + i * width for j in range(len(vids))], [v.get(k, 0) for v in vids], width=width,
               label=k.replace("end_to_end_fps_", "").replace("_", " "))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(vids))], [v["size"] for v in vids])
    ax.set(ylabel="frames / s", title="end to end (decode → encode)")
    if keys:
        ax.legend(fontsize=8)
    if streams:
        ax = next(panels)
        xs = [f"{r['streams']}" + (f"/{r['processes']}p" if r.get("processes", 1) > 1 else "")
              + (f"/{r['workers']}w" if r.get("workers") else "")
              + (f"/e{r['detect_every']}" if r.get("detect_every", 1) > 1 else "")
              + (f"/b{r['detector_batch']}" if r.get("detector_batch", 4) != 4 else "") for r in streams]
        ax.bar(xs, [r["total_fps"] for r in streams], label="total")
        ax.plot(xs, [r["min_stream_fps"] for r in streams], "ko-", label="slowest stream")
        ax.set(xlabel=f"streams ({streams[0]['size']})", ylabel="frames / s",
               title="several streams (p: processes, w: workers, e: detect every, b: detector batch)")
        ax.legend(fontsize=8)
    if encoder:
        ax = next(panels)
        for r in encoder:
            label = r["preset"] + (f" + {r['x264_params']}" if r["x264_params"] else "") + (" (default)" if r["default"] else "")
            ax.scatter(r["cpu_ms_per_frame"], r["kib"] / 1024, s=60 if r["default"] else 30, zorder=3)
            ax.annotate(label, (r["cpu_ms_per_frame"], r["kib"] / 1024), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        ax.set(xlabel="CPU core-ms per frame", ylabel="annotated video, MiB",
               title=f"x264 settings, {encoder[0]['size']} (crf 23)")
        ax.margins(x=0.25, y=0.15)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{results['machine']['cpu']} x{results['machine']['cores']}, gpu={results['machine']['gpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each test clip")
    p.add_argument("--quick", action="store_true", help="1-second 360p clip only")
    p.add_argument("--device", default="cpu", help="torch device for the models: cpu, cuda")
    p.add_argument("--batches", type=int, nargs="*", default=[1, 8, 32], help="generator batch sizes (none: skip)")
    p.add_argument("--sizes", type=_size, nargs="*", default=[(1280, 720), (1920, 1080)], metavar="WxH",
                   help="end-to-end clip sizes (none: skip)")
    p.add_argument("--streams", type=int, nargs="*", default=[],
                   help="also run the CLI on this many copies of the largest clip at once")
    p.add_argument("--processes", type=int, nargs="+", default=[1],
                   help="run each --streams count split over this many CLI processes (one row per value)")
    p.add_argument("--workers", type=int, nargs="+", default=[0],
                   help="run each --streams count with enhance-video --workers W (pipelines in W worker processes, "
                        "models in one; one row per value; 0: threads of one process)")
    p.add_argument("--streams-detect-every", type=int, nargs="+", default=[1], metavar="N",
                   help="run each --streams count with enhance-video --detect-every N (one row per value)")
    p.add_argument("--streams-detector-batch", type=int, nargs="+", default=[4], metavar="N",
                   help="run each --streams count with enhance-video --detector-batch N (one row per value)")
    p.add_argument("--no-naive", dest="naive", action="store_false", help="skip the naive baseline")
    p.add_argument("--no-video-rows", dest="video_rows", action="store_false",
                   help="skip the end-to-end runs without the annotated video (enhance-video --no-video)")
    p.add_argument("--no-reads-rows", dest="reads_rows", action="store_false",
                   help="skip the end-to-end runs with plate reads (enhance-video's default; the other rows are "
                        "--no-read)")
    p.add_argument("--streams-no-video", action="store_true", help="the several-streams runs with --no-video")
    p.add_argument("--streams-hwaccel", default=None, metavar="TYPE",
                   help="the several-streams runs with enhance-video --hwaccel TYPE (cuda: NVDEC decoding)")
    p.add_argument("--no-encoder", dest="encoder", action="store_false",
                   help="skip the x264 settings table of the annotated video")
    p.add_argument("--sr-backend", default="auto", help="generator back end of the end-to-end runs")
    p.add_argument("--imgsz", type=int, default=None,
                   help="detector input size of the end-to-end runs (default: the detector's auto size)")
    p.add_argument("--zoom", type=float, default=None,
                   help="detector enlargement of the end-to-end runs instead of --imgsz (enhance-video --zoom)")
    p.add_argument("--detector-backend", default="auto", choices=("auto", "torch", "onnx", "openvino"),
                   help="detector back end of the end-to-end runs (default auto)")
    p.add_argument("--detector-precision", default="auto", choices=("auto", "f32", "bf16", "fp16"),
                   help="detector precision of the end-to-end and streams runs (enhance-video --detector-precision)")
    p.add_argument("--sr-precision", default="auto", help="generator precision of the end-to-end runs (default auto)")
    args = p.parse_args(argv)

    from sr_model.enhancer import EnhancerConfig, PlateEnhancer
    from stream.cli import configure_opencv_threads
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource, read_frames
    from tracker.detector import DetectorConfig, PlateDetector, auto_imgsz
    from train.synth.scenes import SceneConfig, write_scene_clip

    configure_opencv_threads()  # as enhance-video runs
    reader = None
    if args.reads_rows:
        from stream.reads import PlateReader

        reader = PlateReader()
    detector = PlateDetector(config=DetectorConfig(device=args.device, backend=args.detector_backend, imgsz=args.imgsz,
                                                   zoom=args.zoom, precision=args.detector_precision))
    enhancer = PlateEnhancer(config=EnhancerConfig(device=args.device, backend=args.sr_backend,
                                                   precision=args.sr_precision))
    sizes = [(640, 360)] if args.quick else args.sizes
    seconds = 1.0 if args.quick else args.seconds
    results = {"machine": machine(),
               "generator": generator_table((8,) if args.quick else tuple(args.batches),
                                            repeats=1 if args.quick else 3, quick=args.quick, device=args.device)
               if (args.batches or args.quick) else [],
               "videos": [], "streams": [], "encoder": [], "streams_no_video": args.streams_no_video,
               "streams_hwaccel": args.streams_hwaccel, "detector_precision": args.detector_precision}
    write_report(results, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        clip = None
        for w, h in sizes:
            clip = write_scene_clip(Path(tmp) / f"{h}p", SceneConfig(width=w, height=h, seconds=seconds, n_plates=3),
                                    seed=4242)
            frames = read_frames(clip.video_path)
            row = {"size": f"{w}x{h}", "frames": len(frames), "decode_fps": round(time_decode(clip.video_path), 1),
                   "detector_ms_per_frame": round(time_detector(detector, frames[:16], batch=4), 1)}
            del frames
            # with the annotated video, then (--no-video) tracks, reports and crops alone
            for every, video in [(e, v) for e in (1, 3) for v in ((True, False) if args.video_rows else (True,))]:
                pipe = EnhancePipeline(detector, enhancer, PipelineConfig(detect_every=every, video=video))
                tag = "" if video else "no_video_"
                with VideoSource(clip.video_path) as src:
                    res = pipe.run(src, Path(tmp) / f"out{h}_{tag}{every}", progress=False)
                row[f"end_to_end_fps_{tag}detect_every_{every}"] = round(res.fps, 2)
            for every in (1, 3) if reader is not None else ():  # the CLI's default: plates read as well
                pipe = EnhancePipeline(detector, enhancer, PipelineConfig(detect_every=every), reader=reader)
                with VideoSource(clip.video_path) as src:
                    res = pipe.run(src, Path(tmp) / f"out{h}_reads_{every}", progress=False)
                row[f"end_to_end_fps_reads_detect_every_{every}"] = round(res.fps, 2)
                report = json.loads((Path(tmp) / f"out{h}_reads_{every}" / "report.json").read_text())
                row[f"reads_detect_every_{every}"] = {k: report["reads"][k] for k in ("done", "skipped_settled")}
            if args.naive and not args.quick:
                with VideoSource(clip.video_path) as src:
                    res = naive_pipeline(args.device).run(src, Path(tmp) / f"naive{h}", progress=False)
                row["naive_fps"] = round(res.fps, 2)
                row["speedup_vs_naive"] = round(row["end_to_end_fps_detect_every_1"] / max(res.fps, 1e-9), 2)
                row["speedup_vs_naive_detect_every_3"] = round(row["end_to_end_fps_detect_every_3"] / max(res.fps, 1e-9), 2)
            row["generator_backend"] = f"{enhancer.backend} {enhancer.precision}"
            row["detector_backend"] = f"{detector.backend} {detector.precision}"
            row["detector_imgsz"] = f"zoom {args.zoom:g}" if args.zoom else args.imgsz or auto_imgsz(w, h)
            results["videos"].append(row)
            print(row, flush=True)
            write_report(results, args.out)  # partial results survive a run cut short
        if clip is not None and args.encoder:
            results["encoder"] = [{"size": results["videos"][-1]["size"], **r} for r in encoder_table(clip.video_path)]
            write_report(results, args.out)
        for n, procs, workers, every, batch in [(n, k, w, e, b) for n in (args.streams if clip is not None else [])
                                                for k in args.processes for w in args.workers
                                                for e in args.streams_detect_every
                                                for b in args.streams_detector_batch if k <= n]:
            row = {"size": results["videos"][-1]["size"], "detect_every": every, "detector_batch": batch,
                   **streams_row(clip.video_path, n, Path(tmp) / f"streams{n}_{procs}_{workers}_{every}_{batch}",
                                 args.device,
                                 ("--backend", args.sr_backend, "--precision", args.sr_precision,
                                  "--detector-backend", args.detector_backend,
                                  "--detector-precision", args.detector_precision,
                                  *(("--zoom", str(args.zoom)) if args.zoom else ("--imgsz", str(args.imgsz or "auto"))),
                                  "--detect-every", str(every), "--detector-batch", str(batch),
                                  *(("--no-video",) if args.streams_no_video else ()),
                                  *(("--hwaccel", args.streams_hwaccel) if args.streams_hwaccel else ())),
                                 processes=procs, workers=workers)}
            results["streams"].append(row)
            print(row, flush=True)
            write_report(results, args.out)


def write_report(results: dict, out: Path) -> None:
    """throughput.json, throughput.md and throughput.png under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(results, indent=2))
    lines = [f"Machine: {results['machine']}", "",
             "Generator ×4 on 32x96 crops:", "", "| back end | precision | channels_last | batch | crops/s |",
             "|---|---|---|---|---|",
             *[f"| {g['backend']} | {g['precision']} | {g['channels_last']} | {g.get('batch', '-')} | "
               f"{g.get('crops_per_s', 'skipped: ' + g.get('skipped', ''))} |" for g in results["generator"]], "",
             "| video | detector | generator | decode fps | detector ms/frame | end-to-end fps (detect every 1) "
             "| (every 3) | no video (every 1 / every 3) | with plate reads (every 1 / every 3) | naive baseline fps "
             "| speed-up (every 1 / every 3) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["videos"]:
        naive = (f"{r['naive_fps']} | {r['speedup_vs_naive']}x / {r['speedup_vs_naive_detect_every_3']}x"
                 if "naive_fps" in r else "- | -")
        lines.append(f"| {r['size']} | {r.get('detector_backend', '-')} imgsz {r.get('detector_imgsz', 640)} | "
                     f"{r.get('generator_backend', '-')} | "
                     f"{r['decode_fps']} | {r['detector_ms_per_frame']} | "
                     f"{r['end_to_end_fps_detect_every_1']} | {r['end_to_end_fps_detect_every_3']} | "
                     f"{r.get('end_to_end_fps_no_video_detect_every_1', '-')} / "
                     f"{r.get('end_to_end_fps_no_video_detect_every_3', '-')} | "
                     f"{r.get('end_to_end_fps_reads_detect_every_1', '-')} / "
                     f"{r.get('end_to_end_fps_reads_detect_every_3', '-')} | {naive} |")
    if results.get("encoder"):
        lines += ["", "Annotated-video encoder alone (x264 crf 23 through `VideoSink` on the last clip's decoded frames; "
                  "core-ms: CPU time of all threads per frame):", "",
                  "| video | preset | x264 params | fps | core-ms/frame | size KiB | Y-PSNR dB |", "|---|---|---|---|---|---|---|"]
        for r in results["encoder"]:
            lines.append(f"| {r['size']} | {r['preset']}{' (default)' if r['default'] else ''} | {r['x264_params'] or '-'} "
                         f"| {r['fps']} | {r['cpu_ms_per_frame']} | {r['kib']} | {r['y_psnr_db']} |")
    if results.get("streams"):
        precision = results.get("detector_precision", "auto")
        lines += ["", "Several streams (`enhance-video` on N copies, --no-read"
                  f"{', --no-video' if results.get('streams_no_video') else ''}"
                  f"{', --hwaccel ' + results['streams_hwaccel'] if results.get('streams_hwaccel') else ''}"
                  f"{', --detector-precision ' + precision if precision != 'auto' else ''}"
                  "; P processes share them out, "
                  "each with its pipelines in W worker processes when W > 0):", "",
                  "| video | streams | processes | workers | detect every | detector batch | slowest stream fps "
                  "| mean stream fps | total fps |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in results["streams"]:
            if "error" in r:
                lines.append(f"| {r['size']} | {r['streams']} | {r.get('processes', 1)} | {r.get('workers', 0)} "
                             f"| {r.get('detect_every', 1)} | {r.get('detector_batch', 4)} | failed: {r['error']} | | |")
            else:
                lines.append(f"| {r['size']} | {r['streams']} | {r.get('processes', 1)} | {r.get('workers', 0)} "
                             f"| {r.get('detect_every', 1)} | {r.get('detector_batch', 4)} | {r['min_stream_fps']} | "
                             f"{r['mean_stream_fps']} | {r['total_fps']} |")
    (out / "throughput.md").write_text("\n".join(lines) + "\n")
    plot(results, out / "throughput.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
