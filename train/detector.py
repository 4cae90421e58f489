"""Train the plate detector (ultralytics YOLO from a model yaml, offline) and ship it as safetensors.

    python -m train.detector --synthetic 1500 --epochs 30 --out tracker/weights/plate_yolov8p.safetensors
    python -m train.detector --data my_dataset/data.yaml --epochs 50      # YOLO-format user data

The written file is what ``enhance-video --detector PATH`` and ``tracker.PlateDetector`` load.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tracker.detector import DEFAULT_WEIGHTS, MODEL_YAML, configure_ultralytics_offline, save_detector


def train_detector(
    data_yaml: Path,
    out: Path,
    model_yaml: Path = MODEL_YAML,
    epochs: int = 30,
    imgsz: int = 640,
    batch: int = 16,
    device: str = "cpu",
    workers: int = 2,
    seed: int = 0,
    runs_dir: Path | None = None,
    data_note: str = "",
) -> dict:
    """Train from scratch on ``data_yaml`` and write the best weights to ``out``; returns val metrics."""
    configure_ultralytics_offline()
    from ultralytics import YOLO

    runs_dir = Path(runs_dir or tempfile.mkdtemp(prefix="le-detector-runs-"))
    model = YOLO(str(model_yaml), task="detect")
    t0 = time.time()
    model.train(
        data=str(data_yaml), epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=workers,
        seed=seed, deterministic=True, pretrained=False, amp=False, plots=False,
        project=str(runs_dir), name="train", exist_ok=True, verbose=False,
        close_mosaic=max(1, epochs // 5), patience=max(10, epochs),
    )
    metrics = {k: round(float(v), 4) for k, v in (model.trainer.metrics or {}).items()}
    net = model.model  # ultralytics reloads the best (EMA) checkpoint after training
    info = {
        "trained_on": data_note or str(data_yaml),
        "epochs": epochs,
        "imgsz": imgsz,
        "seed": seed,
        "train_seconds": round(time.time() - t0, 1),
        "val_metrics": metrics,
        "model_yaml": Path(model_yaml).name,
    }
    save_detector(net, out, yaml=dict(net.yaml), imgsz=imgsz, info=info)
    return info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.detector", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="YOLO-format dataset yaml (train/val image folders, labels/)")
    src.add_argument("--synthetic", type=int, metavar="N", help="generate N synthetic scene images and train on them")
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS, help="weights file to write (.safetensors)")
    p.add_argument("--model", type=Path, default=MODEL_YAML, help="ultralytics model yaml")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--imgsz", type=int, default=640, help="training image size (px, long side)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu", help="'cpu', '0' for the first GPU")
    p.add_argument("--workers", type=int, default=2, help="data-loader processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="where datasets and ultralytics runs go (default: temp)")
    args = p.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="le-detector-"))
    if args.synthetic:
        from train.synth.scenes import write_detection_dataset

        data_yaml = write_detection_dataset(workdir / "synthetic", n_images=args.synthetic, seed=args.seed,
                                            imgsz=args.imgsz)
        note = f"synthetic scenes: {args.synthetic} images, seed {args.seed} (train.synth)"
    else:
        data_yaml, note = args.data, str(args.data)
    info = train_detector(data_yaml, args.out, model_yaml=args.model, epochs=args.epochs, imgsz=args.imgsz,
                          batch=args.batch, device=args.device, workers=args.workers, seed=args.seed,
                          runs_dir=workdir / "runs", data_note=note)
    print(json.dumps(info, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
