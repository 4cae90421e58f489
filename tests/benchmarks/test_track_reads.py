import numpy as np

from benchmarks.track_reads import SIZE, assign, render_segment


def test_segment_zooms_in_on_the_plate():
    photo = np.full((300, 400, 3), 60, np.uint8)
    photo[140:160, 150:250] = 255  # a 100x20 "plate"
    frames = render_segment(photo, (150, 140, 100, 20), np.random.default_rng(0), 10, width_px=(30.0, 60.0))
    assert len(frames) == 10 and all(f.shape == (SIZE[1], SIZE[0], 3) and f.dtype == np.uint8 for f in frames)
    widths = [int(((f.mean(axis=2) > 160).sum(axis=0) > 0).sum()) for f in frames]
    assert 26 <= widths[0] <= 34 and 56 <= widths[-1] <= 64 and widths == sorted(widths)


def test_segment_reports_the_plate_box_of_every_frame():
    photo = np.full((300, 400, 3), 60, np.uint8)
    photo[140:160, 150:250] = 255
    boxes: list = []
    frames = render_segment(photo, (150, 140, 100, 20), np.random.default_rng(1), 6, plate_boxes=boxes)
    assert len(boxes) == 6
    for f, (x1, y1, x2, y2) in zip(frames, boxes):
        ys, xs = np.nonzero(f.mean(axis=2) > 160)
        assert abs(xs.min() - x1) <= 1.5 and abs(xs.max() + 1 - x2) <= 1.5
        assert abs(ys.min() - y1) <= 1.5 and abs(ys.max() + 1 - y2) <= 1.5


def test_each_segment_gets_the_track_that_covers_most_of_it():
    segments = [{"first_frame": 0, "last_frame": 44}, {"first_frame": 45, "last_frame": 89},
                {"first_frame": 90, "last_frame": 134}]
    report = {"tracks": [{"track_id": 1, "first_frame": 2, "last_frame": 44},
                         {"track_id": 2, "first_frame": 40, "last_frame": 50},   # straddles, mostly in none
                         {"track_id": 3, "first_frame": 51, "last_frame": 89}]}
    got = assign(segments, report)
    assert [t and t["track_id"] for t in got] == [1, 3, None]


def test_per_read_scores_every_read_of_each_segments_track(tmp_path):
    import json

    from benchmarks.track_reads import per_read

    def reads(*texts, source="enhanced", confidence=0.5):
        return [{"text": t, "confidence": confidence, "from": source} for t in texts]

    lines = [{"frame": 0, "track_id": 1, "reads": reads("AB123")},
             {"frame": 3, "track_id": 1, "reads": reads("AB128", confidence=0.3)},
             {"frame": 4, "track_id": 1}, {"frame": 5, "track_id": 2, "reads": reads("AB123")},  # track 2 is too short
             {"frame": 50, "track_id": 3, "reads": reads("XY9") + reads("XY6", source="bicubic")},
             {"frame": 60, "track_id": 3, "reads": reads("xy-9")}]
    path = tmp_path / "tracks.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    segments = [{"first_frame": 0, "last_frame": 44, "text": "AB123"},
                {"first_frame": 45, "last_frame": 89, "text": "XY9"}]
    report = {"tracks": [{"track_id": 1, "first_frame": 0, "last_frame": 4},
                         {"track_id": 2, "first_frame": 5, "last_frame": 5},
                         {"track_id": 3, "first_frame": 50, "last_frame": 60}]}
    assert per_read(segments, report, path) == {
        "reads": 5, "exact": 3,
        "by_source": {"enhanced": {"reads": 4, "exact": 3, "voted_exact": 2},
                      "bicubic": {"reads": 1, "exact": 0, "voted_exact": 0}}}
