import numpy as np
import pytest

from benchmarks.detection import detection_report, match
from tracker.types import Detection


def det(x1, y1, x2, y2, score):
    return Detection(box=np.array([x1, y1, x2, y2], np.float32), score=score)


def test_match_is_greedy_by_score_and_one_to_one():
    gt = np.array([[0, 0, 10, 10]], np.float32)
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10]], np.float32)
    tp, matched = match(boxes, np.array([0.5, 0.9]), gt)
    # the higher-scored box takes the ground truth even though the other overlaps it better
    assert tp.tolist() == [False, True] and matched.tolist() == [-1, 0]


def test_report_counts_recall_precision_and_width_bins():
    gts = [np.array([[0, 0, 30, 10], [100, 0, 160, 20], [200, 0, 300, 30]], np.float32)]  # widths 30, 60, 100
    preds = [[det(0, 0, 30, 10, 0.9),        # small plate found
              det(200, 0, 300, 30, 0.8),     # large plate found
              det(400, 0, 450, 20, 0.7),     # false positive, 50 px wide
              det(100, 0, 160, 20, 0.05)]]   # medium plate only below the threshold
    preds[0][1] = det(200, 0, 300, 30, 0.4)  # found, but too weak to start a track
    r = detection_report(preds, gts, conf=0.25)
    assert r["all"]["plates"] == 3
    assert r["all"]["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert r["all"]["precision"] == pytest.approx(2 / 3, abs=1e-3)
    assert r["<40px"] == {"plates": 1, "recall": 1.0, "recall_birth": 1.0, "precision": 1.0,
                          "ap50": pytest.approx(0.995, abs=0.01)}
    assert r["all"]["recall_birth"] == pytest.approx(1 / 3, abs=1e-3) and r[">80px"]["recall_birth"] == 0.0
    assert r["40-80px"]["recall"] == 0.0 and r["40-80px"]["precision"] == 0.0
    assert r[">80px"]["recall"] == 1.0


def test_perfect_detector_has_ap50_near_one():
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(10):
        xy = rng.uniform(0, 500, (3, 2))
        boxes = np.hstack([xy, xy + rng.uniform(20, 120, (3, 2))]).astype(np.float32)
        gts.append(boxes)
        preds.append([Detection(box=b, score=0.9) for b in boxes])
    assert detection_report(preds, gts)["all"]["ap50"] > 0.99


def test_corner_error_is_mean_corner_distance_over_plate_width():
    from benchmarks.detection import corner_errors, corner_summary

    gt = np.array([[0, 0, 100, 20]], np.float32)
    gc = np.array([[[0, 0], [100, 0], [100, 20], [0, 20]]], np.float32)
    shifted = gc[0] + np.array([[2, 0], [2, 0], [0, 0], [0, 0]], np.float32)  # two corners 2 px off
    d = Detection(box=gt[0], score=0.9, corners=shifted)
    far = Detection(box=np.array([300, 0, 400, 20], np.float32), score=0.9, corners=gc[0] + 300)  # unmatched
    low = Detection(box=gt[0], score=0.1, corners=gc[0])  # under the threshold
    errs = corner_errors([[d, far], [low]], [gt, gt], [gc, gc], conf=0.25)
    assert errs.tolist() == pytest.approx([0.01])  # mean 1 px over a 100 px plate
    assert corner_summary(errs) == {"plates": 1, "median_pct": 1.0, "p90_pct": 1.0}
    assert corner_summary(np.array([])) is None


def test_small_plate_study_and_backend_timing_run():
    from benchmarks.detection import STUDY_BINS, small_plate_study, time_backends

    study = small_plate_study(None, [320], n_scenes=1, frames_per_scene=1, size=(640, 360), backend="torch",
                              zooms=[0.5])
    r = study["by_imgsz"]["320"]
    assert study["frames"] == 1 and r["ms_per_frame"] > 0 and set(r["recall"]) == {n for n, *_ in STUDY_BINS}
    assert list(study["by_imgsz"]) == ["320", "zoom 0.5"]
    speed = time_backends(None, variants=[("torch", "f32")], imgsz=320, size=(640, 360), repeats=2, threads=1)
    assert speed["ms"]["torch f32"]["median"] > 0 and speed["threads"] == 1 and speed["machine"]["cores"]


def test_shrunk_photo_mosaics_keep_each_plate_under_its_box(tmp_path):
    """Photos (openalpr layout) with a plate of a known colour: in the mosaics every plate is
    16-64 px wide, inside the frame, and its box still covers the plate's pixels."""
    import cv2

    from train.detector import shrunk_photo_mosaics

    rng = np.random.default_rng(0)
    for k in range(12):
        h, w = int(rng.integers(300, 700)), int(rng.integers(500, 1200))
        photo = np.full((h, w, 3), 40, np.uint8)
        pw = int(rng.integers(100, 250))
        x, y = int(rng.integers(0, w - pw)), int(rng.integers(0, h - pw // 4))
        colour = (int(rng.integers(100, 255)), 20 * k % 255, 200)
        photo[y: y + pw // 4, x: x + pw] = colour
        cv2.imwrite(str(tmp_path / f"p{k}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 100])
        (tmp_path / f"p{k}.txt").write_text(f"p{k}.jpg\t{x}\t{y}\t{pw}\t{pw // 4}\tABC{k}\n")
    frames, gts = shrunk_photo_mosaics(tmp_path, copies=2, size=(640, 360))
    boxes = np.concatenate(gts)
    assert len(boxes) == 24 and all(f.shape == (360, 640, 3) for f in frames)
    widths = boxes[:, 2] - boxes[:, 0]
    assert widths.min() >= 16 - 1e-3 and widths.max() <= 64 + 1e-3
    for frame, gt in zip(frames, gts):
        assert (gt[:, :2] >= 0).all() and (gt[:, 2] <= 640).all() and (gt[:, 3] <= 360).all()
        for x1, y1, x2, y2 in gt:
            inner = frame[int(np.ceil(y1)) + 1: int(y2) - 1, int(np.ceil(x1)) + 1: int(x2) - 1].reshape(-1, 3)
            assert len(inner) and inner[:, 2].mean() > 180  # the plate's red channel (200), not the photo's 40


def test_footage_rows_score_the_clip_frames_and_count_plates_that_would_get_a_track(tmp_path):
    """evaluate_footage on a two-photo eu folder: every segment frame is scored against the plate's
    box, and plates_born counts the plates a detector that always finds them would give a track."""
    import cv2

    from benchmarks.detection import evaluate_footage
    from tracker.types import Detection

    eu = tmp_path / "data" / "openalpr" / "eu"
    eu.mkdir(parents=True)
    for k in range(2):
        photo = np.full((400, 600, 3), 50, np.uint8)
        photo[200:240, 250:430] = 230
        cv2.imwrite(str(eu / f"p{k}.jpg"), photo)
        (eu / f"p{k}.txt").write_text(f"p{k}.jpg\t250\t200\t180\t40\tAB{k}\n")

    class FindsWhiteBoxes:  # a stand-in detector: the bright region of each frame, score 0.9
        config, refiner = None, None

        def detect(self, frames):
            out = []
            for f in frames:
                ys, xs = np.nonzero(f.mean(axis=2) > 160)
                out.append([Detection(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32), 0.9)]
                           if len(xs) else [])
            return out

    from dataclasses import dataclass

    @dataclass
    class _Cfg:
        conf: float = 0.25

    det = FindsWhiteBoxes()
    det.config = _Cfg()
    report = evaluate_footage(det, tmp_path / "data", tmp_path)
    assert report["all"]["plates"] == 90 and report["all"]["recall"] >= 0.95  # 2 segments x 45 frames
    assert report["plates_born"]["plates_born"] == 2 and report["plates_born"]["plates_total"] == 2


def test_coarse_pass_plot_groups_each_set_with_its_variants(tmp_path):
    from benchmarks.detection import COARSE_VARIANTS, plot_coarse_pass

    def report(r):
        return {"all": {"recall": r, "ap50": r - 0.05}}

    rows = {"eu (real photos, evaluation only)": report(0.9), "shrunk (real plates)": report(0.2)}
    rows.update({f"eu (real photos, {label}, evaluation only)": report(0.8 + 0.1 * k)
                 for k, label in enumerate(COARSE_VARIANTS)})
    plot_coarse_pass(rows, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 10_000
    plot_coarse_pass({"shrunk (real plates)": report(0.2)}, tmp_path / "none.png")  # no variants: no plot
    assert not (tmp_path / "none.png").exists()


def test_shrunk_plot_groups_rows_by_input_setting(tmp_path):
    from benchmarks.detection import SHRUNK_MARK, plot_shrunk

    def report(r):
        return {"all": {"recall": r}, "<40px": {"recall": r}, "40-80px": {"recall": r + 0.1}}

    rows = {f"us held-out ({SHRUNK_MARK}imgsz 960)": report(0.1), f"us held-out ({SHRUNK_MARK}zoom 2)": report(0.8),
            f"eu ({SHRUNK_MARK}zoom 2, evaluation only)": report(0.6), "eu (real photos)": report(0.9)}
    plot_shrunk(rows, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000
    plot_shrunk({"eu (real photos)": report(0.9)}, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
