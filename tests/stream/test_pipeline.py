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


def plate_track_ids(clip, run_dir) -> dict[int, tuple[list[int], int]]:
    """Per true plate of ``clip``: the output track id overlapping it (IoU >= 0.3) in each frame
    where it is at least half visible and some track does, and the number of such frames."""
    lines = [json.loads(ln) for ln in (run_dir / "tracks.jsonl").read_text().splitlines()]
    assert lines and {"frame", "time_s", "box", "score", "track_id"} <= set(lines[0])
    by_frame: dict[int, list] = {}
    for ln in lines:
        by_frame.setdefault(ln["frame"], []).append(ln)
    out = {}
    for plate_id in {p.track_id for plates in clip.frames for p in plates}:
        ids, seen = [], 0
        for f, plates in enumerate(clip.frames):
            truth = [p for p in plates if p.track_id == plate_id and p.visibility >= 0.5]
            if not truth:
                continue
            seen += 1
            cands = by_frame.get(f, [])
            if cands:
                iou = box_iou(truth[0].box[None], np.array([c["box"] for c in cands]))[0]
                if iou.max() >= 0.3:
                    ids.append(cands[int(iou.argmax())]["track_id"])
        out[plate_id] = (ids, seen)
    return out


def test_tracks_cover_every_plate_mostly_under_one_id(clip_3s, run_result):
    for plate_id, (ids, seen) in plate_track_ids(clip_3s, run_result).items():
        assert len(ids) >= 0.8 * seen, f"plate {plate_id}: tracked in {len(ids)} of {seen} frames"
        main_id_share = max(ids.count(i) for i in set(ids)) / len(ids)
        assert main_id_share >= 0.8, f"plate {plate_id} split over ids {sorted(set(ids))}"


def test_report_and_best_crops_per_track(run_result):
    report = json.loads((run_result / "report.json").read_text())
    assert report["tracks"], "no tracks reported"
    for t in report["tracks"]:
        assert (run_result / t["best_crop"]).is_file()
        assert t["first_frame"] <= t["best_frame"] <= t["last_frame"]


def test_default_run_reads_the_plates_with_the_independent_ocr(clip_3s, run_result):
    """The CLI's default run reads plates (RapidOCR on the bicubic x4 crops, voted per track); on
    this clip every plate's track reads close to its plate, at least one exactly, and a track on
    something else (the detector's weak false positives: here a row of windows cut by the frame's
    edge) reads with a lower confidence than every plate's track."""
    from benchmarks.ocr import char_accuracy

    report = json.loads((run_result / "report.json").read_text())
    assert report["reads"]["enabled"] and report["reads"]["done"] > 0 and report["reads"]["dropped"] == 0
    truths = [text for text, _ in clip_3s.plates.values()]
    read = [t for t in report["tracks"] if t["read"]]
    assert read
    on_plates = {max(set(ids), key=ids.count) for ids, _ in plate_track_ids(clip_3s, run_result).values() if ids}
    plate_reads = [t for t in read if t["track_id"] in on_plates]
    assert plate_reads
    exact = 0
    for t in read:
        assert (run_result / t["read_crop"]).is_file() and t["n_reads"] >= t["read_support"] >= 1
    for t in plate_reads:
        best = max(char_accuracy(t["read"], truth) for truth in truths)
        assert best >= 0.5, (t["read"], truths)
        exact += t["read"] in truths
    assert exact >= 1, ([t["read"] for t in read], truths)
    lowest_plate = min(t["read_confidence"] for t in plate_reads)
    assert all(t["read_confidence"] < lowest_plate for t in read if t["track_id"] not in on_plates)
    lines = [json.loads(ln) for ln in (run_result / "tracks.jsonl").read_text().splitlines()]
    assert sum(len(ln.get("reads", [])) for ln in lines) == report["reads"]["done"]
    # by default each due plate's bicubic x4 upscale is read (the image the OCR reads best)
    sources = [r["from"] for ln in lines for r in ln.get("reads", [])]
    assert set(sources) == {"bicubic"}
    assert report["reads"]["source"] == "bicubic x4"


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


