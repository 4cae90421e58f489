import numpy as np
import pytest
import torch

from benchmarks.detection import evaluate_clip
from tracker.detector import DEFAULT_WEIGHTS, DetectorConfig, DetectorWeightsError, PlateDetector, load_detector_model


@pytest.fixture(scope="module")
def detector():
    return PlateDetector()


def test_shipped_weights_are_small_and_describe_themselves():
    assert DEFAULT_WEIGHTS.stat().st_size < 5 * 2**20
    _, info = load_detector_model()
    assert info["names"] == {0: "plate"} and info["imgsz"] > 0 and "trained_on" in info


def test_finds_the_plates_of_a_generated_clip(detector, clip_3s):
    report = evaluate_clip(detector, clip_3s.out_dir)["all"]
    assert report["recall"] >= 0.9, report
    assert report["precision"] >= 0.8, report


def test_batches_frames_of_different_sizes(detector):
    frames = [np.zeros((360, 640, 3), np.uint8), np.zeros((720, 1280, 3), np.uint8), np.zeros((100, 90, 3), np.uint8)]
    out = detector.detect(frames)
    assert len(out) == 3 and all(isinstance(d, list) for d in out)


@pytest.mark.parametrize("width, height, max_levels", [(1920, 1080, 0.51), (1280, 720, 0.51), (320, 240, 1.0),
                                                    (1000, 700, None)])
def test_letterbox_on_the_device_matches_the_cpu_letterbox(detector, monkeypatch, width, height, max_levels):
    # The GPU path, run here on the CPU: the same network input and the same plates.
    from train.synth.scenes import SceneConfig, render_scene_frame

    frame, _ = render_scene_frame(SceneConfig(width=width, height=height, n_plates=3), 1, 5)
    x_cpu, _ = detector._letterbox([frame])
    on_cpu = detector.detect([frame])[0]
    monkeypatch.setattr(detector, "_input_on_device", True)
    x_dev, _ = detector._letterbox([frame])
    assert x_dev.shape == x_cpu.shape and x_dev.dtype == x_cpu.dtype
    grey_levels = (x_dev - x_cpu).abs() * 255
    if max_levels is not None:  # halving or doubling: equal but for OpenCV's uint8 rounding (fixed-point weights)
        assert float(grey_levels.max()) <= max_levels
    else:  # area averaging by a fractional factor: the two spread a cut pixel differently
        assert float(grey_levels.mean()) < 2.0
    on_device = detector.detect([frame])[0]
    assert len(on_device) == len(on_cpu) >= 1
    for a, b in zip(on_cpu, on_device):
        assert np.abs(a.box - b.box).max() < 4.0 and abs(a.score - b.score) < 0.02


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the detector's on-device letterbox)")
def test_detector_on_a_gpu_finds_what_it_finds_on_the_cpu(clip_3s):
    from stream.source import read_frames

    frames = read_frames(clip_3s.video_path)[:8]
    on_cpu = PlateDetector(config=DetectorConfig(backend="torch")).detect(frames)
    on_gpu = PlateDetector(config=DetectorConfig(device="cuda")).detect(frames)
    for a, b in zip(on_cpu, on_gpu):
        assert len(a) == len(b)
        for p, q in zip(a, b):
            assert np.abs(p.box - q.box).max() < 4.0 and abs(p.score - q.score) < 0.02


def test_shape_batches_groups_equal_keys_in_chunks():
    from tracker.weights_file import shape_batches

    keys = [(32, 96), (16, 48), (32, 96), (32, 96), (16, 48)]
    assert list(shape_batches(keys, 2)) == [[1, 4], [0, 2], [3]]
    assert list(shape_batches([], 4)) == []


