"""ECC alignment: recovers known sub-pixel shifts, maps warps back from the upsampled grid, drops crops that do not match."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from sr_model.align import align_sequence, estimate_alignment, warp_to_reference


def _texture(h: int = 20, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random BGR texture ((h, w, 3) float32 in [0, 1]) with plate-like detail at 2-4 px."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.2)
    return (img - img.min()) / (img.max() - img.min())


def _shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img moved by (dx, dy) px: out(x, y) = img(x - dx, y - dy), bicubic, edges replicated."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dx, dy", [(0.3, 0.0), (0.0, -0.3), (0.3, 0.2), (-1.4, 0.6)])
@pytest.mark.parametrize("upsample", [1, 2])
def test_recovers_known_subpixel_shift(dx, dy, upsample):
    ref = _texture()
    a = estimate_alignment(_u8(_shifted(ref, dx, dy)), _u8(ref), upsample=upsample)
    assert a.ok and a.ecc > 0.9
    assert a.shift == pytest.approx((dx, dy), abs=0.05)
    assert np.allclose(a.warp[:, :2], np.eye(2), atol=1e-6)  # translation model


def test_affine_motion_recovers_shift_too():
    ref = _texture(24, 72, seed=3)
    a = estimate_alignment(_u8(_shifted(ref, 0.3, -0.2)), _u8(ref), motion="affine")
    assert a.ok and a.shift == pytest.approx((0.3, -0.2), abs=0.05)
    assert np.allclose(a.warp[:, :2], np.eye(2), atol=0.02)


def test_warp_to_reference_undoes_the_shift():
    ref = _texture(seed=1)
    moved = _shifted(ref, 0.6, -0.4)
    a = estimate_alignment(_u8(moved), _u8(ref))
    back = warp_to_reference(moved, a.warp)
    inner = (slice(3, -3), slice(3, -3))  # away from the replicated edges
    err_aligned = np.abs(back[inner] - ref[inner]).mean()
    err_raw = np.abs(moved[inner] - ref[inner]).mean()
    assert err_aligned < 0.25 * err_raw


def test_other_plate_and_flat_crop_are_not_ok():
    ref = _u8(_texture(seed=4))
    assert not estimate_alignment(_u8(_texture(seed=5)), ref).ok  # different content
    flat = np.full_like(ref, 128)
    a = estimate_alignment(flat, ref)
    assert not a.ok and np.array_equal(a.warp, np.eye(2, 3, dtype=np.float32))
    with pytest.raises(ValueError):
        estimate_alignment(ref[:10], ref)
    with pytest.raises(ValueError):
        estimate_alignment(ref, ref, motion="homography")


def test_align_sequence_drops_bad_frames_and_resizes():
    ref = _texture(seed=6)
    good = _u8(_shifted(ref, 0.4, 0.1))
    bigger = cv2.resize(_u8(_shifted(ref, -0.3, 0.0)), (66, 21), interpolation=cv2.INTER_LINEAR)  # a few px off
    bad = _u8(_texture(seed=7))
    seq = align_sequence([good, bad, bigger, _u8(ref)])
    assert seq.valid.tolist() == [True, False, True, True]
    assert seq.n_used == 3 and seq.n_dropped == 1
    assert all(f.shape == (20, 64, 3) and f.dtype == np.float32 for f in seq.frames)
    assert np.array_equal(seq.frames[1], seq.frames[-1])  # a dropped frame is a placeholder, masked out later
    assert seq.alignments[0].shift == pytest.approx((0.4, 0.1), abs=0.05)
    with pytest.raises(ValueError):
        align_sequence([])


@pytest.mark.parametrize("upsample", [1, 2])
def test_align_sequence_matches_pairwise_estimates(upsample):
    """align_sequence prepares the reference once; the warps and ECC values are those of estimate_alignment."""
    ref = _texture(seed=8)
    crops = [_u8(_shifted(ref, 0.35, -0.2)), _u8(_texture(seed=9)), _u8(_shifted(ref, -0.6, 0.3)), _u8(ref)]
    seq = align_sequence(crops, upsample=upsample)
    for crop, got in zip(crops[:-1], seq.alignments):
        want = estimate_alignment(crop, crops[-1], upsample=upsample)
        assert got.ok == want.ok and np.array_equal(got.warp, want.warp)
        assert got.ecc == want.ecc or (np.isnan(got.ecc) and np.isnan(want.ecc))
    flat = np.full_like(crops[-1], 90)
    assert align_sequence([crops[0], flat], upsample=upsample).valid.tolist() == [False, True]