# --------------------------------------------------------------------------- reads and fusion
class _FakeEnhancer:
    """×4 bicubic in place of the generator (fast, deterministic)."""

    scale = 4

    def __init__(self) -> None:
        self.calls = 0

    def enhance(self, crops):
        import cv2

        self.calls += len(crops)
        return [cv2.resize(c, (c.shape[1] * 4, c.shape[0] * 4), interpolation=cv2.INTER_CUBIC) for c in crops]


class _FakeFusion:
    """Records the sequences it is given; its output is a flat grey plate (value 77), so a fused
    image is recognisable wherever it ends up."""

    scale = 4

    def __init__(self, k: int) -> None:
        from types import SimpleNamespace

        self.config = SimpleNamespace(k=k)
        self.sequences: list[list[np.ndarray]] = []

    def enhance(self, sequences):
        from types import SimpleNamespace

        self.sequences += sequences
        return [SimpleNamespace(image=np.full((s[-1].shape[0] * 4, s[-1].shape[1] * 4, 3), 77, np.uint8),
                                frames_used=len(s), frames_dropped=0) for s in sequences]


class _ScriptedReader:
    """Answers reads from a script, in turn: a plate mostly read right, sometimes with one wrong
    character or empty."""

    def __init__(self, script=(("AB-123", 0.9), ("A8123", 0.6), ("AB123", 0.8), ("", 0.0))) -> None:
        from stream.reads import Read

        self.script = [Read(t, s) for t, s in script]
        self.images: list[np.ndarray] = []

    def read(self, images):
        out = []
        for im in images:
            out.append(self.script[len(self.images) % len(self.script)])
            self.images.append(im)
        return out


def test_reads_are_voted_per_track_and_written_with_their_evidence(clip_3s, tmp_path):
    import cv2

    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    reader = _ScriptedReader()
    pipe = EnhancePipeline(PlateDetector(), _FakeEnhancer(), PipelineConfig(sr_interval_s=0.2, fuse_k=0,
                                                                            read_from="enhanced"), reader=reader)
    with VideoSource(clip_3s.video_path) as src:
        result = pipe.run(src, tmp_path, progress=False)
    lines = [json.loads(ln) for ln in (tmp_path / "tracks.jsonl").read_text().splitlines()]
    with_read = [ln for ln in lines if "reads" in ln]
    # one read per enhancement: the SR throttle (0.2 s at 30 fps) decides, nothing else
    assert len(with_read) == len(reader.images) == sum(t.enhanced for t in result.tracks)
    by_track: dict[int, list[float]] = {}
    for ln in with_read:
        assert ln["read_frame"] == ln["frame"]  # files read inline
        assert [r["from"] for r in ln["reads"]] == ["enhanced"]
        assert ln["reads"][0]["text"] in ("AB123", "A8123", "")
        by_track.setdefault(ln["track_id"], []).append(ln["time_s"])
    for times in by_track.values():
        assert all(b - a >= 0.2 - 1e-6 for a, b in zip(times, times[1:]))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["reads"]["enabled"] and report["reads"]["mode"] == "inline"
    assert report["reads"]["done"] == len(reader.images)
    read_tracks = [t for t in report["tracks"] if t["n_reads"]]
    assert read_tracks
    for t in read_tracks:
        assert t["read"] == "AB123"  # 0.9 + 0.8 outvote 0.6 at the second character
        assert 0 < t["read_confidence"] < 1
        assert t["first_frame"] <= t["read_frame"] <= t["last_frame"]
        evidence = cv2.imread(str(tmp_path / t["read_crop"]))
        assert evidence is not None and evidence.shape[0] > 0
        # the evidence is the image the OCR was given on that frame
        assert any(im.shape == evidence.shape and np.array_equal(im, evidence) for im in reader.images)