def test_a_frames_detections_do_not_depend_on_the_frames_beside_it(detector, clip_3s):
    """Frames of other sizes (other streams) in the same call give a frame exactly the detections
    it gets alone: it is never padded to a larger neighbour's input shape."""
    from stream.source import read_frames

    frames = read_frames(clip_3s.video_path)[:12:4]
    small = [f[: f.shape[0] * 3 // 4, : f.shape[1] // 2].copy() for f in frames]
    alone = [detector.detect([f])[0] for f in frames]
    mixed = detector.detect([x for pair in zip(frames, small) for x in pair])[::2]
    assert sum(len(d) for d in alone) > 0
    for a, m in zip(alone, mixed):
        assert [(d.box.tolist(), d.score) for d in a] == [(d.box.tolist(), d.score) for d in m]


def test_boxes_are_in_frame_pixels(detector, clip_3s):
    from stream.source import read_frames

    frame = read_frames(clip_3s.video_path)[10]
    big = np.pad(frame, ((0, frame.shape[0]), (0, 0), (0, 0)))  # same content, taller canvas
    a, b = detector.detect([frame])[0], PlateDetector(config=DetectorConfig(imgsz=640)).detect([big])[0]
    assert a, "no plate found in frame 10"
    for det in a:
        assert 0 <= det.box[0] < det.box[2] <= frame.shape[1] and 0 <= det.box[1] < det.box[3] <= frame.shape[0]
    # On the taller canvas (another letterbox scale) the confident plates are where they were.
    from benchmarks.detection import box_iou

    sure = np.stack([d.box for d in b if d.score >= 0.5])
    assert (box_iou(sure, np.stack([d.box for d in a])).max(axis=1) >= 0.5).all()


def test_unreadable_weights(tmp_path):
    bad = tmp_path / "d.safetensors"
    bad.write_bytes(b"nope" * 50)
    with pytest.raises(DetectorWeightsError):
        PlateDetector(bad)
    with pytest.raises(DetectorWeightsError, match="not found"):
        PlateDetector(tmp_path / "none.safetensors")


# ----------------------------------------------------------------------------- corners, back ends
from tracker.detector import POSE_WEIGHTS, rectify_plate  # noqa: E402


@pytest.fixture(scope="module")
def pose_detector(tmp_path_factory):
    return PlateDetector(POSE_WEIGHTS)  # auto: ONNX Runtime on CPU


def test_pose_weights_describe_their_corners():
    assert POSE_WEIGHTS.stat().st_size < 5 * 2**20
    _, info = load_detector_model(POSE_WEIGHTS)
    assert info["kpt_shape"] == [4, 3] and "tl, tr, br, bl" in info["keypoints"]
    assert "openalpr us" in info["trained_on"] and " eu " not in info["trained_on"]


def test_pose_detector_finds_plates_and_their_corners(pose_detector, clip_3s):
    report = evaluate_clip(pose_detector, clip_3s.out_dir, with_corners=True)
    assert report["all"]["recall"] >= 0.9 and report["all"]["precision"] >= 0.8, report
    # Corner error: median over matched plates, in % of the plate width (benchmarks/results/detection:
    # head 4.95 %, refiner 1.08 % on the 640x360 benchmark clip). Bounds with room, against regressions.
    c = report["corners"]
    assert c["plates"] > 50 and c["median_pct"] <= 10.0, c
    assert c["refined_median_pct"] <= 3.0 and c["refined_median_pct"] < c["box_corners_median_pct"], c


def test_optional_weights_load_and_find_plates_with_corners(clip_3s):
    """The optional weights (small US-like plates in 1080p: benchmarks/results/detection/gpu_imgsz960.md,
    optional_weights.md) load like the default ones, say how they were trained, and find the
    plates of a clip they never saw."""
    path = POSE_WEIGHTS.with_name("plate_yolov8p_pose_960.safetensors")
    assert path.stat().st_size < 5 * 2**20
    _, info = load_detector_model(path)
    assert info["imgsz"] == 960 and info["kpt_shape"] == [4, 3]
    assert "shrunk" in info["trained_on"] and " eu " not in info["trained_on"]
    report = evaluate_clip(PlateDetector(path), clip_3s.out_dir, with_corners=True)
    assert report["all"]["recall"] >= 0.9 and report["all"]["precision"] >= 0.8, report
    assert report["corners"]["refined_median_pct"] <= 3.0, report["corners"]


def test_corners_are_frame_pixels_in_tl_tr_br_bl_order(pose_detector, clip_3s):
    from stream.source import read_frames

    frame = read_frames(clip_3s.video_path)[10]
    dets = pose_detector.detect([frame])[0]
    assert dets
    for d in dets:
        c = d.corners
        assert c.shape == (4, 2) and c.dtype == np.float32
        assert c[0, 0] < c[1, 0] and c[3, 0] < c[2, 0] and c[0, 1] < c[3, 1] and c[1, 1] < c[2, 1]
        centre = c.mean(0)
        assert d.box[0] <= centre[0] <= d.box[2] and d.box[1] <= centre[1] <= d.box[3]
        crop = rectify_plate(frame, c)
        assert crop.ndim == 3 and crop.shape[1] > crop.shape[0]  # plates are wider than high


def test_box_only_weights_have_no_corners_without_the_refiner(clip_3s):
    from stream.source import read_frames
    from tracker.detector import BOX_WEIGHTS

    box = PlateDetector(BOX_WEIGHTS, DetectorConfig(refine_corners=False))
    assert not box.has_corners
    frame = read_frames(clip_3s.video_path)[10]
    assert box.detect([frame])[0] and all(d.corners is None for d in box.detect([frame])[0])
    refined = PlateDetector(BOX_WEIGHTS)  # the refiner gives a box model corners too
    assert refined.has_corners
    assert all(d.corners is not None and d.corners.shape == (4, 2) for d in refined.detect([frame])[0])


def test_refiner_changes_corners_only(clip_3s):
    from stream.source import read_frames

    frames = read_frames(clip_3s.video_path)[::30]
    plain = PlateDetector(config=DetectorConfig(refine_corners=False)).detect(frames)
    refined = PlateDetector().detect(frames)
    assert sum(map(len, refined)) > 0
    for a, b in zip(plain, refined):
        assert [d.score for d in a] == [d.score for d in b]
        for da, db in zip(a, b):
            np.testing.assert_array_equal(da.box, db.box)
            assert np.isfinite(db.corners).all() and np.abs(db.corners - da.corners).max() > 0


def test_refiner_weights_errors_are_detector_weights_errors(tmp_path):
    with pytest.raises(DetectorWeightsError, match="corner refiner weights not found"):
        PlateDetector(config=DetectorConfig(refiner_weights=tmp_path / "none.safetensors"))


def test_default_detector_gives_corners(detector):
    assert DEFAULT_WEIGHTS == POSE_WEIGHTS and detector.has_corners


def test_onnx_backend_matches_torch_and_caches(tmp_path, clip_3s):
    from stream.source import read_frames

    frames = read_frames(clip_3s.video_path)[::45]
    t = PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="torch"))
    o = PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="onnx", cache_dir=tmp_path))
    assert o.backend == "onnx" and t.backend == "torch"
    cached = list(tmp_path.glob("detector-*.onnx"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    for a, b in zip(t.detect(frames), o.detect(frames)):
        assert len(a) == len(b)
        for da, db in zip(a, b):
            assert np.abs(da.box - db.box).max() < 0.5 and abs(da.score - db.score) < 1e-3
            assert np.abs(da.corners - db.corners).max() < 0.5
    PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="onnx", cache_dir=tmp_path))  # reuses the export
    assert cached[0].stat().st_mtime_ns == mtime


