"""HR sources, the Real-ESRGAN-style degradation pipeline and batch sampling (offline, tiny)."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from train.sr_data import CcpdPlates, OpenalprContext, OpenalprPlates, PairSampler, SyntheticPlates, split_names
from train.sr_degradation import DegradationConfig, h264, mixed_degrade, realesrgan_degrade


def _hr(seed=0, h=60, w=120):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 200, np.uint8)
    for _ in range(6):
        x = int(rng.integers(5, w - 15))
        cv2.putText(img, str(int(rng.integers(10))), (x, h - 15), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (20, 20, 20), 3)
    return img


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_realesrgan_degrade_shape_dtype_and_determinism(scale):
    hr = _hr()
    for seed in range(12):
        a = realesrgan_degrade(hr, scale, np.random.default_rng(seed))
        b = realesrgan_degrade(hr, scale, np.random.default_rng(seed))
        assert a.shape == (60 // scale, 120 // scale, 3) and a.dtype == np.uint8
        assert np.array_equal(a, b)
    outs = {realesrgan_degrade(hr, scale, np.random.default_rng(s)).tobytes() for s in range(6)}
    assert len(outs) == 6  # different seeds, different degradations


def test_mixed_degrade_covers_every_family_and_h264_round_trips():
    hr = _hr(1, 61, 127)  # not multiples of the scale: cropped first
    for seed in range(20):
        lr = mixed_degrade(hr, 4, np.random.default_rng(seed))
        assert lr.shape == (15, 31, 3) and lr.dtype == np.uint8
    # always H.264 at the end
    cfg = DegradationConfig(h264_prob=1.0, mix_realesrgan=1, mix_simple=0, mix_plain=0)
    a = mixed_degrade(hr, 4, np.random.default_rng(3), cfg)
    assert np.array_equal(a, mixed_degrade(hr, 4, np.random.default_rng(3), cfg))
    small = cv2.resize(hr, (31, 15), interpolation=cv2.INTER_AREA)
    coded = h264(small, crf=20)
    assert coded.shape == small.shape and np.abs(coded.astype(int) - small.astype(int)).mean() < 20
    assert np.abs(h264(small, crf=45).astype(int) - small.astype(int)).mean() > \
        np.abs(coded.astype(int) - small.astype(int)).mean()


def _fake_openalpr(root: Path, n: int = 5) -> Path:
    folder = root / "openalpr" / "us"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        photo = rng.integers(60, 200, (300, 400, 3), dtype=np.uint8)
        ph = 30 + 10 * i  # plate box heights 30..70 px
        photo[100:100 + ph, 100:100 + 2 * ph] = cv2.resize(_hr(i), (2 * ph, ph))
        cv2.imwrite(str(folder / f"car{i}.jpg"), photo)
        (folder / f"car{i}.txt").write_text(f"car{i}.jpg\t100\t100\t{2 * ph}\t{ph}\tAB{i}23\n")
    return folder


def test_openalpr_source_keeps_native_hr_only_and_splits_by_seed(tmp_path):
    folder = _fake_openalpr(tmp_path)
    train = OpenalprPlates(folder, "train", min_native_height=40, val_fraction=0.34, seed=0)
    val = OpenalprPlates(folder, "val", min_native_height=40, val_fraction=0.34, seed=0)
    # crop height = box height x 1.2: boxes 30, 40, 50, 60, 70 -> crops 36, 48, 60, 72, 84: four qualify
    assert train.n_qualified == 4 and len(train) + len(val) == 4 and len(val) == 1
    assert not {c.name for c in train.crops} & {c.name for c in val.crops}
    assert all(s.hr.shape[0] == 60 and s.text.startswith("AB") for s in train.items)
    assert split_names(["a", "b", "c", "d"], 0.5, 1) == split_names(["d", "c", "b", "a"], 0.5, 1)
    ctx = OpenalprContext(folder, {c.name for c in train.crops}, per_photo=4, seed=0)
    assert len(ctx) > 0 and all(s.text is None and s.hr.shape[0] == 60 for s in ctx.items)
    with pytest.raises(ValueError, match="evaluation"):
        OpenalprPlates(tmp_path / "openalpr" / "eu")


def _ccpd_name(x1, y1, x2, y2, plate="0_0_22_27_27_33_16"):
    # vertices br, bl, tl, tr
    return f"025-95_113-{x1}&{y1}_{x2}&{y2}-{x2}&{y2}_{x1}&{y2}_{x1}&{y1}_{x2}&{y1}-{plate}-37-15.jpg"


def test_ccpd_source_warps_plates_from_a_fake_folder(tmp_path):
    folder = tmp_path / "ccpd"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (x1, y1) in enumerate([(50, 60), (120, 200)]):
        img = rng.integers(0, 80, (400, 360, 3), dtype=np.uint8)
        img[y1:y1 + 50, x1:x1 + 160] = (200, 60, 20)  # a blue plate
        cv2.imwrite(str(folder / _ccpd_name(x1, y1, x1 + 160, y1 + 50, plate=f"0_0_22_27_27_33_{i}")), img)
    (folder / "notes.txt").write_text("not an image")
    src = CcpdPlates(folder)
    assert len(src) == 2
    s = src.items[0]
    assert s.hr.shape[0] == 60 and s.hr.dtype == np.uint8 and s.text.startswith("皖A")
    # the plate fills the middle of the crop: blue there
    mid = s.hr[25:35, s.hr.shape[1] // 2 - 10: s.hr.shape[1] // 2 + 10].reshape(-1, 3).mean(0)
    assert mid[0] > 150 and mid[2] < 60


def test_pair_sampler_batches_are_aligned_and_seeded(tmp_path):
    syn = SyntheticPlates(6, seed=1)
    assert all(s.hr.shape[0] == 60 and s.hr.shape[1] >= 96 and s.text for s in syn.items)
    sampler = PairSampler([syn], [1.0], scale=4, hr_w=96)
    b = sampler.batch(np.random.default_rng(0), 5)
    assert b.lr.shape == (5, 3, 15, 24) and b.hr.shape == (5, 3, 60, 96)
    assert b.lr.dtype == torch.float32 and 0 <= b.lr.min() and b.hr.max() <= 1
    c = sampler.batch(np.random.default_rng(0), 5)
    assert torch.equal(b.lr, c.lr) and torch.equal(b.hr, c.hr) and b.texts == c.texts
    # a sample keeps its text only if the patch is the whole plate crop
    wide = PairSampler([syn], [1.0], scale=3, hr_w=600)
    d = wide.batch(np.random.default_rng(1), 3)
    assert d.lr.shape == (3, 3, 20, 200) and all(t for t in d.texts)


def test_pair_sampler_footage_share_gives_aligned_video_crops():
    """p_video 1: every LR is a crop cut from H.264 footage (train.video_degradation), the target
    the HR its corners frame; seeded like the rest; p_video outside [0, 1] is refused."""
    syn = SyntheticPlates(4, seed=2)
    video = PairSampler([syn], [1.0], scale=4, hr_w=96, p_video=1.0)
    b = video.batch(np.random.default_rng(3), 4)
    assert b.lr.shape == (4, 3, 15, 24) and b.hr.shape == (4, 3, 60, 96)
    c = video.batch(np.random.default_rng(3), 4)
    assert torch.equal(b.lr, c.lr) and torch.equal(b.hr, c.hr)
    plain = PairSampler([syn], [1.0], scale=4, hr_w=96).batch(np.random.default_rng(3), 4)
    assert not torch.equal(b.lr, plain.lr)
    # aligned: the target area-reduced x4 matches the LR best unshifted (blur, noise and H.264 aside)
    hr = b.hr.numpy().transpose(0, 2, 3, 1)
    lr = b.lr.numpy().transpose(0, 2, 3, 1)
    best_unshifted = 0
    for h, low in zip(hr, lr):
        down = cv2.resize(h, (24, 15), interpolation=cv2.INTER_AREA)
        err = {(dx, dy): np.abs(np.roll(down, (dy, dx), (0, 1)) - low)[2:-2, 2:-2].mean()
               for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
        best_unshifted += min(err, key=err.get) == (0, 0)
    assert best_unshifted >= 3
    with pytest.raises(ValueError, match="p_video"):
        PairSampler([syn], [1.0], scale=4, p_video=1.5)
