"""Memory against video length (not run in CI): ``enhance-video`` on a 1-minute and a 10-minute
clip of the same kind; the peak resident memory must not grow with the length (target: the long
clip peaks within 10 % of the short one).

The clips are built from distinct rendered segments (``train.synth.scenes``, new plates in every
segment, so the number of tracks grows with the length as it does on a real road), rendered once
and concatenated by stream copy (no re-encode) to the wanted length; a repeated segment is a new
stretch of video to the pipeline (new timestamps, new track ids).

    python -m benchmarks.memory --out benchmarks/results/memory                  # 1 and 10 min
    python -m benchmarks.memory --out /tmp/mem --minutes 0.2 1 -- --no-sr         # quick, no SR

Everything after ``--`` is passed to ``enhance-video``. Writes ``memory.json``, ``memory.md`` and
``memory.png`` (resident memory against video time for each length) into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import psutil
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.10  # the long clip's peak RSS may exceed the short one's by at most 10 %


def render_segments(folder: Path, n: int, seconds: float, width: int, height: int, fps: float,
                    seed: int = 0) -> list[Path]:
    """``n`` distinct rendered clips (``seg_K/clip.mp4``), reused when already in ``folder``."""
    from train.synth.scenes import SceneConfig, write_scene_clip

    cfg = SceneConfig(width=width, height=height, fps=fps, seconds=seconds, n_plates=4,
                      plate_width_px=(30.0, 90.0), enter_leave=0.5)
    paths = []
    for k in tqdm(range(n), desc="render segments", unit="seg", leave=False):
        seg = folder / f"seg_{k}"
        clip = seg / "clip.mp4"
        if not clip.is_file():
            write_scene_clip(seg, cfg, seed=seed + k)
        paths.append(clip)
    return paths


def concat_clips(segments: list[Path], out: Path, seconds: float) -> int:
    """Stream-copy ``segments`` (cycled) into ``out`` until it holds ``seconds`` of video; returns
    the number of packets (frames) written. Every segment must share codec settings and size."""
    import av

    written, offset = 0, 0
    with av.open(str(segments[0])) as first:
        src_stream = first.streams.video[0]
        rate = src_stream.average_rate or Fraction(30)
        n_total = int(round(seconds * float(rate)))
        with av.open(str(out), mode="w") as dst:
            stream = dst.add_stream_from_template(src_stream)
            k = 0
            while written < n_total:
                with av.open(str(segments[k % len(segments)])) as src:
                    s = src.streams.video[0]
                    last = offset
                    for packet in src.demux(s):
                        if packet.dts is None or written >= n_total:
                            continue
                        packet.pts += offset
                        packet.dts += offset
                        last = max(last, packet.pts + (packet.duration or 0))
                        packet.stream = stream
                        dst.mux(packet)
                        written += 1
                    offset = last
                k += 1
    return written


def rss_mb(proc: psutil.Process) -> float:
    """Resident memory of the process and its children, MiB."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def run_cli(clip: Path, out_dir: Path, cli_args: list[str], sample_s: float = 0.5) -> dict:
    """Run ``enhance-video clip`` and sample its resident memory; returns the samples (wall s,
    MiB), the peak, the wall time and the run's report figures."""
    cmd = [sys.executable, "-m", "stream", str(clip), "-o", str(out_dir), "--quiet", *cli_args]
    t0 = time.monotonic()
    with open(out_dir.parent / f"{out_dir.name}_stderr.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
        ps = psutil.Process(proc.pid)
        samples: list[tuple[float, float]] = []
        while proc.poll() is None:
            try:
                samples.append((time.monotonic() - t0, rss_mb(ps)))
            except psutil.NoSuchProcess:
                break
            time.sleep(sample_s)
    if proc.returncode != 0:
        raise SystemExit(f"memory: enhance-video exited with {proc.returncode}; see {log.name}")
    report = json.loads((out_dir / "report.json").read_text())
    return {"wall_s": round(time.monotonic() - t0, 1), "peak_rss_mb": round(max(m for _, m in samples), 1),
            "frames_processed": report.get("frames_processed"), "tracks": len(report.get("tracks", [])),
            "samples": [[round(t, 1), round(m, 1)] for t, m in samples]}


def _plot(runs: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, r in runs.items():
        t = [s[0] / r["wall_s"] for s in r["samples"]]
        ax.plot(t, [s[1] for s in r["samples"]], lw=1.2, label=f"{name} clip (peak {r['peak_rss_mb']:.0f} MiB)")
    ax.set_xlabel("fraction of the run"), ax.set_ylabel("resident memory, MiB")
    ax.set_ylim(bottom=0), ax.grid(alpha=0.3), ax.legend()
    ax.set_title("enhance-video: memory against video length")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    cli_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, cli_args = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0], help="clip lengths (default 1 10)")
    p.add_argument("--size", default="640x360", help="frame size WxH (default 640x360)")
    p.add_argument("--fps", type=float, default=15.0, help="frame rate (default 15)")
    p.add_argument("--segments", type=int, default=6, help="distinct 10-s segments (default 6)")
    p.add_argument("--work", type=Path, default=None, help="folder for the clips (default: a temp dir)")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    work = args.work or Path(tempfile.mkdtemp(prefix="memory-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)

    segments = render_segments(work / "segments", args.segments, 10.0, width, height, args.fps)
    runs: dict[str, dict] = {}
    for minutes in args.minutes:
        name = f"{minutes:g} min"
        clip = work / f"clip_{minutes:g}min.mp4"
        frames = concat_clips(segments, clip, minutes * 60)
        print(f"{name}: {frames} frames, running enhance-video ...", flush=True)
        runs[name] = {"minutes": minutes, "frames": frames, **run_cli(clip, work / f"out_{minutes:g}min", cli_args)}
        print(f"{name}: peak {runs[name]['peak_rss_mb']} MiB in {runs[name]['wall_s']} s", flush=True)

    short, long_ = runs[min(runs, key=lambda k: runs[k]["minutes"])], runs[max(runs, key=lambda k: runs[k]["minutes"])]
    ratio = long_["peak_rss_mb"] / short["peak_rss_mb"]
    summary = {
        "clip": f"{width}x{height}@{args.fps:g} H.264, {args.segments} distinct 10-s rendered segments cycled",
        "cli_args": cli_args, "machine": {"cpu": platform.processor() or platform.machine(),
                                          "cores": psutil.cpu_count(), "python": platform.python_version()},
        "peak_ratio_long_over_short": round(ratio, 3), "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO, "runs": runs,
    }
    (args.out / "memory.json").write_text(json.dumps(summary, indent=2))
    rows = "\n".join(f"| {k} | {r['frames']} | {r['tracks']} | {r['wall_s']} | {r['peak_rss_mb']} |" for k, r in runs.items())
    md = (f"# Memory against video length\n\n`python -m benchmarks.memory {' '.join(sys.argv[1:])}`\n\n"
          f"Clip: {summary['clip']}; enhance-video args: `{' '.join(cli_args) or '(defaults)'}`.\n\n"
          "| clip | frames | tracks | wall s | peak RSS MiB |\n|---|---:|---:|---:|---:|\n" + rows +
          f"\n\nPeak ratio long / short: {ratio:.3f} (target ≤ {TARGET_RATIO}): "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}.\n")
    (args.out / "memory.md").write_text(md)
    _plot(runs, args.out / "memory.png")
    print(md)
    return summary


if __name__ == "__main__":
    main()