def test_auto_input_size_follows_the_frame():
    from tracker.detector import auto_imgsz

    assert [auto_imgsz(w, h) for w, h in ((640, 360), (1280, 720), (1920, 1080), (1080, 1920), (3840, 2160))] == \
        [640, 640, 960, 960, 1280]
    det = PlateDetector(config=DetectorConfig(refine_corners=False))
    assert det.config.imgsz is None  # auto by default
    frames = [np.zeros((1080, 1920, 3), np.uint8), np.zeros((720, 1280, 3), np.uint8)]
    assert [det._padded_input(f) for f in frames] == [(544, 960), (384, 640)]  # own size, padded to the stride
    x, ratios = det._letterbox(frames[:1])
    assert ratios == [0.5] and tuple(x.shape[2:]) == (544, 960)
    fixed = PlateDetector(config=DetectorConfig(imgsz=640, refine_corners=False))
    assert fixed._letterbox([np.zeros((1080, 1920, 3), np.uint8)])[0].shape[2:] == (384, 640)


def test_coarse_pass_adds_a_half_size_search_and_merges(detector, clip_3s):
    """coarse_pass "on" runs the network a second time at coarse_scale of the input size; the two
    passes' boxes are merged, so every plate the main pass finds is still there, once."""
    from benchmarks.detection import box_iou
    from stream.source import read_frames

    off = PlateDetector(config=DetectorConfig(coarse_pass="off"))
    coarse = PlateDetector(config=DetectorConfig(coarse_pass="on"))
    frame = np.zeros((720, 1280, 3), np.uint8)
    assert coarse._padded_input(frame) == (384, 640) and coarse._padded_input(frame, 0.5) == (192, 320)
    for f in read_frames(clip_3s.video_path)[:12:4]:
        one, both = off.detect([f])[0], coarse.detect([f])[0]
        assert one and both and all(d.corners is not None for d in both)
        b1, b2 = np.stack([d.box for d in one]), np.stack([d.box for d in both])
        assert (box_iou(b1, b2).max(axis=1) >= 0.5).all()  # the main pass's plates are kept
        iou = box_iou(b2, b2)
        np.fill_diagonal(iou, 0.0)
        assert iou.max() <= coarse.config.iou  # no plate twice
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="coarse_scale"):
            PlateDetector(config=DetectorConfig(coarse_scale=bad))
    with pytest.raises(ValueError, match="coarse_pass"):
        PlateDetector(config=DetectorConfig(coarse_pass="sometimes"))


