"""Multi-frame fusion: identical frames = the single-frame path, dropped frames have no influence, the API's shapes and weights I/O."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sr_model.fusion import (DEFAULT_FUSION_WEIGHTS, FusedPlate, FusionConfig, FusionEnhancer, FusionNetConfig,
                             FusionWeightsError, build_fusion_model, load_fusion, save_fusion)

TINY = FusionNetConfig(channels=8, enc_blocks=1, dec_blocks=1, att_channels=4)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = build_fusion_model(TINY)
    with torch.no_grad():  # make the attention scorer matter: random, not near-uniform weights
        for p in model.attention.parameters():
            p.mul_(20)
    return save_fusion(model, tmp_path_factory.mktemp("w") / "tiny.safetensors", {"note": "test"})


def _plate(seed: int = 0, h: int = 15, w: int = 48) -> np.ndarray:
    """A plate-like LR crop: dark strokes on a light field, (h, w, 3) uint8 BGR."""
    rng = np.random.default_rng(seed)
    hr = np.full((h * 4, w * 4, 3), 210, np.uint8)
    for i in range(6):
        x = 12 + i * (w * 4 - 24) // 6
        cv2.putText(hr, str(rng.integers(10)), (x, h * 4 - 14), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (30, 30, 30), 4)
    return cv2.resize(hr, (w, h), interpolation=cv2.INTER_AREA)


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("upsampler", ["progressive", "espcn"])
def test_model_identical_frames_equal_single_frame_run(upsampler):
    torch.manual_seed(1)
    model = build_fusion_model(FusionNetConfig(channels=8, dec_blocks=1, att_channels=4, upsampler=upsampler)).eval()
    x = torch.rand(2, 1, 3, 12, 20)
    with torch.inference_mode():
        single = model(x)
        fused = model(x.expand(2, 5, 3, 12, 20).contiguous())
        _, w = model.fuse(torch.rand(2, 5, 3, 12, 20))
    assert fused.shape == single.shape == (2, 3, 48, 80)
    assert torch.allclose(fused, single, atol=1e-5)
    assert torch.allclose(w.sum(1), torch.ones(2, 12, 20), atol=1e-6)


def test_split_attention_equals_the_pair_formulation():
    """fuse() scores conv_ref(reference) + conv_frame(frame) instead of conv([reference, frame]): same numbers."""
    torch.manual_seed(4)
    model = build_fusion_model(TINY).eval()
    with torch.no_grad():
        for p in model.attention.parameters():
            p.mul_(10)
    x = torch.rand(3, 4, 3, 9, 14)
    valid = torch.tensor([[True, True, False, True], [False, False, False, True], [True] * 4])
    with torch.inference_mode():
        fused, w = model.fuse(x, valid)
        n, k, _, h, wd = x.shape
        feats = model.encoder(x.reshape(n * k, 3, h, wd)).reshape(n, k, -1, h, wd)
        ref = feats[:, -1]
        pairs = torch.cat([ref.unsqueeze(1).expand_as(feats), feats], dim=2).reshape(n * k, -1, h, wd)
        scores = model.attention(pairs).reshape(n, k, h, wd).masked_fill(~valid.reshape(n, k, 1, 1), float("-inf"))
        w_ref = torch.softmax(scores, dim=1)
        f_ref = model.merge(torch.cat([(w_ref.unsqueeze(2) * feats).sum(1), ref], dim=1))
    assert torch.allclose(w, w_ref, atol=1e-5) and torch.allclose(fused, f_ref, atol=1e-5)


def test_untrained_espcn_model_is_the_bilinear_upscale():
    model = build_fusion_model(FusionNetConfig(channels=8, enc_blocks=0, dec_blocks=1, att_channels=4,
                                               upsampler="espcn")).eval()
    x = torch.rand(2, 3, 3, 6, 10)
    with torch.inference_mode():
        y = model(x)
    assert torch.allclose(y, torch.nn.functional.interpolate(x[:, -1], scale_factor=4, mode="bilinear"), atol=1e-6)


def _flops(model: torch.nn.Module, *inputs) -> int:
    """FLOPs of one forward pass (torch's counter: convolutions and matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(*inputs)
    return counter.get_total_flops()


@pytest.mark.skipif(not DEFAULT_FUSION_WEIGHTS.is_file(), reason="shipped fusion weights not built yet")
def test_shipped_fusion_network_fits_the_cost_budget():
    """Issue #7: fusion may cost at most 2x the single-frame time per output. The network (K = 5) may
    cost at most 1.5x the shipped single-frame generator's FLOPs, leaving room for alignment."""
    from sr_model.weights import load_generator

    fusion, _ = load_fusion()
    generator, _ = load_generator()
    x = torch.rand(1, 5, 3, 16, 48)
    assert _flops(fusion, x) <= 1.5 * _flops(generator, x[:, -1])


def test_model_ignores_masked_frames():
    torch.manual_seed(2)
    model = build_fusion_model(TINY).eval()
    x = torch.rand(1, 4, 3, 10, 16)
    valid = torch.tensor([[True, False, True, True]])
    y = x.clone()
    y[:, 1] = torch.rand(3, 10, 16)  # change the masked frame only
    with torch.inference_mode():
        a, b = model(x, valid), model(y, valid)
        c = model(x[:, [0, 2, 3]])
        d = model(x)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-5)
    assert not torch.allclose(a, d, atol=1e-4)  # the unmasked frame does change the output


