import numpy as np
import pytest
import torch

from tracker.corners import (CROP_H, CROP_W, REFINER_WEIGHTS, CornerNet, CornerRefiner, RefinerWeightsError,
                             crop_window, cut_patch, from_window, load_refiner, save_refiner, to_window)


def _centroid(patch: np.ndarray) -> np.ndarray:
    p = patch[..., 0].astype(float)
    ys, xs = np.mgrid[0:p.shape[0], 0:p.shape[1]]
    return np.array([(p * (xs + 0.5)).sum() / p.sum() / CROP_W, (p * (ys + 0.5)).sum() / p.sum() / CROP_H])


@pytest.mark.parametrize("window", [(250, 100, 450, 180),      # enlarged
                                    (200, 50, 1000, 450),      # shrunk 6x: area pre-shrink
                                    (-100, -30, 700, 333)])    # reaching past the frame's corner
def test_patch_keeps_the_window_geometry(window):
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[120:130, 300:310] = 255  # a square centred on (305, 125), edge convention
    w = np.array(window, np.float32)
    assert cut_patch(frame, w).shape == (CROP_H, CROP_W, 3)
    np.testing.assert_allclose(_centroid(cut_patch(frame, w)), to_window(np.array([305.0, 125.0]), w), atol=0.004)


def test_window_coordinates_round_trip():
    box = np.array([100, 200, 220, 240], np.float32)
    win = crop_window(box)
    assert win[0] < box[0] and win[2] > box[2] and win[1] < box[1] and win[3] > box[3]
    pts = np.array([[100, 200], [220, 240], [150.5, 210.25]], np.float32)
    np.testing.assert_allclose(from_window(to_window(pts, win), win), pts, atol=1e-4)


def test_weights_round_trip_and_bad_files(tmp_path):
    net = CornerNet(8).eval()
    path = save_refiner(net, tmp_path / "r.safetensors", info={"data": "test"})
    loaded, info = load_refiner(path)
    x = torch.rand(2, 3, CROP_H, CROP_W)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), atol=2e-2, rtol=0)  # stored as fp16
    assert info["data"] == "test" and len(info["sha256"]) == 16
    with pytest.raises(RefinerWeightsError, match="not found"):
        load_refiner(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"nope" * 40)
    with pytest.raises(RefinerWeightsError):
        load_refiner(tmp_path / "bad.safetensors")
    from tracker.detector import POSE_WEIGHTS

    with pytest.raises(RefinerWeightsError, match="not a corner refiner"):
        load_refiner(POSE_WEIGHTS)


def test_no_boxes_no_corners(tmp_path):
    ref = CornerRefiner(save_refiner(CornerNet(8).eval(), tmp_path / "r.safetensors"), cache_dir=tmp_path)
    out = ref.corners([np.zeros((90, 160, 3), np.uint8)] * 2, [np.zeros((0, 4)), np.array([[10, 10, 60, 30]])])
    assert out[0].shape == (0, 4, 2) and out[1].shape == (1, 4, 2)


def test_shipped_refiner_is_small_and_describes_itself():
    assert REFINER_WEIGHTS.stat().st_size < 2 * 2**20
    _, info = load_refiner()
    assert "synthetic" in info["data"] and info["validation"]["median_pct"] < 3.0


def test_shipped_refiner_beats_the_box_corners_on_a_held_out_frame():
    """Truth boxes moved by a few % (as a detector's are): refined corners land near the true ones."""
    from train.synth.scenes import SceneConfig, render_scene_frame

    cfg = SceneConfig(width=1920, height=1080, n_plates=3, plate_width_px=(60, 200), seconds=1.0)
    rng = np.random.default_rng(1)
    errs, box_errs = [], []
    for index in (5, 15, 25):
        frame, truths = render_scene_frame(cfg, seed=9201, index=index)
        truths = [t for t in truths if t.visibility > 0.99]
        boxes = np.array([t.box for t in truths], np.float32)
        wh = np.repeat(boxes[:, 2:] - boxes[:, :2], 2, axis=0).reshape(-1, 4)
        moved = boxes + rng.normal(0, 0.03, boxes.shape).astype(np.float32) * wh
        [corners] = CornerRefiner().corners([frame], [moved])
        for t, c, b in zip(truths, corners, moved):
            width = t.box[2] - t.box[0]
            errs.append(np.linalg.norm(c - t.corners, axis=1).mean() / width)
            as_box = np.array([[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]])
            box_errs.append(np.linalg.norm(as_box - t.corners, axis=1).mean() / width)
    assert len(errs) >= 3
    assert np.median(errs) < 0.03 and np.median(errs) < np.median(box_errs), (errs, box_errs)


def test_onnx_backend_matches_torch_and_caches_its_export(tmp_path):
    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), np.uint8)
    boxes = np.array([[100, 100, 220, 140], [400, 200, 430, 212]], np.float32)
    eager = CornerRefiner(backend="torch")
    onnx = CornerRefiner(backend="onnx", cache_dir=tmp_path)
    assert eager.backend == "torch" and onnx.backend == "onnx"
    assert len(list(tmp_path.glob("corner-refiner-*.onnx"))) == 1
    [a], [b] = eager.corners([frame], [boxes]), onnx.corners([frame], [boxes])
    np.testing.assert_allclose(a, b, atol=0.01)  # frame px
    assert CornerRefiner(cache_dir=tmp_path).backend == "onnx"  # auto on the CPU; reuses the export
    [cached] = list(tmp_path.glob("*.onnx"))
    cached.write_bytes(b"broken")  # a corrupt cache file is exported again
    [c] = CornerRefiner(cache_dir=tmp_path).corners([frame], [boxes])
    np.testing.assert_allclose(c, b, atol=1e-4)
    with pytest.raises(ValueError, match="unknown corner refiner backend"):
        CornerRefiner(backend="tensorrt")


def test_openvino_backend_matches_torch(tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), np.uint8)
    boxes = np.array([[100, 100, 220, 140], [400, 200, 430, 212]], np.float32)
    [a] = CornerRefiner(backend="torch").corners([frame], [boxes])
    f32 = CornerRefiner(backend="openvino", precision="f32", cache_dir=tmp_path)
    assert (f32.backend, f32.precision) == ("openvino", "f32")
    np.testing.assert_allclose(f32.corners([frame], [boxes])[0], a, atol=0.01)  # frame px
    # bf16 where the CPU has it: 8 bits of mantissa, within half a pixel on these plates
    np.testing.assert_allclose(CornerRefiner(backend="openvino", precision="bf16", cache_dir=tmp_path)
                               .corners([frame], [boxes])[0], a, atol=0.5)