def test_settled_plates_are_read_less_often(clip_3s, tmp_path):
    """Once a track's reads agree (8 reads, the latest too), it is read about once per
    ``reread_settled_s`` instead of on every enhanced crop; the skipped reads are counted."""
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    reader = _ScriptedReader(script=(("AB123", 0.9),))
    pipe = EnhancePipeline(PlateDetector(), _FakeEnhancer(), PipelineConfig(sr_interval_s=0.0, fuse_k=0,
                                                                            read_from="enhanced",
                                                                            reread_settled_s=1.0), reader=reader)
    with VideoSource(clip_3s.video_path) as src:
        result = pipe.run(src, tmp_path, progress=False)
    report = json.loads((tmp_path / "report.json").read_text())
    reads = report["reads"]
    enhanced = sum(t.enhanced for t in result.tracks)
    assert reads["done"] == len(reader.images) and reads["done"] + reads["skipped_settled"] == enhanced
    assert reads["skipped_settled"] > reads["done"]  # 3 s at 30 fps: ~90 crops a track, ~8 + 3 reads
    lines = [json.loads(ln) for ln in (tmp_path / "tracks.jsonl").read_text().splitlines()]
    by_track: dict[int, list[float]] = {}
    for ln in lines:
        if "reads" in ln:
            by_track.setdefault(ln["track_id"], []).append(ln["time_s"])
    for t in report["tracks"]:
        if t["n_reads"]:
            assert t["read"] == "AB123"
    for times in by_track.values():
        assert len(times) >= 8
        # after the 8 settling reads, reads are a second apart unless the plate came closer
        # (its crop 20 % wider than in any read before)
        assert len(times) <= 8 + 2 * 3 + 1

    pipe = EnhancePipeline(PlateDetector(), _FakeEnhancer(), PipelineConfig(sr_interval_s=0.0, fuse_k=0,
                                                                            read_from="enhanced",
                                                                            reread_settled_s=0.0),
                           reader=_ScriptedReader(script=(("AB123", 0.9),)))
    with VideoSource(clip_3s.video_path) as src:
        result = pipe.run(src, tmp_path / "every", progress=False)
    report = json.loads((tmp_path / "every" / "report.json").read_text())
    assert report["reads"]["skipped_settled"] == 0
    assert report["reads"]["done"] == sum(t.enhanced for t in result.tracks)

    # without SR the reads keep the SR pace (a chance every 0.2 s a track), thinned the same way
    pipe = EnhancePipeline(PlateDetector(), None, PipelineConfig(enhance=False, sr_interval_s=0.2, fuse_k=0),
                           reader=_ScriptedReader(script=(("AB123", 0.9),)))
    with VideoSource(clip_3s.video_path) as src:
        result = pipe.run(src, tmp_path / "no_sr", progress=False)
    reads = json.loads((tmp_path / "no_sr" / "report.json").read_text())["reads"]
    chances = sum(int((t.last_s - t.first_s) * 5) + 2 for t in result.tracks)
    assert reads["skipped_settled"] > 0 and reads["done"] + reads["skipped_settled"] <= chances


def test_both_reads_each_due_plate_enhanced_and_bicubic_in_one_vote(clip_3s, tmp_path):
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    class Negated(_FakeEnhancer):  # an "enhanced" image that cannot be mistaken for the bicubic one
        def enhance(self, crops):
            return [255 - im for im in super().enhance(crops)]

    reader = _ScriptedReader()
    enhancer = Negated()
    pipe = EnhancePipeline(PlateDetector(), enhancer, PipelineConfig(sr_interval_s=0.2, fuse_k=0, read_from="both"),
                           reader=reader)
    with VideoSource(clip_3s.video_path) as src:
        result = pipe.run(src, tmp_path, progress=False)
    lines = [json.loads(ln) for ln in (tmp_path / "tracks.jsonl").read_text().splitlines()]
    with_read = [ln for ln in lines if "reads" in ln]
    enhanced = sum(t.enhanced for t in result.tracks)
    assert len(with_read) == enhanced and len(reader.images) == 2 * enhanced
    for ln in with_read:
        assert [r["from"] for r in ln["reads"]] == ["enhanced", "bicubic"]
    # the bicubic read is of the plain x4 upscale, the other of the generator's output
    assert not np.array_equal(reader.images[0], reader.images[1])
    assert np.array_equal(255 - reader.images[0], reader.images[1])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["reads"]["source"] == "enhanced + bicubic x4" and report["reads"]["done"] == 2 * enhanced
    with pytest.raises(ValueError, match="read_from"):
        EnhancePipeline(PlateDetector(), enhancer, PipelineConfig(read_from="sharpest"))