@pytest.fixture
def passes(monkeypatch):
    """Every PlateDetector._detect_pass call, recorded as (factor, [image (h, w)])."""
    calls = []
    real = PlateDetector._detect_pass

    def spy(self, images, factor=1.0, **kwargs):
        calls.append((factor, [im.shape[:2] for im in images]))
        return real(self, images, factor, **kwargs)

    monkeypatch.setattr(PlateDetector, "_detect_pass", spy)
    return calls


def test_coarse_pass_auto_searches_frames_the_main_pass_enlarges(detector, passes):
    """auto: a frame no larger than the input size (scale >= 1) gets the half-size pass too; a
    larger one (720p at imgsz 640) without a wide candidate (next test) does not, so the default
    costs nothing more there."""
    calls = passes
    small, large = np.zeros((360, 640, 3), np.uint8), np.zeros((720, 1280, 3), np.uint8)
    auto = PlateDetector(config=DetectorConfig(imgsz=640, refine_corners=False))
    assert auto.config.coarse_pass == "auto"
    auto.detect([small, large])
    assert calls == [(1.0, [(360, 640), (720, 1280)]), (0.5, [(360, 640)])]
    calls.clear()
    auto.detect([large])
    assert calls == [(1.0, [(720, 1280)])]
    calls.clear()  # a region is there to enlarge far plates: searched once
    PlateDetector(config=DetectorConfig(imgsz=640, refine_corners=False, roi=(0, 0, 640, 360))).detect([large])
    assert calls == [(1.0, [(360, 640)])]


