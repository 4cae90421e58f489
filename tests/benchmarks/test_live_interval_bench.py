import json
import os

import pytest


@pytest.mark.skipif(os.environ.get("LICENSE_ENHANCER_SKIP_RTSP") == "1", reason="LICENSE_ENHANCER_SKIP_RTSP=1")
def test_live_interval_benchmark_writes_its_table(tmp_path):
    from benchmarks.live_interval import main

    main(["--out", str(tmp_path), "--size", "320x192", "--seconds", "3", "--rounds", "1",
          "--max-detect-every", "1", "3", "--cli-args=--no-sr --no-read"])
    runs = json.loads((tmp_path / "live_interval.json").read_text())["runs"]
    assert [r["max_detect_every"] for r in runs] == [1, 3] and all("error" not in r for r in runs), runs
    for r in runs:  # every frame the camera sent is either processed or dropped, and counted
        assert r["frames_processed"] > 0 and r["frames_detected"] <= r["frames_processed"]
    assert runs[0]["frames_detected"] == runs[0]["frames_processed"]  # fixed: the detector on every frame
    assert (tmp_path / "live_interval.md").read_text().count("\n| 0 |") == 2
    assert (tmp_path / "live_interval.png").stat().st_size > 0