def test_no_reader_means_no_read_fields(clip_3s, tmp_path):
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    pipe = EnhancePipeline(PlateDetector(), None, PipelineConfig(enhance=False))
    with VideoSource(clip_3s.video_path) as src:
        pipe.run(src, tmp_path, progress=False)
    assert '"read' not in (tmp_path / "tracks.jsonl").read_text()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["reads"] == {"enabled": False} and all(t["read"] == "" for t in report["tracks"])
    assert not list((tmp_path / "crops").glob("*_read.png"))


def test_no_video_writes_the_same_tracks_reports_and_crops_without_the_video(clip_3s, tmp_path):
    """--no-video: nothing drawn or encoded, and the tracks, report and crops are those of the
    run with the video (the frames the models see are not the drawn ones)."""
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    detector = PlateDetector()
    runs = {}
    for video in (True, False):
        out = tmp_path / f"video_{video}"
        with VideoSource(clip_3s.video_path) as src:
            result = EnhancePipeline(detector, None, PipelineConfig(enhance=False, video=video)).run(
                src, out, progress=False)
        runs[video] = (out, result)
    (with_video, r1), (without, r2) = runs[True], runs[False]
    assert (with_video / "annotated.mp4").is_file() and r1.video == with_video / "annotated.mp4"
    assert not (without / "annotated.mp4").exists() and r2.video is None
    assert (without / "tracks.jsonl").read_text() == (with_video / "tracks.jsonl").read_text()
    report = json.loads((without / "report.json").read_text())
    assert report["outputs"]["video"] is None and report["frames_processed"] == clip_3s.n_frames
    assert [t["track_id"] for t in report["tracks"]] == [t.track_id for t in r1.tracks]
    assert sorted(p.name for p in (without / "crops").iterdir()) == sorted(p.name for p in (with_video / "crops").iterdir())


def test_video_height_scales_the_annotated_video_only(clip_3s, tmp_path):
    """--video-height: the annotated video is scaled down and drawn at its own size (boxes where
    the plates are in it); the models still see full frames, so tracks and crops are unchanged."""
    import cv2

    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.sink import video_size
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    w, h = clip_3s.size
    small = h // 2
    detector = PlateDetector()
    outs = {}
    for height in (None, small):
        outs[height] = tmp_path / f"h{height}"
        with VideoSource(clip_3s.video_path) as src:
            EnhancePipeline(detector, None, PipelineConfig(enhance=False, video_height=height)).run(
                src, outs[height], progress=False)
    assert (outs[small] / "tracks.jsonl").read_text() == (outs[None] / "tracks.jsonl").read_text()
    vw, vh = video_size(w, h, small)
    assert vh == small - small % 2 and abs(vw / vh - w / h) < 0.02
    frames = read_frames(outs[small] / "annotated.mp4")
    assert len(frames) == clip_3s.n_frames and frames[0].shape[:2] == (vh, vw)
    # Something is drawn around each detected plate's box, scaled into the small frame.
    inputs = read_frames(clip_3s.video_path)
    lines = [json.loads(ln) for ln in (outs[small] / "tracks.jsonl").read_text().splitlines()]
    k = next(ln["frame"] for ln in lines if ln["detected"] and ln["frame"] >= 10)
    plain = cv2.resize(inputs[k], (vw, vh), interpolation=cv2.INTER_AREA)
    diff = np.abs(frames[k].astype(int) - plain.astype(int)).mean(axis=2)
    on_k = [ln for ln in lines if ln["frame"] == k and ln["detected"]]
    assert len(on_k) >= 2  # the two plates (and a weak false box on a window row at the frame's edge)
    for line in on_k:
        x1, y1, x2, y2 = (round(v * vh / h) for v in line["box"])
        edge = np.concatenate([diff[max(0, y1 - 1): y1 + 2, x1:x2].ravel(), diff[y1:y2, max(0, x1 - 1): x1 + 2].ravel()])
        assert edge.mean() > 5 * max(1.0, np.median(diff)), (line["box"], edge.mean(), np.median(diff))
    assert video_size(w, h, None) == (w, h) and video_size(w, h, 2 * h) == (w, h)
    assert video_size(3840, 2160, 1080) == (1920, 1080) and video_size(1920, 1080, 721) == (1280, 720)


