"""Live stream slower to process than the camera: frames kept and dropped by the detector's interval.

    python -m benchmarks.live_interval --out benchmarks/results/live_interval

A rendered 1080p30 clip (``train.synth``, 3 plates) is served in real time by gst-rtsp-server on
127.0.0.1 (the test server of tests/stream/rtsp_server.py; its system packages come from
scripts/install-rtsp-test-deps.sh) and ``enhance-video rtsp://...`` runs on it for
``--seconds`` with each ``--max-detect-every`` value (``1``: the detector on every frame; more:
it adapts, see :mod:`stream.detect_interval`), the values alternating over ``--rounds``. From
each run's report.json: frames processed and dropped, processing fps, frames that went through
the detector, the largest lag, tracks and their voted reads. Writes live_interval.json, .md and
.png (frames kept vs dropped per run).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "stream"))
from rtsp_server import RtspServer, ensure_gst_rtsp, file_launch  # noqa: E402


def live_run(url: str, out: Path, seconds: float, max_every: int, extra: list[str]) -> dict:
    """One ``enhance-video`` run on ``url`` for ``seconds``; its report's figures."""
    proc = subprocess.run([sys.executable, "-m", "stream", url, "-o", str(out), "--duration", str(seconds), "-q",
                           "--status-interval", "0", "--max-detect-every", str(max_every), *extra],
                          capture_output=True, text=True, timeout=seconds + 180)
    if proc.returncode != 0:
        return {"max_detect_every": max_every, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    report = json.loads((out / "report.json").read_text())
    live, detection = report["live"], report.get("detection", {})
    return {"max_detect_every": max_every, "frames_processed": report["frames_processed"],
            "frames_dropped": live["frames_dropped"], "processing_fps": report["processing_fps"],
            "frames_detected": detection.get("frames_detected"), "times_raised": detection.get("times_raised", 0),
            "max_lag_s": live["max_lag_s"], "tracks": len(report["tracks"]),
            "reads": [t.get("read", "") for t in report["tracks"]]}


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "live_interval.json").write_text(json.dumps(results, indent=1))
    lines = ["# Live stream, detector interval fixed vs adaptive", "",
             f"`python -m benchmarks.live_interval {' '.join(results['argv'])}`: {results['clip']} served in real "
             f"time over RTSP (127.0.0.1), `enhance-video` on it for {results['seconds']} s per run, "
             f"{results['machine']['cpu']} ({' '.join(results['machine']['isa'])}), {results['machine']['cores']} "
             "cores. Frames processed + dropped = frames the camera sent in the "
             "run; mean detector interval = processed / detected.", "",
             "| round | --max-detect-every | frames processed | dropped | processing fps | frames detected "
             "| mean detector interval | times raised | max lag s | tracks | voted reads |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        if "error" in r:
            cells = [r["round"], r["max_detect_every"], f"failed: {r['error']}"] + [""] * 8
        else:
            interval = r["frames_processed"] / max(1, r["frames_detected"] or 0)
            cells = [r[k] for k in ("round", "max_detect_every", "frames_processed", "frames_dropped", "processing_fps",
                                    "frames_detected")]
            cells += [f"{interval:.2f}", r["times_raised"], r["max_lag_s"], r["tracks"], " ".join(r["reads"])]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    text = "\n".join(lines) + "\n"
    (out / "live_interval.md").write_text(text)
    plot(results, out / "live_interval.png")
    print(text, end="")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results["runs"] if "error" not in r]
    if not runs:
        return
    labels = [f"max {r['max_detect_every']}\nround {r['round']}" for r in runs]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(runs)), 3.6))
    kept = [r["frames_processed"] for r in runs]
    ax.bar(labels, kept, label="processed")
    ax.bar(labels, [r["frames_dropped"] for r in runs], bottom=kept, label="dropped", color="tab:red")
    ax.set(ylabel="frames", title=f"live {results.get('size', '')} 30 fps, {results['seconds']:g} s per run: "
                                  "--max-detect-every")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    from benchmarks.throughput import machine
    from train.synth.scenes import SceneConfig, write_scene_clip

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-detect-every", type=int, nargs="+", default=[1, 4, 6], metavar="N")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=25.0, help="length of each run (the clip is 5 s longer)")
    p.add_argument("--size", default="1920x1080", metavar="WxH")
    p.add_argument("--cli-args", default="", metavar="ARGS", help="more enhance-video options, one string")
    args = p.parse_args(argv)
    why = ensure_gst_rtsp(install=True)
    if why:
        raise SystemExit(f"live_interval: the RTSP server cannot run: {why}")
    w, h = (int(v) for v in args.size.split("x"))
    results = {"argv": list(argv if argv is not None else sys.argv[1:]), "seconds": args.seconds,
               "size": args.size, "machine": machine(), "runs": [],
               "clip": f"train.synth scene {w}x{h} 30 fps, 3 plates, seed 1, {args.seconds + 5:g} s"}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_scene_clip(Path(tmp) / "clip", SceneConfig(width=w, height=h, seconds=args.seconds + 5,
                                                                 n_plates=3), seed=1)
        for rnd in range(args.rounds):
            order = args.max_detect_every if rnd % 2 == 0 else list(reversed(args.max_detect_every))
            for n in order:
                with RtspServer(file_launch(clip.video_path)) as srv:
                    t = time.perf_counter()
                    row = live_run(srv.url, Path(tmp) / f"run_{rnd}_{n}", args.seconds, n, args.cli_args.split())
                results["runs"].append({"round": rnd, **row, "wall_s": round(time.perf_counter() - t, 1)})
                print(results["runs"][-1], flush=True)
                write_report(results, args.out)  # partial results survive a run cut short


if __name__ == "__main__":
    main()