def test_coarse_pass_auto_also_runs_where_the_main_pass_sees_a_wide_candidate(detector, passes):
    """auto on a frame larger than the input: the half-size pass runs when the main pass has a
    candidate at least coarse_trigger_px wide at the input (a close plate), not for far plates;
    coarse_trigger_px=None never. Either way only detections from ``conf`` come back."""
    from train.synth.scenes import SceneConfig, render_scene_frame

    def factors() -> list[float]:
        out = [f for f, _ in passes]
        passes.clear()
        return out

    close, _ = render_scene_frame(SceneConfig(width=1280, height=720, n_plates=1, plate_width_px=(420.0, 440.0)), 5, 36)
    far, _ = render_scene_frame(SceneConfig(width=1280, height=720, n_plates=2, plate_width_px=(70.0, 90.0)), 5, 36)
    auto = PlateDetector(config=DetectorConfig(imgsz=640, refine_corners=False))
    assert auto.config.coarse_trigger_px == 128
    found = auto.detect([close])[0]
    assert factors() == [1.0, 0.5]
    assert found and min(d.score for d in found) >= auto.config.conf
    assert max(d.box[2] - d.box[0] for d in found) * 0.5 >= 128  # the plate, at the input
    one_pass = auto.detect([far])[0]
    assert one_pass and factors() == [1.0]
    # without the coarse pass, candidates kept from PASS_FLOOR and cut at conf afterwards give
    # what a single pass at conf gives
    off = PlateDetector(config=DetectorConfig(imgsz=640, refine_corners=False, coarse_pass="off")).detect([far])[0]
    assert [(d.box.tolist(), d.score) for d in one_pass] == [(d.box.tolist(), d.score) for d in off]
    factors()  # the "off" detector's pass
    PlateDetector(config=DetectorConfig(imgsz=640, refine_corners=False, coarse_trigger_px=None)).detect([close])
    assert factors() == [1.0]
    with pytest.raises(ValueError, match="coarse_trigger_px"):
        PlateDetector(config=DetectorConfig(coarse_trigger_px=0))


def test_zoom_enlarges_each_frame_and_keeps_the_coarse_pass_at_its_own_size(detector, passes):
    """zoom F: the input's long side is F times the frame's (or region's), rounded up to the
    stride, whatever its size; "auto" adds the half-size pass, which then sees the frame at about
    its own size. zoom excludes imgsz."""
    det = PlateDetector(config=DetectorConfig(zoom=2.0, refine_corners=False))
    frame = np.zeros((1080, 1920, 3), np.uint8)
    assert det._padded_input(frame) == (2176, 3840) and det._padded_input(frame, 0.5) == (1088, 1920)
    assert det._padded_input(np.zeros((360, 640, 3), np.uint8)) == (736, 1280)
    det.detect([np.zeros((270, 480, 3), np.uint8)])
    assert [f for f, _ in passes] == [1.0, 0.5]
    region = PlateDetector(config=DetectorConfig(zoom=2.0, roi=(0, 0, 480, 270), refine_corners=False))
    assert region._padded_input(frame[:270, :480]) == (544, 960)
    for bad in ({"zoom": 0.0}, {"zoom": 9.0}, {"zoom": 2.0, "imgsz": 640}):
        with pytest.raises(ValueError, match="zoom"):
            PlateDetector(config=DetectorConfig(**bad))


def test_large_inputs_go_through_the_network_one_at_a_time(detector, monkeypatch):
    """Batches are capped by network-input pixels (MAX_BATCH_PIXELS): three 1080p frames at the
    default input size share a forward pass, at zoom 2 each gets its own (memory, not speed)."""
    sizes = []
    real = PlateDetector._detect_batch
    monkeypatch.setattr(PlateDetector, "_detect_batch",
                        lambda self, images, factor=1.0, conf=None: sizes.append(len(images))
                        or real(self, images, factor, conf))
    frames = [np.zeros((1080, 1920, 3), np.uint8)] * 3
    PlateDetector(config=DetectorConfig(refine_corners=False)).detect(frames)
    assert sizes == [3]
    sizes.clear()
    PlateDetector(config=DetectorConfig(zoom=2.0, refine_corners=False)).detect(frames)
    assert sizes == [1, 1, 1, 1, 1, 1]  # the main pass and the coarse pass (the frame at its own size)