def test_still_scenes_skip_the_detector_and_keep_their_tracks(clip_3s, tmp_path):
    """--skip-still: 2 s of a still scene (one frame of the clip, new sensor noise on each) and
    then the plates moving: the still frames skip the detector except about once a second and
    until new tracks are confirmed, the parked plates keep one track each through them, and the
    moving part is detected as before."""
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.sink import VideoSink
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    with VideoSource(clip_3s.video_path) as src:
        info = src.info
    frames = read_frames(clip_3s.video_path)
    rng = np.random.default_rng(0)
    clip = tmp_path / "still_then_moving.mp4"
    sink = VideoSink(clip, info.width, info.height, info.fps, info.time_base, crf=18)
    n_still = 60
    images = [np.clip(frames[45] + rng.normal(0, 2, frames[45].shape), 0, 255).astype(np.uint8)
              for _ in range(n_still)] + frames[45:]
    for i, im in enumerate(images):
        sink.write(im, i / info.fps)
    sink.close()
    detector = PlateDetector()
    runs = {}
    for skip in (0.0, 1.0):
        out = tmp_path / f"skip{skip}"
        with VideoSource(clip) as src:
            EnhancePipeline(detector, None, PipelineConfig(enhance=False, video=False, skip_still_s=skip)).run(
                src, out, progress=False)
        lines = [json.loads(ln) for ln in (out / "tracks.jsonl").read_text().splitlines()]
        runs[skip] = (json.loads((out / "report.json").read_text()), lines)
    (report_off, lines_off), (report_on, lines_on) = runs[0.0], runs[1.0]
    assert "skipped_still" not in report_off["detection"]
    skipped = report_on["detection"]["skipped_still"]
    # detector on still frames: about once a second, and while the tracks born on the first frame
    # are tentative (a chunk or two of frames, until they are confirmed)
    assert n_still - 12 <= skipped <= n_still - 2 and report_on["detection"]["frames_detected"] == len(images) - skipped
    # the same plates, each under one track, on the same frames
    assert len(report_on["tracks"]) == len(report_off["tracks"]) == 2
    per_frame = [(sum(ln["frame"] == k for ln in lines_on), sum(ln["frame"] == k for ln in lines_off))
                 for k in range(5, len(images))]
    assert sum(a == b for a, b in per_frame) >= 0.95 * len(per_frame)
    still_on = [ln for ln in lines_on if 5 <= ln["frame"] < n_still]
    still_off = [ln for ln in lines_off if 5 <= ln["frame"] < n_still]
    # the parked plates (2 in frame 45), each under one track on every still frame once confirmed
    parked = {ln["track_id"] for ln in still_off}
    assert len(parked) == len({ln["track_id"] for ln in still_on}) == 2
    assert len(still_off) >= 2 * (n_still - 5) - 2 and len(still_on) >= len(still_off) - 8
    # once they are confirmed, the still frames reach the detector about once a second
    late_on, late_off = ([ln for ln in lines if ln["frame"] >= 20] for lines in (still_on, still_off))
    assert sum(ln["detected"] for ln in late_on) <= 2 * 3 < sum(ln["detected"] for ln in late_off)


@pytest.mark.parametrize("detect_every", [1, 3])
def test_detect_ahead_gives_the_same_outputs(clip_3s, tmp_path, detect_every):
    """Detecting the next chunk on a thread while this one is finished changes no output."""
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    detector = PlateDetector()
    outs = {}
    for ahead in (False, True):
        out = tmp_path / f"ahead_{ahead}"
        with VideoSource(clip_3s.video_path) as src:
            result = EnhancePipeline(detector, None, PipelineConfig(enhance=False, detect_every=detect_every,
                                                                    detect_ahead=ahead)).run(src, out, progress=False)
        assert result.frames == clip_3s.n_frames
        outs[ahead] = out
    assert (outs[True] / "tracks.jsonl").read_text() == (outs[False] / "tracks.jsonl").read_text()
    assert read_frames(outs[True] / "annotated.mp4")[-1].tobytes() == read_frames(outs[False] / "annotated.mp4")[-1].tobytes()


