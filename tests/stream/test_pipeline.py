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
