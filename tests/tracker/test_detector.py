import numpy as np
import pytest

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


def test_boxes_are_in_frame_pixels(detector, clip_3s):
    from stream.source import read_frames

    frame = read_frames(clip_3s.video_path)[10]
    big = np.pad(frame, ((0, frame.shape[0]), (0, 0), (0, 0)))  # same content, taller canvas
    a, b = detector.detect([frame])[0], PlateDetector(config=DetectorConfig(imgsz=640)).detect([big])[0]
    assert a, "no plate found in frame 10"
    for det in a:
        assert 0 <= det.box[0] < det.box[2] <= frame.shape[1] and 0 <= det.box[1] < det.box[3] <= frame.shape[0]


def test_unreadable_weights(tmp_path):
    bad = tmp_path / "d.safetensors"
    bad.write_bytes(b"nope" * 50)
    with pytest.raises(DetectorWeightsError):
        PlateDetector(bad)
    with pytest.raises(DetectorWeightsError, match="not found"):
        PlateDetector(tmp_path / "none.safetensors")
