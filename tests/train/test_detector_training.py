"""Detector training data paths and tiny offline training runs (CCPD folder, synthetic, box-only)."""
import cv2
import numpy as np
import pytest

from tracker.detector import MODEL_YAML, DetectorConfig, PlateDetector

TORCH = DetectorConfig(backend="torch")  # no ONNX export in these tests
from train.ccpd import parse_ccpd_name
from train.detector import main, openalpr_split, write_openalpr_pose_dataset, yolo_boxes_to_pose

NAMES = [
    "025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg",
    "0236015325671-90_89-235&481_529&579-529&575_235&579_236&484_529&481-0_0_3_24_30_24_31-150-142.jpg",
    "04-90_267-207&514_404&582-404&582_212&578_207&514_399&518-0_0_3_24_25_24_28_28-146-27.jpg",
    "03-89_91-300&300_420&340-420&340_300&340_300&300_420&300-1_2_3_4_5_6_7-100-20.jpg",
]


def fake_ccpd(folder):
    """CCPD-named 1160x720 images (the CCPD size) with a filled plate quadrilateral."""
    folder.mkdir(parents=True)
    for n in NAMES:
        lab = parse_ccpd_name(n)
        img = np.full((720, 1160, 3), 80, np.uint8)
        cv2.fillPoly(img, [lab.corners.astype(np.int32)], (190, 70, 20))
        cv2.imwrite(str(folder / n), img)


def test_detector_trains_one_tiny_epoch_from_a_ccpd_folder(tmp_path):
    fake_ccpd(tmp_path / "ccpd")
    out = tmp_path / "det.safetensors"
    main(["--ccpd", str(tmp_path / "ccpd"), "--epochs", "1", "--imgsz", "128", "--batch", "4",
          "--out", str(out), "--workdir", str(tmp_path / "work")])
    det = PlateDetector(out, TORCH)
    assert det.has_corners and det.info["kpt_shape"] == [4, 3] and "CCPD" in det.info["trained_on"]
    assert det.info["imgsz"] == 128 and det.info["epochs"] == 1
    dets = det.detect([np.zeros((120, 160, 3), np.uint8)])[0]
    assert isinstance(dets, list) and all(d.corners.shape == (4, 2) for d in dets)


def test_box_only_model_still_trains_and_loads(tmp_path, monkeypatch):
    out = tmp_path / "box.safetensors"
    monkeypatch.chdir(tmp_path)  # a relative --workdir: ultralytics' log lands there, not in its own runs folder
    main(["--synthetic", "8", "--model", str(MODEL_YAML), "--epochs", "1", "--imgsz", "128", "--batch", "4",
          "--out", str(out), "--workdir", "work"])
    assert (tmp_path / "work" / "runs" / "train" / "results.csv").is_file()
    det = PlateDetector(out, DetectorConfig(backend="torch", refine_corners=False))
    assert not det.has_corners and det.info["kpt_shape"] is None
    assert PlateDetector(out, TORCH).has_corners  # the corner refiner gives a box model corners


def _box_only_rows(out, hold) -> list[tuple[str, list[str]]]:
    """(image stem, label row) of each one-plate label file a writer put under ``out``, after
    checking that none comes from a ``hold``-out photo and that the keypoints are unlabelled."""
    labels = sorted((out / "labels" / "train").glob("*.txt"))
    assert not any(h.stem in lb.stem for h in hold for lb in labels)
    rows = []
    for lb in labels:
        (row,) = [r.split() for r in lb.read_text().splitlines()]
        assert len(row) == 17 and row[5:] == ["0.000000"] * 12
        rows.append((lb.stem, row))
    return rows


