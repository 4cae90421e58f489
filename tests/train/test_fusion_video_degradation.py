"""train.video_degradation: fusion training sequences made like the pipeline's crops of H.264 video."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from sr_model.fusion import load_fusion
from train.fusion import FusionTrainConfig, main, make_sequence, synthetic_hr
from train.video_degradation import VideoDegradation, encode_decode, video_sequence

STILL = dict(noise=(0.0, 0.0), blur_jitter=(1.0, 1.0), corner=(0.0, 0.0), framing=0.0, shake=0.0, zoom_per_frame=(0.0, 0.0), p_coast=0.0,
             blur=(0.5, 0.5), drift=0)


def test_encode_decode_keeps_count_size_and_is_lossy():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 48, 3), np.uint8) for _ in range(4)]
    out = encode_decode(frames, 35)
    assert len(out) == 4 and all(o.shape == (32, 48, 3) and o.dtype == np.uint8 for o in out)
    assert np.abs(out[0].astype(int) - frames[0]).mean() > 5  # CRF 35 on noise: far from lossless
    flat = encode_decode([np.full((16, 16, 3), 128, np.uint8)] * 2, 23)
    assert np.abs(flat[1].astype(int) - 128).max() <= 8
    with pytest.raises(ValueError):
        encode_decode([np.zeros((15, 16, 3), np.uint8)], 23)


def test_reference_and_target_frame_the_same_plate():
    rng = np.random.default_rng(1)
    hr = synthetic_hr(rng, 96)
    crops, target = video_sequence(hr, 5, 4, rng)
    assert len(crops) == 5 and crops[-1].shape == (15, hr.shape[1] // 4, 3) and target.shape == hr.shape
    assert all(c.dtype == np.uint8 and c.ndim == 3 for c in crops)
    # the target is the clean HR up to the reference's corner jitter; the reference, enlarged, matches it
    ref_up = cv2.resize(crops[-1], (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC).astype(float)
    blurred = cv2.GaussianBlur(target, (0, 0), 4).astype(float)
    other = cv2.GaussianBlur(synthetic_hr(np.random.default_rng(9), hr.shape[1]), (0, 0), 4)[:, : hr.shape[1]]
    assert np.corrcoef(ref_up.ravel(), blurred.ravel())[0, 1] > 0.8
    assert np.corrcoef(ref_up.ravel(), blurred.ravel())[0, 1] > np.corrcoef(ref_up.ravel(), other.ravel())[0, 1]


def test_without_motion_jitter_or_noise_frames_repeat_and_target_is_the_hr():
    rng = np.random.default_rng(2)
    hr = synthetic_hr(rng, 96)
    crops, target = video_sequence(hr, 4, 4, rng, VideoDegradation(crf=(18, 18), **STILL))
    assert np.array_equal(target, hr)
    assert all(c.shape == crops[-1].shape for c in crops)
    assert max(float(np.abs(c.astype(int) - crops[-1]).mean()) for c in crops) < 1.5


def test_zoom_makes_earlier_crops_smaller():
    rng = np.random.default_rng(3)
    hr = synthetic_hr(rng, 96)
    still = dict(STILL, zoom_per_frame=(0.05, 0.05))
    crops, _ = video_sequence(hr, 5, 4, rng, VideoDegradation(**still))
    widths = [c.shape[1] for c in crops]
    assert widths == sorted(widths) and widths[0] < widths[-1] * 0.88


def test_wrong_plate_is_never_the_reference():
    hr = synthetic_hr(np.random.default_rng(4), 96)
    with pytest.raises(ValueError):
        video_sequence(hr, 3, 4, np.random.default_rng(0), wrong={2: hr})


def test_make_sequence_video_share_and_cli(tmp_path):
    rng = np.random.default_rng(5)
    hr = synthetic_hr(rng, 96)
    cfg = FusionTrainConfig(k=4, p_wrong=0.0, p_video=1.0, motion="affine")
    seq = make_sequence(rng, hr, [], cfg)
    assert seq["lr"].shape == (4, 15, hr.shape[1] // 4, 3) and seq["hr"].shape == hr.shape
    assert seq["valid"][-1] and seq["valid"].sum() >= 3
    out = tmp_path / "f.safetensors"
    main(["--out", str(out), "--work", str(tmp_path / "w"), "--data", str(tmp_path / "none"), "--steps", "2",
          "--batch", "2", "--k", "3", "--channels", "8", "--dec-blocks", "1", "--att-channels", "4",
          "--n-synthetic", "4", "--n-val-synthetic", "2", "--real-repeats", "1", "--eval-every", "2",
          "--p-video", "0.5", "--motion", "affine", "--video", json.dumps({"crf": [30, 30]})])
    _, info = load_fusion(out)
    assert info["alignment"]["motion"] == "affine"
    assert info["command_config"]["p_video"] == 0.5 and info["command_config"]["video"] == {"crf": [30, 30]}
    assert info["trained_on"]["video_sequences"].startswith("share 0.5")


def test_init_starts_from_given_weights_and_rejects_another_architecture(tmp_path):
    import torch

    from train.fusion import FusionTrainConfig, train_fusion

    tiny = dict(steps=1, batch=2, k=3, channels=8, dec_blocks=1, att_channels=4, n_synthetic=3, n_val_synthetic=1,
                real_repeats=1, eval_every=1, ckpt_every=1, data=str(tmp_path / "none"), lr=1e-12)
    first = tmp_path / "a.safetensors"
    train_fusion(FusionTrainConfig(**tiny), first, tmp_path / "wa")
    second = tmp_path / "b.safetensors"
    info = train_fusion(FusionTrainConfig(**tiny, init=str(first), seed=3), second, tmp_path / "wb")
    a, _ = load_fusion(first)
    b, _ = load_fusion(second)
    assert info["trained_on"]["init"] == str(first)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name  # lr ~0: one step from the same start
    with pytest.raises(ValueError):
        train_fusion(FusionTrainConfig(**dict(tiny, channels=16), init=str(first)), tmp_path / "c.safetensors",
                     tmp_path / "wc")