def test_zoom_finds_small_plates_the_default_input_size_misses():
    """Plates 15-17 px wide in 1080p frames reach the default input (960) 7-9 px wide, too small
    to find; enlarged twice (zoom 2) they are found."""
    from benchmarks.detection import match
    from train.synth.scenes import SceneConfig, iter_scene_frames

    cfg = SceneConfig(width=1920, height=1080, seconds=1.0, fps=10.0, n_plates=3, plate_width_px=(16.0, 22.0),
                      occlusion=0.0)
    frames = [(im, plates) for i, (im, plates) in enumerate(iter_scene_frames(cfg, seed=5)) if i % 3 == 0]

    def found(config: DetectorConfig) -> tuple[int, int]:
        det, hits, total = PlateDetector(config=config), 0, 0
        for image, plates in frames:
            gt = np.array([p.box for p in plates if p.visibility >= 0.5], np.float32).reshape(-1, 4)
            dets = [d for d in det.detect([image])[0] if d.score >= 0.25]
            boxes = np.array([d.box for d in dets], np.float32).reshape(-1, 4)
            tp, matched = match(boxes, np.array([d.score for d in dets], np.float32), gt)
            hits, total = hits + len(set(matched[tp].tolist())), total + len(gt)
        return hits, total

    (default, total), (zoomed, _) = found(DetectorConfig()), found(DetectorConfig(zoom=2.0))
    assert total >= 10 and zoomed >= default + 3 and zoomed >= total // 3, (default, zoomed, total)


def test_coarse_merge_is_one_box_per_plate_scored_by_noisy_or(detector):
    """Boxes the two passes share become one, the higher-scoring box with score
    1 - (1 - a)(1 - b); a box only one pass found keeps its score."""
    from tracker.types import Detection

    def det(x, score):
        return Detection(box=np.array([x, 10, x + 40, 22], np.float32), score=score)

    main = [det(0, 0.6), det(100, 0.3)]
    coarse = [det(2, 0.2), det(300, 0.5)]
    merged = detector._merge(main, coarse)
    assert [float(d.box[0]) for d in merged] == [0.0, 300.0, 100.0]
    assert [round(d.score, 4) for d in merged] == [round(1 - 0.4 * 0.8, 4), 0.5, 0.3]
    assert detector._merge(main, []) == main and detector._merge([], coarse) == coarse


def test_auto_backend_and_bad_backend():
    from tracker.weights_file import openvino_available

    auto = PlateDetector(config=DetectorConfig(backend="auto"))
    assert auto.backend == ("openvino" if openvino_available() else "onnx")  # measured fastest on the CPU
    assert auto.refiner.backend == auto.backend and auto.refiner.precision == auto.precision
    with pytest.raises(ValueError, match="unknown detector backend"):
        PlateDetector(config=DetectorConfig(backend="tensorflow"))
    with pytest.raises(ValueError, match="unknown detector precision"):
        PlateDetector(config=DetectorConfig(precision="int4"))


def test_auto_backend_without_openvino_is_onnx_runtime(monkeypatch):
    import tracker.detector

    monkeypatch.setattr(tracker.detector, "openvino_available", lambda: False)
    det = PlateDetector(config=DetectorConfig(backend="auto"))
    assert (det.backend, det.precision, det.refiner.backend) == ("onnx", "f32", "onnx")
    with pytest.raises(ValueError, match="needs OpenVINO"):
        PlateDetector(config=DetectorConfig(backend="openvino"))