@pytest.mark.parametrize("ahead", [False, True])
def test_a_detector_error_surfaces_and_the_frames_before_it_are_kept(clip_3s, tmp_path, ahead):
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource

    class FailsOnThirdCall:
        calls = 0

        def detect(self, images):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("detector broke")
            return [[] for _ in images]

    with VideoSource(clip_3s.video_path) as src, pytest.raises(RuntimeError, match="detector broke"):
        EnhancePipeline(FailsOnThirdCall(), None, PipelineConfig(enhance=False, detect_ahead=ahead)).run(
            src, tmp_path, progress=False)
    report = json.loads((tmp_path / "report.json").read_text())
    # the two chunks of 4 frames before the one whose detection failed
    assert report["frames_processed"] == 8
    assert len(read_frames(tmp_path / "annotated.mp4")) == 8


def test_fusion_takes_over_once_a_track_has_k_crops(clip_3s, tmp_path):
    import cv2

    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import PlateDetector

    k = 3
    fusion, enhancer = _FakeFusion(k), _FakeEnhancer()
    pipe = EnhancePipeline(PlateDetector(), enhancer, PipelineConfig(sr_interval_s=0.1, fuse_k=k), fusion=fusion)
    with VideoSource(clip_3s.video_path) as src:
        result = pipe.run(src, tmp_path, progress=False)
    assert fusion.sequences and enhancer.calls >= 1  # the first crops of a track: single-frame
    assert {len(s) for s in fusion.sequences} == {k}  # ring buffer: never more than k crops
    for s in fusion.sequences:  # consecutive crops of one plate: sizes close to the reference
        assert all(abs(c.shape[0] - s[-1].shape[0]) <= 0.5 * s[-1].shape[0] + 2 for c in s)
    for t in result.tracks:
        if t.enhanced > 1:
            assert 0 < t.fused < t.enhanced
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["fusion"] == {"k": k}
    fused_best = 0
    for t in report["tracks"]:
        if t["best_crop"] and t["frames"] >= k:
            enhanced = cv2.imread(str(tmp_path / t["best_crop"]).replace(".png", "_enhanced.png"))
            fused_best += int((enhanced == 77).all())
    assert fused_best >= 1  # the best crop shows the fused result once k frames exist


def test_annotated_video_shows_the_voted_text(tmp_path):
    """The label beside the track id is drawn: a frame with a read differs from one without."""
    from stream.annotate import draw_track

    a = np.zeros((120, 200, 3), np.uint8)
    b = a.copy()
    box = np.array([20, 20, 80, 40], np.float32)
    draw_track(a, box, 1, None)
    draw_track(b, box, 1, None, label="AB123")
    diff = np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 0
    cols = np.where(diff.any(axis=0))[0]
    assert diff.any() and cols.min() > 20 + 10  # drawn to the right of "#1"


