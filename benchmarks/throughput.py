"""Throughput on this machine: decode fps, detector ms/frame, generator crops/s, end-to-end fps.

    python -m benchmarks.throughput --out benchmarks/results/throughput [--quick]

End to end is the real CLI pipeline (decode → detect → track → SR → annotate → encode) on
synthetic 720p and 1080p clips with plates. Writes throughput.json and throughput.md.
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


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def time_decode(path: Path) -> float:
    from stream.source import VideoSource, frames_only

    t = time.perf_counter()
    with VideoSource(path, with_audio=False) as src:
        n = sum(1 for _ in frames_only(src))
    return n / (time.perf_counter() - t)


def time_detector(detector, frames: list[np.ndarray], batch: int) -> float:
    from dataclasses import replace

    detector.config = replace(detector.config, batch_size=batch)
    detector.detect(frames[:batch])  # warm-up
    t = time.perf_counter()
    detector.detect(frames)
    return (time.perf_counter() - t) / len(frames) * 1000


def time_generator(enhancer, n: int = 64, size: tuple[int, int] = (32, 96)) -> float:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(n)]
    enhancer.enhance(crops[:8])
    t = time.perf_counter()
    enhancer.enhance(crops)
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each test clip")
    p.add_argument("--quick", action="store_true", help="1-second 360p clip only")
    args = p.parse_args(argv)

    from sr_model.enhancer import EnhancerConfig, PlateEnhancer
    from stream.pipeline import EnhancePipeline
    from stream.source import VideoSource, read_frames
    from tracker.detector import PlateDetector
    from train.synth.scenes import SceneConfig, write_scene_clip

    detector, enhancer = PlateDetector(), PlateEnhancer()
    sizes = [(640, 360)] if args.quick else [(1280, 720), (1920, 1080)]
    seconds = 1.0 if args.quick else args.seconds
    results = {"machine": machine(), "generator_crops_per_s_32x96": round(time_generator(
        PlateEnhancer(config=EnhancerConfig(batch_size=32)), n=16 if args.quick else 128), 1), "videos": []}
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in sizes:
            clip = write_scene_clip(Path(tmp) / f"{h}p", SceneConfig(width=w, height=h, seconds=seconds, n_plates=3),
                                    seed=4242)
            frames = read_frames(clip.video_path)
            row = {"size": f"{w}x{h}", "frames": len(frames), "decode_fps": round(time_decode(clip.video_path), 1),
                   "detector_ms_per_frame": round(time_detector(detector, frames[:16], batch=4), 1)}
            for every in (1, 3):
                from stream.pipeline import PipelineConfig

                pipe = EnhancePipeline(detector, enhancer, PipelineConfig(detect_every=every))
                with VideoSource(clip.video_path) as src:
                    res = pipe.run(src, Path(tmp) / f"out{h}_{every}", progress=False)
                row[f"end_to_end_fps_detect_every_{every}"] = round(res.fps, 2)
            results["videos"].append(row)
            print(row, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(results, indent=2))
    lines = [f"Machine: {results['machine']}", "",
             f"Generator: {results['generator_crops_per_s_32x96']} crops/s (32x96 → ×4, eager fp32, batch 32)", "",
             "| video | decode fps | detector ms/frame | end-to-end fps (detect every 1) | (every 3) |",
             "|---|---|---|---|---|"]
    for r in results["videos"]:
        lines.append(f"| {r['size']} | {r['decode_fps']} | {r['detector_ms_per_frame']} | "
                     f"{r['end_to_end_fps_detect_every_1']} | {r['end_to_end_fps_detect_every_3']} |")
    (args.out / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