def test_openalpr_split_is_fixed_and_eu_is_refused(tmp_path):
    folder = tmp_path / "us"
    folder.mkdir()
    for i in range(20):
        cv2.imwrite(str(folder / f"car{i}.jpg"), np.zeros((60, 100, 3), np.uint8))
        (folder / f"car{i}.txt").write_text(f"car{i}.jpg\t10\t20\t40\t12\tABC{i}\n")
    train, hold = openalpr_split(folder)
    assert len(hold) == 4 and len(train) == 16 and not set(train) & set(hold)
    assert openalpr_split(folder) == (train, hold)
    out = write_openalpr_pose_dataset(folder, tmp_path / "ds", repeat=2)
    labels = sorted((out / "labels" / "train").glob("*.txt"))
    assert len(labels) == 32 and not any(h.stem in lb.stem for h in hold for lb in labels)
    row = labels[0].read_text().split()
    assert len(row) == 17 and row[5:] == ["0.000000"] * 12  # keypoints not labelled: box only
    eu = tmp_path / "eu"
    eu.mkdir()
    with pytest.raises(ValueError, match="evaluation only"):
        write_openalpr_pose_dataset(eu, tmp_path / "ds2")
    # Small real plates for training: the train split only, shrunk into 1080p frames, boxes only.
    from train.detector import write_shrunk_pose_dataset

    for i in range(20):  # bigger photos, so the 40 px plates can shrink
        cv2.imwrite(str(folder / f"car{i}.jpg"), np.zeros((600, 1000, 3), np.uint8))
        (folder / f"car{i}.txt").write_text(f"car{i}.jpg\t100\t200\t400\t120\tABC{i}\n")
    out = write_shrunk_pose_dataset(folder, tmp_path / "shrunk", copies=2)
    rows = [r.split() for lb in (out / "labels" / "train").glob("*.txt") for r in lb.read_text().splitlines()]
    assert len(rows) == 32 and all(len(r) == 17 and r[5:] == ["0.000000"] * 12 for r in rows)
    widths_px = [float(r[3]) * 1920 for r in rows]
    assert 12 - 0.01 <= min(widths_px) and max(widths_px) <= 96 + 0.01
    with pytest.raises(ValueError, match="evaluation only"):
        write_shrunk_pose_dataset(eu, tmp_path / "shrunk2")
    # Close-ups: the plate 25-50 % of the cut's width, its box moved into the cut, boxes only.
    from train.detector import write_zoomed_pose_dataset

    out = write_zoomed_pose_dataset(folder, tmp_path / "zoom", copies=2)
    rows = _box_only_rows(out, hold)
    assert len(rows) == 32
    for stem, row in rows:
        cut = cv2.imread(str(out / "images" / "train" / f"{stem}.jpg"))
        assert 0.25 - 0.01 <= float(row[3]) <= 0.5 + 0.01 and cut.shape[1] <= 1000
        assert abs(float(row[3]) * cut.shape[1] - 400) < 2  # the plate keeps its size in px
    with pytest.raises(ValueError, match="evaluation only"):
        write_zoomed_pose_dataset(eu, tmp_path / "zoom2")
    # Long plates (EU / UK aspect) made from the 400x120 (3.3:1) ones: squashed vertically, the
    # plate keeps its width, its width / height lands in LONG_PLATE_ASPECT; boxes only.
    from train.detector import LONG_PLATE_ASPECT, write_long_plate_pose_dataset

    lo, hi = LONG_PLATE_ASPECT
    out = write_long_plate_pose_dataset(folder, tmp_path / "long", copies=2)
    rows = _box_only_rows(out, hold)
    assert len(rows) == 32
    for stem, row in rows:
        img = cv2.imread(str(out / "images" / "train" / f"{stem}.jpg"))
        w, h = float(row[3]) * img.shape[1], float(row[4]) * img.shape[0]
        assert img.shape[1] == 1000 and img.shape[0] < 600 and abs(w - 400) < 1
        assert lo - 0.05 <= w / h <= hi + 0.05
    with pytest.raises(ValueError, match="evaluation only"):
        write_long_plate_pose_dataset(eu, tmp_path / "long2")
    # ... and the same shrunk into 1080p frames: small long plates.
    out = write_shrunk_pose_dataset(folder, tmp_path / "long_shrunk", copies=2, aspect=LONG_PLATE_ASPECT)
    rows = [r.split() for lb in (out / "labels" / "train").glob("*.txt") for r in lb.read_text().splitlines()]
    assert len(rows) == 32
    aspects = [float(r[3]) * 1920 / (float(r[4]) * 1080) for r in rows]
    assert lo - 0.5 <= min(aspects) and max(aspects) <= hi + 0.5  # sizes rounded to whole pixels


def test_box_yolo_dataset_becomes_pose(tmp_path):
    root = tmp_path / "mine"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        cv2.imwrite(str(root / "images" / split / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
        (root / "labels" / split / "a.txt").write_text("3 0.5 0.5 0.2 0.1\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: plate\n")
    out = yolo_boxes_to_pose(root / "data.yaml", tmp_path / "pose")
    rows = (out / "labels" / "val" / "0_a.txt").read_text().split()
    assert rows[:5] == ["0", "0.5", "0.5", "0.2", "0.1"] and rows[5:] == ["0"] * 12
    assert (out / "images" / "train" / "0_a.jpg").is_file()


def test_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--ccpd", str(tmp_path / "missing")])
    assert exc.value.code == 2 and "folder not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--epochs", "1", "--workdir", str(tmp_path / "w")])
    assert "no training data" in capsys.readouterr().err