def test_enhancer_identical_frames_equal_single_frame(tiny_weights):
    enh = FusionEnhancer(tiny_weights, FusionConfig(k=5))
    crop = _plate()
    out = enh.enhance([[crop.copy() for _ in range(5)], [crop]])
    assert all(isinstance(o, FusedPlate) for o in out)
    assert (out[0].frames_used, out[0].frames_dropped) == (5, 0)
    assert (out[1].frames_used, out[1].frames_dropped) == (1, 0)
    assert out[0].image.shape == (60, 192, 3) and out[0].image.dtype == np.uint8
    assert np.abs(out[0].image.astype(int) - out[1].image.astype(int)).max() <= 1  # uint8 rounding


def test_enhancer_drops_badly_aligned_frames(tiny_weights):
    enh = FusionEnhancer(tiny_weights, FusionConfig(k=5))
    ref = _plate(0)
    good = [_shift(ref, 0.4, 0.2), _shift(ref, -0.3, 0.1)]
    other = _plate(99)  # another plate: must not be averaged in
    noise = np.random.default_rng(3).integers(0, 256, ref.shape, dtype=np.uint8)
    with_bad = enh.enhance([[good[0], other, good[1], noise, ref]])[0]
    without = enh.enhance([[good[0], good[1], ref]])[0]
    assert (with_bad.frames_used, with_bad.frames_dropped) == (3, 2)
    assert (without.frames_used, without.frames_dropped) == (3, 0)
    assert np.abs(with_bad.image.astype(int) - without.image.astype(int)).max() <= 1
    aligned = enh.align([good[0], other, good[1], noise, ref])
    assert aligned.valid.tolist() == [True, False, True, False, True]
    assert aligned.alignments[0].shift == pytest.approx((0.4, 0.2), abs=0.1)


def test_enhancer_uses_the_last_k_and_handles_sizes(tiny_weights):
    enh = FusionEnhancer(tiny_weights, FusionConfig(k=3, max_input_height=20, batch_size=2))
    ref = _plate(1, h=15, w=48)
    seq_a = [_plate(50), _plate(51), _shift(ref, 0.3, 0), cv2.resize(ref, (50, 16)), ref]  # first two fall outside k
    tall = _plate(2, h=40, w=120)  # shrunk to 20 px first, like PlateEnhancer
    small = _plate(3, h=12, w=30)
    out = enh.enhance([seq_a, [tall], [small, small]])
    assert out[0].frames_used + out[0].frames_dropped == 3 and out[0].frames_dropped == 0
    assert out[0].image.shape == (60, 192, 3)
    assert out[1].image.shape == (80, 240, 3)
    assert out[2].image.shape == (48, 120, 3)
    assert enh.scale == 4
    with pytest.raises(ValueError):
        enh.enhance([[]])
    with pytest.raises(ValueError):
        enh.enhance([[ref.astype(np.float32)]])


def test_a_tracks_fused_image_does_not_depend_on_the_other_tracks(tiny_weights):
    """Sequences are batched only with sequences of their own shape: a track fused alone or beside
    tracks of other sizes (and crop counts) gives the same pixels."""
    enh = FusionEnhancer(tiny_weights, FusionConfig(k=3, batch_size=4, precision="fp32"))
    ref = _plate(1, h=15, w=48)
    seqs = [[_shift(ref, 0.3, 0), _shift(ref, 0, 0.4), ref], [_plate(2, h=12, w=30)] * 2,
            [_plate(3, h=18, w=60)] * 3, [_shift(ref, -0.2, 0.1), ref]]
    alone = [enh.enhance([s])[0].image for s in seqs]
    together = [p.image for p in enh.enhance(seqs)]
    assert all(np.array_equal(a, b) for a, b in zip(alone, together))


