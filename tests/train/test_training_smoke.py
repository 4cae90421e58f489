"""Training runs offline end to end, tiny: one epoch of the detector, a few generator steps."""
import json

import torch

from sr_model.weights import load_generator
from tracker.detector import PlateDetector


def test_generator_training_writes_loadable_weights(tmp_path):
    from train.generator import train_generator

    out = tmp_path / "g.safetensors"
    info = train_generator(out, steps=4, batch=2, channels=8, n_blocks=1, val_pairs=4, pool_size=8, log_csv=tmp_path / "log.csv")
    model, saved = load_generator(out)
    assert saved["loss"] == "L1" and "psnr_model_db" in saved["val"] and info == saved
    assert (tmp_path / "log.csv").read_text().startswith("step,loss,psnr_model,psnr_bicubic")
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 16, 32)).shape == (1, 3, 64, 128)


def test_detector_trains_one_tiny_epoch_offline(tmp_path):
    from train.detector import main

    out = tmp_path / "det.safetensors"
    main(["--synthetic", "12", "--epochs", "1", "--imgsz", "160", "--batch", "4", "--workers", "0",
          "--out", str(out), "--workdir", str(tmp_path / "work")])
    det = PlateDetector(out)
    assert det.info["imgsz"] == 160 and det.info["epochs"] == 1
    assert isinstance(det.detect([torch.zeros(120, 160, 3, dtype=torch.uint8).numpy()])[0], list)
    assert json.loads(json.dumps(det.info["val_metrics"]))  # metrics recorded
