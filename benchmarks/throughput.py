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


def time_detector(detector, frames: list[np.ndarray], batch: int) -> float:
    from dataclasses import replace

    detector.config = replace(detector.config, batch_size=batch)
    detector.detect(frames[:batch])  # warm-up
    t = time.perf_counter()
    detector.detect(frames)
    return (time.perf_counter() - t) / len(frames) * 1000


def generator_table(batches: tuple[int, ...], repeats: int, size: tuple[int, int] = (32, 96),
                    quick: bool = False) -> list[dict]:
    """Crops per second of the shipped generator by back end, precision and batch size."""
    from sr_model.backends import BackendUnavailable, create_runner
    from sr_model.weights import load_generator

    model, _ = load_generator()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    variants = [("eager", "fp32", False), ("eager", "fp32", True), ("eager", "bf16", True), ("compile", "fp32", False),
                ("onnx", "fp32", False)]
    if device == "cuda":
        variants += [("eager", "fp16", True), ("tensorrt", "fp16", False)]
    if quick:  # compile alone takes a minute on CPU
        variants = [("eager", "fp32", False), ("onnx", "fp32", False)]
    rows = []
    for backend, precision, cl in variants:
        try:
            _, run = create_runner(model, backend, device, precision, cl)
        except BackendUnavailable as exc:
            rows.append({"backend": backend, "precision": precision, "channels_last": cl, "skipped": str(exc)})
            continue
        for b in batches:
            x = torch.rand(b, 3, *size, device=device)
            run(x)  # warm-up (and compilation)
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(repeats):
                run(x)
            if device == "cuda":
                torch.cuda.synchronize()
            rows.append({"backend": backend, "precision": precision, "channels_last": cl, "batch": b,
                         "crops_per_s": round(b * repeats / (time.perf_counter() - t), 1)})
        print(rows[-1], flush=True)
    return rows


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    gen = [r for r in results["generator"] if "crops_per_s" in r]
    for key in dict.fromkeys((r["backend"], r["precision"], r["channels_last"]) for r in gen):
        pts = [r for r in gen if (r["backend"], r["precision"], r["channels_last"]) == key]
        label = f"{key[0]} {key[1]}" + (" CL" if key[2] else "")
        axes[0].plot([r["batch"] for r in pts], [r["crops_per_s"] for r in pts], marker="o", label=label)
    axes[0].set(xscale="log", xlabel="batch (crops of 32x96)", ylabel="crops / s", title="generator x4")
    axes[0].legend(fontsize=8)
    vids = results["videos"]
    keys = [k for k in vids[0] if k.startswith("end_to_end_fps")] if vids else []
    for i, k in enumerate(keys):
        axes[1].bar([j + i * 0.35 for j in range(len(vids))], [v[k] for v in vids], width=0.35,
                    label=k.replace("end_to_end_fps_", "").replace("_", " "))
    axes[1].set_xticks([j + 0.17 for j in range(len(vids))], [v["size"] for v in vids])
    axes[1].set(ylabel="frames / s", title="end to end (decode → encode)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{results['machine']['cpu']} x{results['machine']['cores']}, gpu={results['machine']['gpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each test clip")
    p.add_argument("--quick", action="store_true", help="1-second 360p clip only")
    args = p.parse_args(argv)

    from sr_model.enhancer import PlateEnhancer
    from stream.pipeline import EnhancePipeline
    from stream.source import VideoSource, read_frames
    from tracker.detector import PlateDetector
    from train.synth.scenes import SceneConfig, write_scene_clip

    detector, enhancer = PlateDetector(), PlateEnhancer()
    sizes = [(640, 360)] if args.quick else [(1280, 720), (1920, 1080)]
    seconds = 1.0 if args.quick else args.seconds
    results = {"machine": machine(),
               "generator": generator_table((8,) if args.quick else (1, 8, 32), repeats=1 if args.quick else 3,
                                            quick=args.quick),
               "videos": []}
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
            row["generator_backend"] = enhancer.backend
            results["videos"].append(row)
            print(row, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(results, indent=2))
    lines = [f"Machine: {results['machine']}", "",
             "Generator ×4 on 32x96 crops:", "", "| back end | precision | channels_last | batch | crops/s |",
             "|---|---|---|---|---|",
             *[f"| {g['backend']} | {g['precision']} | {g['channels_last']} | {g.get('batch', '-')} | "
               f"{g.get('crops_per_s', 'skipped: ' + g.get('skipped', ''))} |" for g in results["generator"]], "",
             "| video | decode fps | detector ms/frame | end-to-end fps (detect every 1) | (every 3) |",
             "|---|---|---|---|---|"]
    for r in results["videos"]:
        lines.append(f"| {r['size']} | {r['decode_fps']} | {r['detector_ms_per_frame']} | "
                     f"{r['end_to_end_fps_detect_every_1']} | {r['end_to_end_fps_detect_every_3']} |")
    (args.out / "throughput.md").write_text("\n".join(lines) + "\n")
    plot(results, args.out / "throughput.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
