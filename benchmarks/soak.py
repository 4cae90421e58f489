"""Soak test of live mode (not run in CI): ``enhance-video`` on a local RTSP stream for N minutes
while the server is killed and restarted K times.

Measures every reconnect's time (from the server being back and listening to the pipeline's
first new connection; target: within 3 s) and the CLI process's resident memory over time
(target: flat after warm-up; the slope is fitted over the second half of the run). Writes
``soak.json`` and ``soak.png`` into ``--out``.

    python -m benchmarks.soak --minutes 30 --restarts 10          # the full soak
    python -m benchmarks.soak --minutes 5 --restarts 3 --no-sr    # a quick one

Needs the GStreamer RTSP server (scripts/install-rtsp-test-deps.sh) and psutil.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "stream"))
from rtsp_server import RtspServer, ensure_gst_rtsp, pattern_launch  # noqa: E402

from benchmarks.memory import rss_mb  # noqa: E402

RECONNECT_TARGET_S = 3.0


def soak(minutes: float, restarts: int, out: Path, width: int, height: int, fps: int, down_s: float,
         cli_args: list[str], sample_s: float = 2.0) -> dict:
    """Run the soak; returns the figures written to soak.json (times in s, memory in MiB)."""
    why = ensure_gst_rtsp(install=False)
    if why:
        raise SystemExit(f"soak: {why}")
    out.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="soak-run-"))
    duration = minutes * 60
    restart_at = [duration * (i + 1) / (restarts + 1) for i in range(restarts)]
    server = RtspServer(pattern_launch(width, height, fps, pattern="smpte"), shared=True).start()
    cmd = [sys.executable, "-m", "stream", server.url, "-o", str(run_dir), "--status-interval", "10",
           "--open-timeout", "3", "--read-timeout", "3", *cli_args]
    log = open(out / "soak_stderr.log", "w")
    cli = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    ps = psutil.Process(cli.pid)
    t0 = time.monotonic()
    samples: list[tuple[float, float]] = []
    restarts_done: list[dict] = []
    try:
        # Wait until the pipeline runs (models loaded, first connection made) before the clock starts.
        while not (run_dir / "events.jsonl").is_file() or (run_dir / "events.jsonl").stat().st_size == 0:
            if cli.poll() is not None or time.monotonic() - t0 > 120:
                raise SystemExit(f"soak: the CLI did not start; see {out / 'soak_stderr.log'}")
            time.sleep(0.2)
        t0 = time.monotonic()
        next_sample = 0.0
        while (elapsed := time.monotonic() - t0) < duration:
            if cli.poll() is not None:
                raise SystemExit(f"soak: the CLI exited early ({cli.returncode}); see {out / 'soak_stderr.log'}")
            if elapsed >= next_sample:
                samples.append((elapsed, rss_mb(ps)))
                next_sample += sample_s
            if restart_at and elapsed >= restart_at[0]:
                restart_at.pop(0)
                killed = time.time()
                server.restart(down_s=down_s)
                restarts_done.append({"killed": killed, "ready": time.time(), "at_s": round(elapsed, 1)})
            time.sleep(0.2)
        cli.send_signal(signal.SIGINT)
        code = cli.wait(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
        server.kill()
        log.close()
    events = [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]
    reconnected = [e for e in events if e["event"] == "reconnected"]
    for r in restarts_done:  # the first reconnection after each restart
        match = next((e for e in reconnected if e["time"] >= r["killed"]), None)
        r["reconnect_s"] = round(match["time"] - r["ready"], 3) if match else None
        r["outage_s"] = round(match["time"] - r["killed"], 3) if match else None
    report = json.loads((run_dir / "report.json").read_text())
    rss_figures = summarise_rss(samples, duration)
    times = [r["reconnect_s"] for r in restarts_done if r["reconnect_s"] is not None]
    figures = {
        "minutes": minutes, "restarts": restarts, "server_down_s": down_s, "stream": f"{width}x{height}@{fps}",
        "cli_args": cli_args, "exit_code": code,
        "reconnects_seen": len(reconnected), "reconnect_s": times,
        "reconnect_max_s": max(times) if times else None,
        "all_within_target": bool(times) and len(times) == restarts and max(times) <= RECONNECT_TARGET_S,
        **rss_figures,
        "frames_processed": report["frames_processed"], "live": report.get("live"),
        "restart_log": restarts_done, "rss_samples": [[round(a, 1), round(b, 1)] for a, b in samples],
    }
    (out / "soak.json").write_text(json.dumps(figures, indent=2))
    _plot(figures, out / "soak.png")
    return figures


def summarise_rss(samples: list[tuple[float, float]], duration_s: float) -> dict:
    """Memory figures from (s, MiB) samples. The slope is fitted over the second half only: the
    first minutes are warm-up (allocator pools, model workspaces) and say nothing about leaks."""
    t = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    half = t >= duration_s / 2
    slope = float(np.polyfit(t[half] / 60, rss[half], 1)[0]) if half.sum() > 2 else float("nan")
    return {"rss_first_mb": round(float(rss[0]), 1), "rss_at_half_mb": round(float(rss[half][0]), 1),
            "rss_end_mb": round(float(rss[-1]), 1), "rss_max_mb": round(float(rss.max()), 1),
            "rss_slope_mb_per_min": round(slope, 3)}


def _plot(fig: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s[0] / 60 for s in fig["rss_samples"]]
    rss = [s[1] for s in fig["rss_samples"]]
    f, (a, b) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    a.plot(t, rss, lw=1.2)
    for r in fig["restart_log"]:
        a.axvline(r["at_s"] / 60, color="tab:red", alpha=0.4, lw=1)
    a.set_xlabel("minutes"), a.set_ylabel("resident memory, MiB")
    a.set_title(f"RSS (second-half slope {fig['rss_slope_mb_per_min']} MiB/min); red: server restarts")
    a.set_ylim(0, max(rss) * 1.15)
    times = [r["reconnect_s"] or 0 for r in fig["restart_log"]]
    b.bar(range(1, len(times) + 1), times, color="tab:green")
    b.axhline(RECONNECT_TARGET_S, color="tab:red", ls="--", lw=1)
    b.set_xlabel("restart"), b.set_ylabel("reconnect time, s"), b.set_title("reconnects (target 3 s)")
    f.tight_layout()
    f.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--restarts", type=int, default=10)
    p.add_argument("--down", type=float, default=1.0, help="seconds the server stays down per restart")
    p.add_argument("--size", default="640x360", help="stream frame size WxH")
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "soak")
    args, cli_args = p.parse_known_args()  # anything else goes to enhance-video (e.g. --no-sr)
    w, h = (int(v) for v in args.size.split("x"))
    fig = soak(args.minutes, args.restarts, args.out, w, h, args.fps, args.down, cli_args)
    print(json.dumps({k: v for k, v in fig.items() if k not in ("rss_samples", "restart_log")}, indent=2))


if __name__ == "__main__":
    main()
