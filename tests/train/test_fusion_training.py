"""Fusion training: sequences are built as documented, a tiny run writes loadable weights, a resumed run equals an uninterrupted one."""
from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import load_file

from sr_model.fusion import FusionEnhancer, load_fusion
from train.fusion import (FusionTrainConfig, export_checkpoint, make_sequence, main, sample_batch, synthetic_hr,
                          train_fusion)

TINY = dict(steps=6, batch=2, k=3, channels=8, dec_blocks=1, att_channels=4, n_synthetic=6, n_val_synthetic=2,
            eval_every=2, ckpt_every=2, real_repeats=1)


def test_sequences_are_aligned_degraded_frames_of_one_plate():
    cfg = FusionTrainConfig(k=4, p_wrong=0.0)
    rng = np.random.default_rng(0)
    hr = synthetic_hr(rng, 96)
    seq = make_sequence(rng, hr, [], cfg)
    assert hr.shape[0] == 60 and hr.shape[1] >= 96 and hr.shape[1] % 4 == 0
    assert seq["lr"].shape == (4, 15, hr.shape[1] // 4, 3) and seq["lr"].dtype == np.float16
    assert seq["valid"][-1] and seq["ecc"][-1] == 1.0
    # A tracker mix-up (every non-reference frame another plate) is dropped by alignment.
    other = synthetic_hr(np.random.default_rng(5), 96)
    bad = make_sequence(np.random.default_rng(1), hr, [other], FusionTrainConfig(k=4, p_wrong=1.0))
    assert bad["valid"].tolist() == [False, False, False, True]
    x, v, h = sample_batch(rng, [seq, bad], cfg, 5)
    assert x.shape == (5, 4, 3, 15, 24) and v.shape == (5, 4) and h.shape == (5, 3, 60, 96)
    assert v[:, -1].all() and 0 <= float(x.min()) and float(x.max()) <= 1


def test_tiny_run_writes_weights_log_and_config(tmp_path):
    out = tmp_path / "f.safetensors"
    args = ["--out", str(out), "--work", str(tmp_path / "work"), "--log", str(tmp_path / "log.csv"),
            "--data", str(tmp_path / "no_data")]
    for k, v in TINY.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    info = main(args)
    model, saved = load_fusion(out)
    assert saved == json.loads(json.dumps(info)) and saved["loss"] == "L1" and saved["steps"] == 6
    assert saved["trained_on"]["openalpr_eu"].startswith("not used")
    assert {"psnr_fused", "psnr_single", "psnr_bicubic"} <= set(saved["val"])
    assert (tmp_path / "log.csv").read_text().startswith("step,loss,psnr_fused,psnr_single,psnr_bicubic")
    assert json.loads((tmp_path / "work" / "run_config.json").read_text())["steps"] == 6
    assert not any(k.startswith("opt.") for k in load_file(str(out)))  # shipped file: model only
    fused = FusionEnhancer(out).enhance([[np.full((15, 40, 3), 100, np.uint8)] * 3])[0]
    assert fused.image.shape == (60, 160, 3)
    main(args + ["--upsampler", "espcn", "--enc-blocks", "0", "--steps", "2", "--upsample", "1"])
    model, saved = load_fusion(out)
    assert model.config.upsampler == "espcn" and model.config.enc_blocks == 0
    assert saved["alignment"]["upsample"] == 1 and FusionEnhancer(out).upsample == 1


def test_resume_continues_exactly(tmp_path):
    torch.set_num_threads(1)
    cfg = FusionTrainConfig(**TINY, data=str(tmp_path / "no_data"))
    train_fusion(cfg, tmp_path / "a.safetensors", tmp_path / "wa")
    assert train_fusion(cfg, tmp_path / "b.safetensors", tmp_path / "wb", stop_after=3) is None
    assert not (tmp_path / "b.safetensors").exists()
    partial = export_checkpoint(tmp_path / "wb", tmp_path / "partial.safetensors")  # an unfinished run's model
    assert partial["step"] == 3 and partial["partial"] and load_fusion(tmp_path / "partial.safetensors")[1] == partial
    info = train_fusion(cfg, tmp_path / "b.safetensors", tmp_path / "wb", resume=True)
    a, b = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    assert info["steps"] == 6 and (tmp_path / "wb" / "checkpoint.safetensors").is_file()