def test_live_reads_run_beside_the_frame_loop_and_never_hold_it_up(tmp_path):
    """A live source with an OCR far slower than the frames: reads go to the background thread,
    the ones that find it busy are dropped (counted), the frame loop does not wait for them, and
    the reads that did happen still reach tracks.jsonl and the report."""
    import time

    from stream.live import LIVE_TIME_BASE, LiveConfig, LiveSource, StreamEvent
    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.reads import Read
    from stream.source import SourceInfo
    from stream.status import LiveStats
    from stream.types import Frame
    from tracker.types import Detection

    n = 40

    class Camera(LiveSource):
        def __init__(self) -> None:
            self.info = SourceInfo(320, 192, 30.0, 0, LIVE_TIME_BASE, "h264", None)
            self.display_name, self.stats, self.config = "rtsp://***@cam/1", LiveStats(), LiveConfig()

        def __iter__(self):  # 30 fps in real time, like a camera
            yield StreamEvent("connected", (320, 192))
            t0 = time.monotonic()
            for i in range(n):
                time.sleep(max(0.0, t0 + i / 30 - time.monotonic()))
                img = np.full((192, 320, 3), 90, np.uint8)
                img[80:110, 100 + i:190 + i] = 255
                yield Frame(i, i / 30, img)

        def close(self) -> None:
            pass

    class OnePlate:  # a detector that always finds the white box
        def detect(self, images):
            return [[Detection(np.array([100 + 0.0, 80, 190, 110], np.float32) + np.array([i, 0, i, 0], np.float32),
                               0.9)] for i, _ in enumerate(images)]

    class SlowReader:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, images):
            self.calls += 1
            time.sleep(0.5)
            return [Read("LIVE1", 0.9) for _ in images]

    reader = SlowReader()
    pipe = EnhancePipeline(OnePlate(), _FakeEnhancer(), PipelineConfig(sr_interval_s=0.0, detect_batch=1, fuse_k=0),
                           reader=reader)
    t0 = time.monotonic()
    result = pipe.run(Camera(), tmp_path, progress=False)
    elapsed = time.monotonic() - t0
    report = json.loads((tmp_path / "report.json").read_text())
    reads = report["reads"]
    assert reads["mode"] == "background" and reads["dropped"] > 0 and reads["done"] >= 1
    assert reads["done"] + reads["dropped"] == sum(t.enhanced for t in result.tracks)
    assert elapsed < 0.5 * sum(t.enhanced for t in result.tracks)  # inline would have slept this long
    lines = [json.loads(ln) for ln in (tmp_path / "tracks.jsonl").read_text().splitlines()]
    arrived = [ln for ln in lines if "reads" in ln]
    assert arrived and all(ln["read_frame"] <= ln["frame"] for ln in arrived)
    # read_from auto on a live stream: one read per due plate, of its bicubic upscale
    assert reads["source"] == "bicubic x4" and {r["from"] for ln in arrived for r in ln["reads"]} == {"bicubic"}
    assert [t["read"] for t in report["tracks"] if t["read"]] == ["LIVE1"]


def test_finished_tracks_release_their_crops_once_written_and_gone_long_enough() -> None:
    """Memory stays flat in video length: a track gone for forget_after_s keeps no images."""
    from types import SimpleNamespace

    from stream.pipeline import EnhancePipeline, _BestCrop
    from stream.types import PlateCrop

    def entry(written: bool) -> _BestCrop:
        crop = PlateCrop(track_id=0, frame_index=0, box=np.zeros(4, np.float32), score=0.9,
                         image=np.zeros((20, 60, 3), np.uint8))
        return _BestCrop(quality=1.0, crop=crop, written=written)

    best = {1: entry(True), 2: entry(True), 3: entry(False)}
    summaries = {1: SimpleNamespace(last_frame=100), 2: SimpleNamespace(last_frame=950),
                 3: SimpleNamespace(last_frame=10)}
    EnhancePipeline._forget_finished_crops(best, summaries, frame_index=1000, after_frames=300)
    # 1: written and gone 900 frames -> dropped; 2: seen recently -> kept; 3: not on disk yet -> kept
    assert sorted(best) == [2, 3]


def test_region_of_interest_limits_tracks_and_is_drawn_and_reported(clip_3s, tmp_path):
    import av

    from stream.pipeline import EnhancePipeline, PipelineConfig
    from stream.source import VideoSource
    from tracker.detector import DetectorConfig, PlateDetector

    w, h = clip_3s.size
    roi = (w // 2, 0, w - w // 2, h)  # the right half
    pipe = EnhancePipeline(PlateDetector(config=DetectorConfig(roi=roi)), None, PipelineConfig(enhance=False))
    with VideoSource(clip_3s.video_path) as src:
        pipe.run(src, tmp_path, progress=False)
    lines = [json.loads(ln) for ln in (tmp_path / "tracks.jsonl").read_text().splitlines()]
    detected = [ln for ln in lines if ln.get("detected")]
    assert detected, "no plate detected in the right half"
    assert all((ln["box"][0] + ln["box"][2]) / 2 >= roi[0] for ln in detected)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["models"]["detector"]["region_of_interest"] == list(roi)
    # The region's outline is on the video: its left edge is a light line over the whole height
    # wherever no plate covers it.
    with av.open(str(tmp_path / "annotated.mp4")) as c:
        img = next(c.decode(video=0)).to_ndarray(format="bgr24")
    thick = max(1, round(min(h, w) / 700))
    column = img[10: h - 10, roi[0] + thick].astype(int).mean(axis=1)
    assert np.median(column) > 190