def test_openvino_backend_matches_onnx_runtime(tmp_path, clip_3s):
    """f32: the same numbers as ONNX Runtime on the same cached graph; bf16 (where the CPU has
    native bf16, else it runs f32 and says so): the same plates, boxes and corners within a pixel."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    from sr_model.backends import cpu_has_native_bf16
    from stream.source import read_frames

    frames = read_frames(clip_3s.video_path)[::45]
    ref = PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="onnx", cache_dir=tmp_path)).detect(frames)
    assert sum(map(len, ref)) >= len(frames)
    f32 = PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="openvino", precision="f32", cache_dir=tmp_path))
    bf16 = PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="openvino", precision="bf16", cache_dir=tmp_path))
    assert len(list(tmp_path.glob("detector-*.onnx"))) == 1  # one export serves both runtimes
    assert (f32.precision, f32.refiner.precision) == ("f32", "f32")
    assert bf16.precision == bf16.refiner.precision == ("bf16" if cpu_has_native_bf16() else "f32")
    for det, box_tol, score_tol in ((f32, 0.05, 1e-4), (bf16, 1.0, 0.03)):
        for a, b in zip(ref, det.detect(frames)):
            for da in (d for d in a if d.score >= 0.5):  # each confident plate, found again (order may differ)
                db = min(b, key=lambda d: np.abs(d.box - da.box).max())
                assert np.abs(da.box - db.box).max() < box_tol and abs(da.score - db.score) < score_tol
                assert np.abs(da.corners - db.corners).max() < box_tol


def test_openvino_static_shapes_compile_per_shape_and_match_the_dynamic_graph(tmp_path):
    """static_shapes (the detector's OpenVINO session): one compile per input shape, the latest
    max_shapes kept, the same outputs as the dynamic-shape graph (f32)."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    from tracker.weights_file import OpenVINOSession

    path = PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="onnx", cache_dir=tmp_path, refine_corners=False))._export()
    dynamic = OpenVINOSession(path, 2, "f32")
    static = OpenVINOSession(path, 2, "f32", static_shapes=True, max_shapes=2)
    rng = np.random.default_rng(0)
    for shape in ((1, 3, 192, 320), (2, 3, 192, 320), (1, 3, 384, 640), (1, 3, 192, 320)):
        x = rng.random(shape, dtype=np.float32)
        np.testing.assert_allclose(static.run(None, {"images": x})[0], dynamic.run(None, {"images": x})[0],
                                   rtol=1e-4, atol=1e-3)
    assert list(static._static) == [(("images", (1, 3, 384, 640)),), (("images", (1, 3, 192, 320)),)]


def test_openvino_reexports_a_corrupt_cached_graph(tmp_path, clip_3s):
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    from stream.source import read_frames

    frame = read_frames(clip_3s.video_path)[20]
    first = PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="openvino", precision="f32", cache_dir=tmp_path,
                                                       refine_corners=False))
    [cached] = list(tmp_path.glob("detector-*.onnx"))
    cached.write_bytes(b"broken")
    again = PlateDetector(POSE_WEIGHTS, DetectorConfig(backend="openvino", precision="f32", cache_dir=tmp_path,
                                                       refine_corners=False))
    [a], [b] = first.detect([frame]), again.detect([frame])
    assert a and [d.score for d in a] == [d.score for d in b]


def test_rectify_plate_undoes_a_perspective():
    import cv2

    src = np.zeros((40, 120, 3), np.uint8)
    src[:, :60] = 200  # left half bright
    quad = np.float32([[30, 10], [150, 25], [145, 70], [25, 60]])
    M = cv2.getPerspectiveTransform(np.float32([[-.5, -.5], [119.5, -.5], [119.5, 39.5], [-.5, 39.5]]), quad - 0.5)
    frame = cv2.warpPerspective(src, M, (200, 100))
    out = rectify_plate(frame, quad)
    w = out.shape[1]
    assert out[:, : int(w * 0.45)].mean() > 180 and out[:, int(w * 0.55):].mean() < 20
    assert rectify_plate(frame, quad, height=32).shape[0] == 32
    with pytest.raises(ValueError, match="finite"):
        rectify_plate(frame, np.full((4, 2), np.nan))