def test_weights_round_trip_and_errors(tmp_path, tiny_weights):
    model, info = load_fusion(tiny_weights)
    assert info == {"note": "test"} and model.config == TINY and not model.training
    with pytest.raises(FusionWeightsError):
        load_fusion(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    with pytest.raises(FusionWeightsError):
        load_fusion(junk)
    other = save_fusion(build_fusion_model(FusionNetConfig(channels=4, dec_blocks=1)), tmp_path / "o.safetensors")
    from safetensors.torch import load_file, save_file
    from sr_model.fusion import read_fusion_metadata
    meta = read_fusion_metadata(other)
    meta["config"] = meta["config"].replace('"channels": 4', '"channels": 6')  # tensors no longer fit
    save_file(load_file(str(other)), str(other), metadata=meta)
    with pytest.raises(FusionWeightsError):
        load_fusion(other)


@pytest.mark.skipif(not DEFAULT_FUSION_WEIGHTS.is_file(), reason="shipped fusion weights not built yet")
def test_shipped_weights_load_and_describe_their_training():
    enh = FusionEnhancer()
    assert enh.scale == 4 and DEFAULT_FUSION_WEIGHTS.stat().st_size < 8 * 2**20
    info = enh.info
    assert info["loss"] == "L1" and "openalpr_eu" in info["trained_on"] and info["val"]["psnr_fused"] > 0
    out = enh.enhance([[_plate(5), _shift(_plate(5), 0.3, 0.1), _plate(5)]])[0]
    assert out.image.shape == (60, 192, 3) and out.frames_used == 3


def test_enhancer_motion_override_aligns_a_scaled_crop(tiny_weights):
    ref = _plate(4)
    h, w = ref.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1.04)  # the plate 4 % larger: a zooming camera
    zoomed = cv2.warpAffine(ref, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    assert FusionEnhancer(tiny_weights).motion == "affine"  # the default, whatever the weights were trained with
    assert FusionEnhancer(tiny_weights, FusionConfig(motion=None)).motion == "translation"  # None: as trained
    enh = FusionEnhancer(tiny_weights, FusionConfig(k=2))
    assert enh.motion == "affine"
    a = enh.align([zoomed, ref]).alignments[0]
    assert a.ok and a.warp[0, 0] == pytest.approx(1.04, abs=0.015) and a.warp[1, 1] == pytest.approx(1.04, abs=0.03)


def test_enhancer_alignment_scale_comes_from_the_weights_unless_set(tiny_weights):
    assert FusionEnhancer(tiny_weights).upsample == 2  # what save_fusion records by default
    enh = FusionEnhancer(tiny_weights, FusionConfig(k=3, upsample=1))
    assert enh.upsample == 1
    ref = _plate(6)
    h, w = ref.shape[:2]
    centre = np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
    seq = enh.align([_shift(ref, 0.4, -0.3), _shift(ref, -0.5, 0.2), ref])
    assert seq.valid.all()
    for a, shift in zip(seq.alignments[:2], [(0.4, -0.3), (-0.5, 0.2)]):  # affine: compare where the centre goes
        assert (a.warp @ centre - centre[:2]) == pytest.approx(shift, abs=0.05)


def test_int8_decoder_stays_close_to_fp32_and_is_cached(tiny_weights, tmp_path):
    pytest.importorskip("onnxruntime")
    seqs = [[_shift(_plate(s), 0.3 * i, -0.2 * i) for i in range(4, -1, -1)] for s in range(6)]
    fp32 = FusionEnhancer(tiny_weights, FusionConfig(k=5, precision="fp32")).enhance(seqs)
    int8 = FusionEnhancer(tiny_weights, FusionConfig(k=5, precision="int8", cache_dir=tmp_path))
    assert int8.precision == "int8"
    graphs = list(tmp_path.glob("fusion-decoder-*-int8.onnx"))
    assert len(graphs) == 1
    built = graphs[0].stat().st_mtime_ns
    out = int8.enhance(seqs)
    d = np.concatenate([np.abs(a.image.astype(int) - b.image).ravel() for a, b in zip(out, fp32)])
    assert d.mean() < 1.5 and np.percentile(d, 99) <= 8, (d.mean(), np.percentile(d, 99))
    assert [a.frames_used for a in out] == [b.frames_used for b in fp32]
    FusionEnhancer(tiny_weights, FusionConfig(k=5, precision="int8", cache_dir=tmp_path))  # loads, does not rebuild
    assert graphs[0].stat().st_mtime_ns == built and len(list(tmp_path.glob("*.onnx"))) == 1


def test_precision_choice():
    from sr_model.backends import BackendUnavailable
    from sr_model.fusion import resolve_precision

    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda") == "fp32"
    with pytest.raises(BackendUnavailable, match="CPU"):
        resolve_precision("int8", "cuda")
    with pytest.raises(ValueError, match="unknown fusion precision"):
        resolve_precision("fp8", "cpu")
