"""Appearance descriptor and its use by PlateTracker (veto of a lost track, identical without)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from tracker.appearance import (
    APPEARANCE_DIM,
    appearance_distance,
    crop_appearance,
    plate_appearance,
    with_appearance,
)
from tracker.sort import PlateTracker, TrackerConfig
from tracker.types import Detection


def _plate(text_seed: int, bg=(255, 255, 255), w: int = 120, h: int = 30) -> np.ndarray:
    """A plate-like crop: background colour with dark random 'characters'."""
    rng = np.random.default_rng(text_seed)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = bg
    for k in range(6):
        x = 8 + k * (w - 16) // 6
        cw = (w - 16) // 6 - 3
        mask = rng.random((h - 10, cw)) < 0.5
        img[5 : h - 5, x : x + cw][mask] = (20, 20, 20)
    return img


def test_descriptor_is_unit_norm_and_separates_plates() -> None:
    a, b = _plate(1), _plate(2, bg=(200, 120, 30))
    da, db = plate_appearance(a), plate_appearance(b)
    assert da.shape == (APPEARANCE_DIM,) and da.dtype == np.float32
    assert abs(np.linalg.norm(da) - 1) < 1e-5
    noisy = np.clip(a.astype(int) * 0.8 + 20 + np.random.default_rng(0).normal(0, 4, a.shape), 0, 255).astype(np.uint8)
    assert appearance_distance(da, plate_appearance(noisy)) < 0.15  # lighting change + noise
    assert appearance_distance(da, db) > 0.45
    flat = plate_appearance(np.full((20, 60, 3), 128, np.uint8))
    assert np.isfinite(flat).all() and abs(np.linalg.norm(flat) - 1) < 1e-5
    assert plate_appearance(a[..., 0]).shape == (APPEARANCE_DIM,)  # grayscale crop


def test_crop_appearance_clips_and_fills_detections() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:70, 50:170] = _plate(1)
    assert crop_appearance(frame, np.array([-50, -50, -48, 10], np.float32)) is None
    d = crop_appearance(frame, np.array([50, 40, 170, 70], np.float32))
    assert appearance_distance(d, plate_appearance(_plate(1))) < 1e-5
    dets = with_appearance(frame, [Detection(np.array([50, 40, 170, 70], np.float32), 0.9)])
    assert dets[0].appearance is not None and dets[0].score == 0.9


def _box(cx: float, cy: float = 300.0, w: float = 60.0, h: float = 15.0) -> np.ndarray:
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


def _reappear_scene(new_look: np.ndarray | None, old_look: np.ndarray | None):
    """Plate A moves right at 300 px/s, is undetected 0.3-0.6 s; at 0.6 s a plate B appears
    exactly where A is predicted. Returns the detections per frame at 30 fps."""
    frames = []
    for i in range(36):
        t = i / 30
        if t < 0.3:
            frames.append((t, [Detection(_box(100 + 300 * t), 0.9, appearance=old_look)]))
        elif t < 0.6:
            frames.append((t, []))
        else:
            frames.append((t, [Detection(_box(100 + 300 * t), 0.9, appearance=new_look)]))
    return frames


def _ids(frames, config: TrackerConfig | None = None) -> list[list[int]]:
    tracker = PlateTracker(config)
    return [[tr.track_id for tr in tracker.update(dets, t)] for t, dets in frames]


def test_lost_track_does_not_grab_a_different_plate() -> None:
    a, b = plate_appearance(_plate(1)), plate_appearance(_plate(2, bg=(200, 120, 30)))
    # Without appearance (or with the same look) the lost track takes the new plate: id 1.
    assert _ids(_reappear_scene(None, None))[-1] == [1]
    assert _ids(_reappear_scene(a, a))[-1] == [1]
    # With a clearly different look it is vetoed: a new track (id 2), confirmed after 2 hits.
    ids = _ids(_reappear_scene(b, a))
    assert ids[-1] == [2] and all(1 not in row for row in ids[18:])
    # Appearance switched off in the config: old behaviour.
    assert _ids(_reappear_scene(b, a), TrackerConfig(use_appearance=False))[-1] == [1]


def test_appearance_breaks_a_near_tie() -> None:
    a, b = plate_appearance(_plate(1)), plate_appearance(_plate(2, bg=(200, 120, 30)))
    tracker = PlateTracker()
    for i in range(10):  # two plates side by side, moving right
        t = i / 30
        out = tracker.update([Detection(_box(100 + 300 * t, 300), 0.9, appearance=a),
                              Detection(_box(100 + 300 * t, 330), 0.9, appearance=b)], t)
    ids = {tr.track_id: (tr.box[1] + tr.box[3]) / 2 for tr in out}
    first = min(ids, key=ids.get)  # track at y=300 carries look a
    # Both detections now land half-way between the two tracks (motion cost tied, each fits
    # either); the looks decide.
    t = 10 / 30
    out = tracker.update([Detection(_box(100 + 300 * t, 315.5), 0.9, appearance=b),
                          Detection(_box(100 + 300 * t, 314.5), 0.9, appearance=a)], t)
    by_id = {tr.track_id: (tr.box[1] + tr.box[3]) / 2 for tr in out}
    assert by_id[first] < by_id[max(by_id, key=lambda k: k != first)] or len(by_id) == 2
    tr_first = next(tr for tr in tracker._tracks if tr.track_id == first)
    assert appearance_distance(tr_first.appearance, a) < appearance_distance(tr_first.appearance, b)


def test_output_identical_without_appearance() -> None:
    """appearance=None everywhere == descriptors present but use_appearance=False == before."""
    rng = np.random.default_rng(5)
    looks = [plate_appearance(_plate(k)) for k in range(3)]
    seq = []
    for i in range(90):
        t = i / 30
        dets = []
        for k in range(3):
            if rng.random() < 0.8:
                box = _box(100 + 200 * k + 150 * t, 200 + 40 * k) + rng.normal(0, 1, 4).astype(np.float32)
                dets.append(Detection(box, float(rng.uniform(0.3, 0.95)), appearance=looks[k]))
        if rng.random() < 0.3:
            x, y = rng.uniform(0, 600, 2)
            dets.append(Detection(np.array([x, y, x + 40, y + 10], np.float32), 0.6, appearance=looks[0]))
        seq.append((t, dets))

    def run(strip: bool, config: TrackerConfig | None = None):
        tracker = PlateTracker(config)
        out = []
        for t, dets in seq:
            d = [replace(x, appearance=None) for x in dets] if strip else dets
            out.append([(tr.track_id, tr.box.tobytes(), tr.detected) for tr in tracker.update(d, t)])
        return out

    plain = run(strip=True)
    assert plain == run(strip=False, config=TrackerConfig(use_appearance=False))
    assert any(plain)
