"""End to end on a generated 3-second clip the models never trained on."""
import json

import numpy as np
import pytest

from benchmarks.detection import box_iou
from stream.source import read_frames


@pytest.fixture(scope="module")
def run_result(clip_3s, tmp_path_factory):
    from stream.cli import main

    out = tmp_path_factory.mktemp("e2e")
    assert main([str(clip_3s.video_path), "-o", str(out), "--quiet"]) == 0
    return out


def test_output_video_has_input_frame_count_and_size(clip_3s, run_result):
    frames = read_frames(run_result / "annotated.mp4")
    assert len(frames) == clip_3s.n_frames
    assert frames[0].shape[:2] == (clip_3s.height, clip_3s.width)


def test_tracks_cover_every_plate_mostly_under_one_id(clip_3s, run_result):
    lines = [json.loads(ln) for ln in (run_result / "tracks.jsonl").read_text().splitlines()]
    assert lines and {"frame", "time_s", "box", "score", "track_id"} <= set(lines[0])
    by_frame: dict[int, list] = {}
    for ln in lines:
        by_frame.setdefault(ln["frame"], []).append(ln)
    for plate_id in {p.track_id for plates in clip_3s.frames for p in plates}:
        ids, seen = [], 0
        for f, plates in enumerate(clip_3s.frames):
            truth = [p for p in plates if p.track_id == plate_id and p.visibility >= 0.5]
            if not truth:
                continue
            seen += 1
            cands = by_frame.get(f, [])
            if cands:
                iou = box_iou(truth[0].box[None], np.array([c["box"] for c in cands]))[0]
                if iou.max() >= 0.3:
                    ids.append(cands[int(iou.argmax())]["track_id"])
        assert len(ids) >= 0.8 * seen, f"plate {plate_id}: tracked in {len(ids)} of {seen} frames"
        main_id_share = max(ids.count(i) for i in set(ids)) / len(ids)
        assert main_id_share >= 0.8, f"plate {plate_id} split over ids {sorted(set(ids))}"


def test_report_and_best_crops_per_track(run_result):
    report = json.loads((run_result / "report.json").read_text())
    assert report["tracks"], "no tracks reported"
    for t in report["tracks"]:
        assert (run_result / t["best_crop"]).is_file()
        assert t["first_frame"] <= t["best_frame"] <= t["last_frame"]


def test_reconnect_resets_tracker_keeps_ids_unique_and_letterboxes(clip_3s, tmp_path):
    """A live source that reconnects at another frame size: the tracker starts afresh (no track
    carries over), ids stay unique, the recording keeps its size, and events.jsonl says so."""
    import cv2

    from stream.live import LIVE_TIME_BASE, LiveConfig, LiveSource, StreamEvent
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import SourceInfo
    from stream.status import LiveStats
    from stream.types import Frame
    from tracker.detector import DetectorConfig, PlateDetector

    frames = read_frames(clip_3s.video_path)[:40]

    class ReconnectingSource(LiveSource):
        def __init__(self) -> None:  # no network: replays frames with a reconnection in the middle
            self.info = SourceInfo(640, 360, 30.0, 0, LIVE_TIME_BASE, "h264", None)
            self.display_name, self.stats, self.config = "rtsp://***@cam/1", LiveStats(), LiveConfig()

        def __iter__(self):
            yield StreamEvent("connected", (640, 360))
            for i, f in enumerate(frames[:20]):
                yield Frame(i, i / 30, f)
            self.stats.reconnects = 1
            yield StreamEvent("reconnected", (960, 540), size_changed=True, down_s=1.5, reason="test")
            for i, f in enumerate(frames[20:]):
                yield Frame(20 + i, 2 + i / 30, cv2.resize(f, (960, 540)))

        def close(self) -> None:
            pass

    pipe = EnhancePipeline(PlateDetector(config=DetectorConfig(conf=0.1)), None,
                           PipelineConfig(enhance=False, detect_batch=1))
    result = pipe.run(ReconnectingSource(), tmp_path, progress=False)
    assert result.frames == 40
    lines = [json.loads(ln) for ln in (tmp_path / "tracks.jsonl").read_text().splitlines()]
    before = {ln["track_id"] for ln in lines if ln["frame"] < 20}
    after = {ln["track_id"] for ln in lines if ln["frame"] >= 20}
    assert before and after and not before & after, (before, after)
    assert {f.shape for f in read_frames(tmp_path / "annotated.mp4")} == {(360, 640, 3)}
    events = [json.loads(ln) for ln in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["connected", "reconnected"] and events[1]["size"] == [960, 540]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["live"]["reconnects"] == 1 and report["input"] == "rtsp://***@cam/1"
    assert all((tmp_path / t["best_crop"]).is_file() for t in report["tracks"] if t["best_crop"])


def test_best_crops_are_on_disk_while_the_run_goes_on(clip_3s, tmp_path):
    """Evidence crops are written when chosen (not only at the end), so a killed run keeps them."""
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    seen_during_run: list[int] = []

    class Watching(VideoSource):
        def __iter__(self):
            for item in super().__iter__():
                seen_during_run.append(len(list((tmp_path / "crops").glob("track_*_enhanced.png"))))
                yield item

    pipe = EnhancePipeline(PlateDetector(), None, PipelineConfig(enhance=False, crop_every_s=0.0))
    with Watching(clip_3s.video_path) as src:
        pipe.run(src, tmp_path, progress=False)
    assert max(seen_during_run) >= 1
