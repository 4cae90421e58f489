"""Tests of the synthetic data generator (train.synth): plates, scenes, clips, datasets, degradations."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train.synth import (
    STYLES,
    SceneConfig,
    crop_to_multiple,
    degrade,
    iter_scene_frames,
    load_clip_truth,
    make_sr_pair,
    plain_downscale,
    random_plate_text,
    render_plate,
    render_scene_frame,
    write_detection_dataset,
    write_scene_clip,
)
from train.synth import plates as plates_mod
from train.synth.plates import CN_LETTERS, DIGITS, LATIN_LETTERS, PROVINCES

# Small scenes keep the file fast; plate sizes scaled to the 640-px frame.
SMALL = dict(width=640, height=360, fps=30.0, plate_width_px=(30.0, 90.0))


# ----------------------------------------------------------------------------- plates
@pytest.mark.parametrize("style", STYLES)
def test_plate_renders_with_text_length(style: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(8):
        p = render_plate(rng, style, height=48)
        assert p.style == style
        assert p.image.dtype == np.uint8 and p.image.ndim == 3 and p.image.shape[2] == 3
        assert p.image.shape[0] == 48
        assert p.mask is not None and p.mask.shape == p.image.shape[:2]
        aspect = p.image.shape[1] / p.image.shape[0]
        if style == "ccpd_blue":
            assert len(p.text) == 7
            assert p.text[0] in PROVINCES and p.text[1] in CN_LETTERS
            assert all(c in CN_LETTERS + DIGITS for c in p.text[2:])
            assert abs(aspect - 440 / 140) < 0.1
        else:
            assert 5 <= len(p.text) <= 8
            assert all(c in LATIN_LETTERS + DIGITS for c in p.text)
            assert 1.9 <= aspect <= 4.8
        assert p.image.std() > 20  # not blank: lettering contrasts with the plate


def test_plate_deterministic_and_size_independent() -> None:
    a = render_plate(np.random.default_rng(5), None, height=40)
    b = render_plate(np.random.default_rng(5), None, height=40)
    c = render_plate(np.random.default_rng(6), None, height=40)
    assert a.text == b.text and np.array_equal(a.image, b.image)
    assert a.text != c.text or not np.array_equal(a.image, c.image)
    wide = render_plate(np.random.default_rng(5), None, width=200)
    assert wide.text == a.text and wide.image.shape[1] == 200


def test_plate_fixed_text_and_random_text() -> None:
    p = render_plate(np.random.default_rng(1), "latin", 32, text="AB 123 CD")
    assert p.text == "AB123CD"
    rng = np.random.default_rng(2)
    assert len(random_plate_text(rng, "ccpd_blue")) == 7
    assert 5 <= len(random_plate_text(rng, "latin")) <= 8
    with pytest.raises(ValueError):
        random_plate_text(rng, "klingon")


def test_missing_cjk_font_names_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    plates_mod.find_cjk_font.cache_clear()
    monkeypatch.delenv(plates_mod.CJK_FONT_ENV, raising=False)
    monkeypatch.setattr(plates_mod, "_CJK_FONT_GLOBS", ("/nonexistent/*.ttc",))
    monkeypatch.setattr(plates_mod.shutil, "which", lambda _name: None)
    try:
        with pytest.raises(FileNotFoundError, match="fonts-wqy-microhei"):
            plates_mod.find_cjk_font()
    finally:
        plates_mod.find_cjk_font.cache_clear()


# ----------------------------------------------------------------------------- scenes
def _frames(cfg: SceneConfig, seed: int):
    return list(iter_scene_frames(cfg, seed))


def test_scene_determinism_by_seed() -> None:
    cfg = SceneConfig(seconds=0.3, **SMALL)
    a, b, c = _frames(cfg, 1), _frames(cfg, 1), _frames(cfg, 2)
    assert len(a) == cfg.n_frames == 9
    for (fa, ta), (fb, tb) in zip(a, b):
        assert fa.shape == (360, 640, 3) and fa.dtype == np.uint8
        assert np.array_equal(fa, fb)
        assert [(t.track_id, t.text, t.visibility) for t in ta] == [(t.track_id, t.text, t.visibility) for t in tb]
        for x, y in zip(ta, tb):
            assert np.array_equal(x.box, y.box) and np.array_equal(x.corners, y.corners)
    assert not np.array_equal(a[0][0], c[0][0])
    # Random access gives the same frame as iteration.
    f4, t4 = render_scene_frame(cfg, 1, 4)
    assert np.array_equal(f4, a[4][0]) and [t.visibility for t in t4] == [t.visibility for t in a[4][1]]


def test_scene_truth_geometry_and_no_plate_overlap() -> None:
    for seed in range(3):
        cfg = SceneConfig(seconds=1.0, **SMALL)
        for _, truths in iter_scene_frames(cfg, seed):
            for t in truths:
                assert t.box.shape == (4,) and t.box.dtype == np.float32
                assert t.corners.shape == (4, 2) and t.corners.dtype == np.float32
                assert 0.0 <= t.visibility <= 1.0
                assert 1 <= t.track_id <= cfg.n_plates
                assert np.allclose(t.box, [*t.corners.min(0), *t.corners.max(0)])
                if t.visibility >= 0.99:  # fully visible: inside the frame
                    assert t.box[0] >= -1 and t.box[1] >= -1 and t.box[2] <= cfg.width + 1 and t.box[3] <= cfg.height + 1
            vis = [t.box for t in truths if t.visibility > 0.5]
            for i in range(len(vis)):
                for j in range(i + 1, len(vis)):
                    a, b = vis[i], vis[j]
                    iw = min(a[2], b[2]) - max(a[0], b[0])
                    ih = min(a[3], b[3]) - max(a[1], b[1])
                    assert iw <= 0 or ih <= 0, f"plates overlap (seed {seed})"


def test_occlusion_hides_a_plate_for_some_frames() -> None:
    cfg = SceneConfig(seconds=3.0, enter_leave=0.0, occlusion=1.0, **SMALL)
    hidden = 0
    for _, truths in iter_scene_frames(cfg, 0):
        for t in truths:
            inside = t.box[0] >= 0 and t.box[1] >= 0 and t.box[2] <= cfg.width and t.box[3] <= cfg.height
            hidden += bool(inside and t.visibility < 0.5)
    assert 0 < hidden < cfg.n_frames * cfg.n_plates // 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("clip")
    return write_scene_clip(out, SceneConfig(seconds=1.0, **SMALL), seed=7)


def test_clip_decodes_to_configured_frames(clip) -> None:
    av = pytest.importorskip("av")
    with av.open(str(clip.video_path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name in ("h264", "libx264")
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(s)]
    assert len(frames) == clip.n_frames == 30
    assert frames[0].shape == (360, 640, 3)
    assert clip.size == (640, 360) == (clip.width, clip.height) and clip.fps == 30.0
    assert clip.clip_path == clip.video_path


def test_clip_gt_txt_json_agree_and_load_back(clip) -> None:
    rows = [line.split(",") for line in clip.gt_txt_path.read_text().splitlines()]
    assert rows and all(len(r) == 9 for r in rows)
    doc = json.loads(clip.gt_json_path.read_text())
    assert doc["n_frames"] == 30 and doc["width"] == 640 and doc["height"] == 360 and doc["seed"] == 7
    assert len(doc["frames"]) == 30
    n_json = sum(len(f) for f in doc["frames"])
    assert len(rows) == n_json
    loaded = load_clip_truth(clip.out_dir)
    assert loaded.n_frames == clip.n_frames and loaded.size == clip.size and loaded.plates == clip.plates
    by_key = {(int(r[0]), int(r[1])): [float(v) for v in r[2:]] for r in rows}
    for fi, (orig, back) in enumerate(zip(clip.frames, loaded.frames)):
        assert [t.track_id for t in orig] == [t.track_id for t in back]
        for o, b in zip(orig, back):
            assert o.text == b.text and o.style == b.style
            assert np.allclose(o.box, b.box, atol=1e-3) and np.allclose(o.corners, b.corners, atol=1e-3)
            assert abs(o.visibility - b.visibility) < 1e-4
            x, y, w, h, conf, cls, vis = by_key[(fi + 1, o.track_id)]
            assert np.allclose([x, y, x + w, y + h], o.box, atol=2e-3)
            assert conf == 1 and cls == 1 and abs(vis - o.visibility) < 1e-3
    assert {t.track_id for f in clip.frames for t in f} == set(clip.plates) == {1, 2, 3}


def test_odd_frame_size_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_scene_clip(tmp_path, SceneConfig(width=321, height=240, seconds=0.1), seed=0)


# ----------------------------------------------------------------------------- detection dataset
def test_detection_dataset_labels_normalised(tmp_path: Path) -> None:
    yaml = write_detection_dataset(tmp_path / "det", n_images=6, seed=3, imgsz=320, val_fraction=0.2)
    text = yaml.read_text()
    assert "train: images/train" in text and "val: images/val" in text and "0: plate" in text
    root = yaml.parent
    train = sorted((root / "images" / "train").glob("*.jpg"))
    val = sorted((root / "images" / "val").glob("*.jpg"))
    assert len(train) == 5 and len(val) == 1
    n_boxes = 0
    for img in train + val:
        label = root / "labels" / img.parent.name / (img.stem + ".txt")
        assert label.exists()
        for line in label.read_text().splitlines():
            cls, *vals = line.split()
            assert cls == "0" and len(vals) == 4
            cx, cy, w, h = map(float, vals)
            assert all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)) and w > 0 and h > 0
            assert cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6 and cy - h / 2 >= -1e-6 and cy + h / 2 <= 1 + 1e-6
            n_boxes += 1
    assert n_boxes > 0


# ----------------------------------------------------------------------------- degradations
def test_degrade_shape_dtype_and_determinism() -> None:
    hr = render_plate(np.random.default_rng(0), "latin", height=67).image
    assert crop_to_multiple(hr, 4).shape[:2] == (64, hr.shape[1] // 4 * 4)
    for strength in (0.0, 0.5, 1.0):
        lr = degrade(hr, 4, np.random.default_rng(1), strength)
        assert lr.shape == (67 // 4, hr.shape[1] // 4, 3) and lr.dtype == np.uint8
    a = degrade(hr, 2, np.random.default_rng(9))
    b = degrade(hr, 2, np.random.default_rng(9))
    assert np.array_equal(a, b) and a.shape == (33, hr.shape[1] // 2, 3)
    assert plain_downscale(hr, 4).shape == (16, hr.shape[1] // 4, 3)


@pytest.mark.parametrize("scale", [2, 4])
def test_make_sr_pair_shapes(scale: int) -> None:
    rng = np.random.default_rng(scale)
    for style in STYLES:
        lr, hr, text = make_sr_pair(rng, scale=scale, hr_height=62, style=style)
        assert hr.shape[0] % scale == 0 and hr.shape[1] % scale == 0 and hr.shape[0] >= 62
        assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
        assert lr.dtype == hr.dtype == np.uint8 and len(text) >= 5
    lr, hr, _ = make_sr_pair(rng, scale=scale, hr_height=64, hr_width=256)
    assert hr.shape == (64, 256, 3) and lr.shape == (64 // scale, 256 // scale, 3)


# ----------------------------------------------------------------------------- CLI
def test_cli_plates(tmp_path: Path) -> None:
    from train.synth.__main__ import main

    assert main(["plates", str(tmp_path), "--n", "3", "--seed", "1"]) == 0
    assert len(list(tmp_path.glob("*.png"))) == 3


def test_detection_dataset_is_the_same_with_worker_processes(tmp_path: Path) -> None:
    import hashlib

    def digest(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
                for p in root.rglob("*") if p.suffix in (".jpg", ".txt")}

    one = write_detection_dataset(tmp_path / "one", n_images=5, seed=4, imgsz=256, keypoints=True, randomise=True)
    two = write_detection_dataset(tmp_path / "two", n_images=5, seed=4, imgsz=256, keypoints=True, randomise=True,
                                  workers=2)
    assert digest(one.parent) == digest(two.parent) and len(digest(one.parent)) == 10


def test_latin_variant_styles_draw_one_variant_each() -> None:
    """latin_eu / latin_uk_rear / latin_us / latin_generic: one variant each (their own aspects),
    Latin text rules, deterministic; plain latin still draws among them."""
    from train.synth.plates import LATIN_VARIANT_STYLES

    aspects = {}
    for style in LATIN_VARIANT_STYLES:
        seen = set()
        for seed in range(6):
            p = render_plate(np.random.default_rng(seed), style, height=40)
            assert 5 <= len(p.text) <= 8 and all(c in LATIN_LETTERS + DIGITS for c in p.text)
            seen.add(round(p.image.shape[1] / p.image.shape[0], 1))
            again = render_plate(np.random.default_rng(seed), style, height=40)
            assert np.array_equal(p.image, again.image)
        aspects[style] = seen
    assert all(a < 2.2 for a in aspects["latin_us"]) and all(a > 4.4 for a in aspects["latin_eu"])
    mixed = {round(render_plate(np.random.default_rng(s), "latin", height=40).image.shape[1] / 40, 1) for s in range(20)}
    assert len(mixed) >= 3


def test_detection_dataset_styles_weigh_the_mix(tmp_path: Path) -> None:
    default = write_detection_dataset(tmp_path / "default", n_images=3, seed=5, imgsz=256)
    us_only = write_detection_dataset(tmp_path / "us", n_images=3, seed=5, imgsz=256, styles=("latin_us",))
    img = sorted((default.parent / "images" / "train").glob("*.jpg"))
    img_us = sorted((us_only.parent / "images" / "train").glob("*.jpg"))
    assert [p.name for p in img] == [p.name for p in img_us]
    assert any(a.read_bytes() != b.read_bytes() for a, b in zip(img, img_us))
