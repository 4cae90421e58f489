import cv2
import numpy as np
import pytest

from tracker.corners import CROP_H, CROP_W, CornerRefiner
from train.corners import PlateSample, main, make_example, plates_from_pose_dataset, train_refiner


def _white_quad_sample() -> PlateSample:
    ctx = np.zeros((300, 500, 3), np.uint8)
    corners = np.array([[150, 120], [350, 100], [355, 170], [148, 185]], np.float32)
    cv2.fillPoly(ctx, [np.round(corners).astype(np.int32)], (255, 255, 255))
    return PlateSample(ctx, corners, np.r_[corners.min(0), corners.max(0)].astype(np.float32))


def test_training_targets_mark_the_plate_under_every_augmentation():
    """Box jitter, shrinking, mirroring, photometry: the target quad still covers the plate."""
    rng = np.random.default_rng(0)
    sample = _white_quad_sample()
    for _ in range(60):
        patch, target, scale = make_example(rng, sample, augment=True)
        assert patch.shape == (CROP_H, CROP_W, 3)
        mask = np.zeros((CROP_H, CROP_W), np.uint8)
        cv2.fillPoly(mask, [np.round(target * [CROP_W, CROP_H] * 16).astype(np.int32)], 1, shift=4)
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8))
        outer = cv2.dilate(mask, np.ones((5, 5), np.uint8)) == 0
        grey = patch.mean(2)
        if inner.sum() >= 4 and outer.sum() >= 4:
            assert grey[inner > 0].mean() > grey[outer].mean() + 30
        # scale: the window's size in plate widths (plate 207 px wide)
        assert 1.0 < scale[0] < 3.0


def test_one_tiny_run_writes_loadable_weights(tmp_path):
    from train.synth.scenes import write_detection_dataset

    write_detection_dataset(tmp_path / "data" / "synthetic", 6, seed=3, imgsz=320, keypoints=True)
    root = tmp_path / "data" / "synthetic"
    train, val = plates_from_pose_dataset(root, "train"), plates_from_pose_dataset(root, "val")
    assert train and val
    out = tmp_path / "r.safetensors"
    info = train_refiner(train, val, out, steps=3, batch=8, width=8, eval_every=2)
    assert info["steps"] == 3 and info["validation"]["plates"] == len(val)
    assert (tmp_path / "r.csv").read_text().count("\n") == 3  # header + steps 2 and 3
    ref = CornerRefiner(out)
    [c] = ref.corners([np.zeros((200, 300, 3), np.uint8)], [np.array([[50, 50, 150, 90]], np.float32)])
    assert c.shape == (1, 4, 2) and np.isfinite(c).all()


def test_cli_refuses_a_missing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--dataset", str(tmp_path / "none"), "--out", str(tmp_path / "r.safetensors")])
    assert "folder not found" in capsys.readouterr().err
