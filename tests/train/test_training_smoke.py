"""Training runs offline end to end, tiny: one epoch of the detector, a few generator steps."""
import json

import torch

from sr_model.weights import load_generator
from tracker.detector import PlateDetector


def _fake_openalpr(root, n=4):
    import cv2
    import numpy as np

    folder = root / "openalpr" / "us"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        photo = rng.integers(60, 200, (240, 320, 3), dtype=np.uint8)
        cv2.putText(photo, f"AB{i}2", (90, 150), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (10, 10, 10), 4)
        (folder / f"car{i}.txt").write_text(f"car{i}.jpg\t80\t110\t130\t50\tAB{i}2\n")
        cv2.imwrite(str(folder / f"car{i}.jpg"), photo)
    return root


def _tiny_run(tmp_path, phase, **kw):
    from train.generator import RunConfig

    base = dict(phase=phase, run_dir=str(tmp_path / f"run_{phase}"), channels=8, n_blocks=1, steps=2, batch=2,
                synthetic=6, val_synthetic=3, context_per_photo=2, data=str(_data(tmp_path)), eval_every=1,
                ckpt_every=1, val_fraction=0.25)
    base.update(kw)
    return RunConfig(**base)


def _data(tmp_path):
    root = tmp_path / "data"
    if not root.exists():
        _fake_openalpr(root)
    return root


def test_l1_run_writes_weights_checkpoint_csv_config_and_resumes(tmp_path):
    import csv

    from train.generator import train

    # checkpoints more often than evaluations: a checkpoint before the first evaluation must not break it
    cfg = _tiny_run(tmp_path, "l1", eval_every=2, ckpt_every=1)
    info = train(cfg, ocr=False)
    run = tmp_path / "run_l1"
    for name in ("config.json", "log.csv", "checkpoint.pt", "best.safetensors", "last.safetensors"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["steps"] == 2
    model, saved = load_generator(run / "best.safetensors")
    assert saved == info and saved["loss"] == "L1" and saved["trained_on"]["openalpr_us"]["train_crops"] == 3
    assert "us_val_psnr" in saved["val"]["model"] and "us_val_psnr" in saved["val"]["bicubic"]
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 16, 32)).shape == (1, 3, 64, 128)
    # --resume continues from step 2 to step 4: only step 4 is added to the log
    from dataclasses import replace

    train(replace(cfg, steps=4), resume=True, ocr=False)
    with open(run / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [2, 4]
    blob = torch.load(run / "checkpoint.pt", weights_only=True)
    assert blob["step"] == 4


def test_gan_run_with_a_tiny_recognizer_and_the_cli(tmp_path):
    import csv

    from sr_model.recognizer import RecognizerConfig, build_recognizer, save_recognizer
    from sr_model.weights import save_generator
    from sr_model.generator import GeneratorConfig, build_generator
    from train.generator import main

    rec = save_recognizer(build_recognizer(RecognizerConfig(height=16, width=64, channels=8, hidden=16)),
                          tmp_path / "rec.safetensors")
    init = save_generator(build_generator(GeneratorConfig(arch="espcn_res", channels=8, n_blocks=1)),
                          tmp_path / "init.safetensors")
    cfg = _tiny_run(tmp_path, "gan", init=str(init), recognizer=str(rec), hr_width=144)
    cfg_file = tmp_path / "gan.json"
    from dataclasses import asdict

    cfg_file.write_text(json.dumps(asdict(cfg)))
    main(["--config", str(cfg_file), "--no-ocr"])
    run = tmp_path / "run_gan"
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert {"loss_l1", "loss_adv", "loss_feat", "loss_ctc", "loss_d"} <= set(rows[0])
    _, info = load_generator(run / "best.safetensors")
    assert info["phase"] == "gan" and info["recognizer"] == str(rec)
    blob = torch.load(run / "checkpoint.pt", weights_only=True)
    assert {"G", "D", "opt_G", "opt_D"} <= set(blob)
    main(["--config", str(cfg_file), "--no-ocr", "--resume", "--steps", "3"])
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 3


def test_detector_trains_one_tiny_epoch_offline(tmp_path):
    from train.detector import main

    out = tmp_path / "det.safetensors"
    main(["--synthetic", "12", "--epochs", "1", "--imgsz", "160", "--batch", "4", "--workers", "0",
          "--out", str(out), "--workdir", str(tmp_path / "work")])
    det = PlateDetector(out)
    assert det.info["imgsz"] == 160 and det.info["epochs"] == 1
    assert isinstance(det.detect([torch.zeros(120, 160, 3, dtype=torch.uint8).numpy()])[0], list)
    assert json.loads(json.dumps(det.info["val_metrics"]))  # metrics recorded


def test_cosine_lr_runs_from_base_to_floor():
    from train.generator import cosine_lr

    assert cosine_lr(1e-3, 0.0) == 1e-3
    assert abs(cosine_lr(1e-3, 1.0) - 5e-5) < 1e-12 and cosine_lr(1e-3, 2.0) == cosine_lr(1e-3, 1.0)
    assert cosine_lr(1e-3, 0.25) > cosine_lr(1e-3, 0.75)


def test_time_budget_snapshots_and_ocr_free_selection(tmp_path):
    """--minutes ends the run long before --steps; each evaluation leaves a snapshot; --select
    re-scores them (PSNR here, the OCR where rapidocr is) and writes the best."""
    import csv

    from train.generator import main, train

    cfg = _tiny_run(tmp_path, "l1", steps=100_000, minutes=0.04, eval_every=100_000, eval_every_s=0.5,
                    ckpt_every=100_000, snapshots=True)
    train(cfg, ocr=False)
    run = tmp_path / "run_l1"
    with open(run / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert 2 <= len(steps) and steps[-1] < 100_000
    snaps = sorted((run / "snapshots").glob("*.safetensors"))
    assert [int(p.stem.split("_")[1]) for p in snaps] == steps
    main(["--select", str(run), "--out", str(tmp_path / "picked.safetensors"), "--no-ocr"])
    _, info = load_generator(tmp_path / "picked.safetensors")
    assert info["val"]["selected_from"].startswith(f"{len(snaps)} snapshots")


def test_data_loader_workers_feed_the_same_training_loop(tmp_path):
    """``--workers 1`` through the command users run, in its own process: spawned data-loader
    workers and their shutdown stay out of the test runner (CI twice died of a native crash, with
    no Python traceback, at the end of the run when this was the last test run in-process)."""
    import subprocess
    import sys
    from dataclasses import asdict
    from pathlib import Path

    cfg = _tiny_run(tmp_path, "l1", workers=1, synthetic_refresh=0.5)
    (tmp_path / "run.json").write_text(json.dumps(asdict(cfg)))
    done = subprocess.run([sys.executable, "-m", "train.generator", "--config", str(tmp_path / "run.json"),
                           "--no-ocr"], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    _, info = load_generator(tmp_path / "run_l1" / "best.safetensors")
    assert info["steps"] == 2 and info["trained_on"]["synthetic"]["refresh"] == 0.5
