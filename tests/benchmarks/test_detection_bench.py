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
    r = detection_report(preds, gts, conf=0.25)
    assert r["all"]["plates"] == 3
    assert r["all"]["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert r["all"]["precision"] == pytest.approx(2 / 3, abs=1e-3)
    assert r["<40px"] == {"plates": 1, "recall": 1.0, "precision": 1.0, "ap50": pytest.approx(0.995, abs=0.01)}
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