def test_region_of_interest_searches_only_there_and_answers_in_frame_pixels(detector, clip_3s):
    from stream.source import read_frames
    from tracker.detector import clip_roi

    frame = read_frames(clip_3s.video_path)[10]
    h, w = frame.shape[:2]
    # The frame pasted into a larger canvas, the region on it: the same network input, so the
    # same detections, moved by the paste offset (with the coarse pass too, when it is on).
    dx, dy = 200, 120
    canvas = np.full((h + 300, w + 400, 3), 30, np.uint8)
    canvas[dy: dy + h, dx: dx + w] = frame
    for coarse in ("off", "on"):
        full = PlateDetector(config=DetectorConfig(coarse_pass=coarse)).detect([frame])[0]
        assert full, "no plate found in frame 10"
        moved = PlateDetector(config=DetectorConfig(roi=(dx, dy, w, h), coarse_pass=coarse)).detect([canvas])[0]
        assert len(moved) == len(full)
        for a, b in zip(sorted(full, key=lambda d: d.box[0]), sorted(moved, key=lambda d: d.box[0])):
            np.testing.assert_allclose(b.box, a.box + np.float32([dx, dy, dx, dy]), atol=0.5)
            assert b.score == pytest.approx(a.score, abs=1e-3)
            # The corner refiner looks around the box in the whole image, outside the region too:
            # for a box at the frame's edge it sees the canvas there, so only the others compare.
            inside = a.box[0] > 8 and a.box[1] > 8 and a.box[2] < w - 8 and a.box[3] < h - 8
            if a.corners is not None and inside:
                np.testing.assert_allclose(b.corners, a.corners + np.float32([dx, dy]), atol=0.5)
    # A region holding one plate's box finds that plate and nothing outside the region.
    x1, y1, x2, y2 = full[0].box
    roi = (max(0, int(x1) - 40), max(0, int(y1) - 20), int(x2 - x1) + 80, int(y2 - y1) + 40)
    found = PlateDetector(config=DetectorConfig(roi=roi)).detect([frame])[0]
    rx, ry, rw, rh = clip_roi(roi, w, h)
    assert found and all(rx - 1 <= d.box[0] and d.box[2] <= rx + rw + 1 and ry - 1 <= d.box[1] and d.box[3] <= ry + rh + 1
                         for d in found)
    best = max(found, key=lambda d: d.score)
    assert abs(best.box[0] - x1) < 0.1 * (x2 - x1) and abs(best.box[2] - x2) < 0.1 * (x2 - x1)
    # A region off the frame: nothing, no error.
    assert PlateDetector(config=DetectorConfig(roi=(w + 10, 0, 50, 50))).detect([frame]) == [[]]


def test_clip_roi():
    from tracker.detector import clip_roi

    assert clip_roi((10, 20, 100, 50), 640, 360) == (10, 20, 100, 50)
    assert clip_roi((600, 340, 100, 50), 640, 360) == (600, 340, 40, 20)
    assert clip_roi((-10, -5, 30, 30), 640, 360) == (0, 0, 20, 25)
    assert clip_roi((640, 0, 10, 10), 640, 360) is None


def test_torch_backend_in_bf16_finds_the_f32_plates(clip_3s):
    """precision bf16 on the torch back end (fp16's CPU stand-in here): weights and input in bf16,
    the same confident plates, boxes within a pixel or two; fp16 is refused off a CUDA device."""
    from stream.source import read_frames

    frames = read_frames(clip_3s.video_path)[::30]
    bf16 = PlateDetector(config=DetectorConfig(backend="torch", precision="bf16"))
    assert bf16.precision == "bf16" and next(bf16.model.parameters()).dtype == torch.bfloat16
    f32 = PlateDetector(config=DetectorConfig(backend="torch"))
    for a, b in zip(f32.detect(frames), bf16.detect(frames)):
        for da in (d for d in a if d.score >= 0.5):
            db = min(b, key=lambda d: np.abs(d.box - da.box).max())
            assert np.abs(da.box - db.box).max() < 2.0 and abs(da.score - db.score) < 0.05
    with pytest.raises(ValueError, match="fp16"):
        PlateDetector(config=DetectorConfig(backend="torch", precision="fp16"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the detector in fp16)")
def test_detector_in_fp16_on_a_gpu_finds_the_f32_plates(clip_3s):
    from stream.source import read_frames

    frames = read_frames(clip_3s.video_path)[::30]
    f32 = PlateDetector(config=DetectorConfig(backend="torch", device="cuda")).detect(frames)
    fp16 = PlateDetector(config=DetectorConfig(backend="torch", device="cuda", precision="fp16")).detect(frames)
    for a, b in zip(f32, fp16):
        for da in (d for d in a if d.score >= 0.5):
            db = min(b, key=lambda d: np.abs(d.box - da.box).max())
            assert np.abs(da.box - db.box).max() < 2.0 and abs(da.score - db.score) < 0.05
