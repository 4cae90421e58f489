"""Train the corner refiner (:mod:`tracker.corners`) and ship it as safetensors.

    # the shipped weights (CPU, 2 threads: 8 min of rendering, 32 min of training)
    python -m train.corners --synthetic 2500 --data-seed 101 --data-workers 2 --steps 3400 --batch 96 --width 12 \
        --threads 2 --eval-every 250 --out tracker/weights/corner_refiner.safetensors
    python -m train.corners --ccpd CCPD2019/ccpd_base --init tracker/weights/corner_refiner.safetensors
    python -m train.corners --yolo my_pose_data/data.yaml      # YOLO-pose labels (4 corners)

Data: any source with plate corners, written as a 4-keypoint YOLO-pose dataset by
:func:`train.detector.build_dataset` (synthetic scenes with the detector's domain randomisation,
CCPD folders, YOLO-pose datasets); plates with all four corners inside the frame are used. Each
plate's surroundings are cut out once (plates over 200 px wide shrunk to 200 px, as the refiner's
own resampling would). Every step draws plates and makes one training patch each, as the
detector would hand them over: the true box moved and resized at random (the detector's box
error), a third of the plates first shrunk to 14-40 px wide (small, distant plates), then
brightness, contrast, blur, noise, JPEG and mirror augmentations. Loss: L1 of the corners in
units of the true plate width (as the benchmark's corner error). The validation split's plates, with a fixed
draw of box errors, give the median corner error per checkpoint (CSV log beside the weights).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from tracker.corners import (REFINER_WEIGHTS, CornerNet, crop_window, cut_patch, load_refiner, patches_to_tensor,
                             save_refiner, to_window)

MAX_CONTEXT_BOX_W = 200.0  # px: larger plates are stored shrunk to this width


@dataclass
class PlateSample:
    """A plate's surroundings and its truth, in the context image's px (edge convention)."""

    context: np.ndarray   # (h, w, 3) uint8 BGR
    corners: np.ndarray   # (4, 2) float32 tl, tr, br, bl
    box: np.ndarray       # (4,) float32 x1 y1 x2 y2: the corners' bounds


def _pose_rows(label: Path, W: int, H: int) -> list[np.ndarray]:
    out = []
    for line in label.read_text().splitlines():
        v = line.split()
        if len(v) != 17:
            continue
        k = np.array(v[5:], np.float32).reshape(4, 3)
        if (k[:, 2] < 2).any():  # a corner outside the frame or not labelled
            continue
        out.append(k[:, :2] * np.float32([W, H]))
    return out


def plates_from_pose_dataset(root: Path, split: str, limit: int | None = None) -> list[PlateSample]:
    """Every plate with 4 visible corners in ``root/images/<split>`` (YOLO-pose labels beside them
    in ``root/labels/<split>``), cut out with room for the box jitter."""
    samples: list[PlateSample] = []
    images = sorted((root / "images" / split).glob("*"))[:limit]
    for img_path in tqdm(images, desc=f"plates {root.name}/{split}", unit="img", leave=False):
        label = root / "labels" / split / (img_path.stem + ".txt")
        if not label.is_file():
            continue
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        H, W = img.shape[:2]
        for corners in _pose_rows(label, W, H):
            x1, y1 = corners.min(0)
            x2, y2 = corners.max(0)
            w, h = x2 - x1, y2 - y1
            if w < 6 or h < 3:
                continue
            # context: the widest window a jittered box can ask for, and some
            cx0, cx1 = int(np.floor(x1 - 0.9 * w)), int(np.ceil(x2 + 0.9 * w))
            cy0, cy1 = int(np.floor(y1 - 1.2 * h - 0.3 * w)), int(np.ceil(y2 + 1.2 * h + 0.3 * w))
            pad = [max(0, -cy0), max(0, cy1 - H), max(0, -cx0), max(0, cx1 - W)]
            ctx = img[max(0, cy0):min(H, cy1), max(0, cx0):min(W, cx1)]
            if any(pad):
                ctx = cv2.copyMakeBorder(ctx, *pad, cv2.BORDER_REPLICATE)
            c = corners - np.float32([cx0, cy0])
            if w > MAX_CONTEXT_BOX_W:
                s = MAX_CONTEXT_BOX_W / w
                ctx = cv2.resize(ctx, (max(1, round(ctx.shape[1] * s)), max(1, round(ctx.shape[0] * s))),
                                 interpolation=cv2.INTER_AREA)
                c = c * np.float32([ctx.shape[1] / (cx1 - cx0), ctx.shape[0] / (cy1 - cy0)])
            samples.append(PlateSample(ctx, c.astype(np.float32), np.r_[c.min(0), c.max(0)].astype(np.float32)))
    return samples


def jitter_box(rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    """The true box as a detector might return it: centre moved and sides rescaled at random
    (half the draws small errors, half larger ones; each clipped at 2.5 sigma)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    big = rng.random() < 0.5
    sd = (0.07, 0.12, 0.12, 0.18) if big else (0.03, 0.05, 0.05, 0.08)
    dx, dy, lw, lh = (float(np.clip(rng.normal(0, s), -2.5 * s, 2.5 * s)) for s in sd)
    cx, cy = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h
    nw, nh = w * np.exp(lw), h * np.exp(lh)
    return np.array([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], np.float32)


def _photometric(rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
    out = patch.astype(np.float32)
    if rng.random() < 0.6:
        out = (out - 128.0) * rng.uniform(0.5, 1.4) + 128.0 + rng.uniform(-40, 40)
    if rng.random() < 0.15:
        out = np.repeat(out.mean(2, keepdims=True), 3, axis=2)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.4, 1.5)))
    if rng.random() < 0.3:
        out = np.clip(out + rng.normal(0, rng.uniform(2, 10), out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        out = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return out


def make_example(rng: np.random.Generator, s: PlateSample, augment: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training pair: patch (CROP_H, CROP_W, 3) uint8, target (4, 2) corners in window
    coordinates, and scale (2,): the window's width and height in true plate widths (so
    ``(pred - target) * scale`` is the corner error in plate widths, the benchmark's measure)."""
    ctx, corners, box = s.context, s.corners, s.box
    w = float(box[2] - box[0])
    if augment and rng.random() < 0.33 and w > 40:  # a small, distant plate
        f = float(rng.uniform(14, 40)) / w
        small = cv2.resize(ctx, (max(2, round(ctx.shape[1] * f)), max(2, round(ctx.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
        sc = np.float32([small.shape[1] / ctx.shape[1], small.shape[0] / ctx.shape[0]])
        ctx, corners, box = small, corners * sc, np.r_[box[:2] * sc, box[2:] * sc].astype(np.float32)
    jb = jitter_box(rng, box)
    window = crop_window(jb)
    patch = cut_patch(ctx, window)
    target = to_window(corners, window)
    if augment:
        patch = _photometric(rng, patch)
        if rng.random() < 0.5:  # mirror: corners swap left and right
            patch = np.ascontiguousarray(patch[:, ::-1])
            target = target[[1, 0, 3, 2]] * np.float32([-1, 1]) + np.float32([1, 0])
    scale = (window[2:] - window[:2]) / max(float(box[2] - box[0]), 1e-3)
    return patch, target.astype(np.float32), scale.astype(np.float32)


def make_batch(rng: np.random.Generator, samples: list[PlateSample], n: int | None = None, augment: bool = True,
               indices: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (n, 3, CROP_H, CROP_W), target (n, 4, 2), scale (n, 1, 2) for ``n`` random plates (or
    the plates at ``indices``)."""
    idx = rng.integers(len(samples), size=n) if indices is None else indices
    ex = [make_example(rng, samples[i], augment) for i in idx]
    x = patches_to_tensor([e[0] for e in ex])
    return x, torch.from_numpy(np.stack([e[1] for e in ex])), torch.from_numpy(np.stack([e[2] for e in ex])).view(-1, 1, 2)


def corner_error(pred: torch.Tensor, target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(n,) mean distance of the 4 corners in plate widths."""
    return ((pred - target) * scale).norm(dim=2).mean(1)


@torch.no_grad()
def evaluate(model: CornerNet, val: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: int = 256) -> dict:
    """Median / p90 corner error (% of plate width) on a fixed validation draw."""
    model.eval()
    x, t, sc = val
    pred = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    err = corner_error(pred, t, sc).numpy() * 100
    model.train()
    return {"median_pct": float(np.median(err)), "p90_pct": float(np.percentile(err, 90)), "plates": int(len(err))}


def train_refiner(train: list[PlateSample], val: list[PlateSample], out: Path, steps: int = 6000,
                  batch: int = 96, lr: float = 2e-3, width: int = 12, seed: int = 0, init: Path | None = None,
                  hours: float | None = None, eval_every: int = 500, info: dict | None = None) -> dict:
    """AdamW with a one-cycle schedule; keeps the checkpoint with the lowest validation median
    error; writes ``out`` and ``out``.csv (step, train loss, validation figures). Returns info."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CornerNet(width)
    if init is not None:
        model = load_refiner(init)[0]
        model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    val_set = make_batch(np.random.default_rng(12345), val, augment=False, indices=np.arange(len(val)))
    log_path = out.with_suffix(".csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    best, best_state, t0, running = None, None, time.time(), []
    with log_path.open("w", newline="") as fh:
        log = csv.writer(fh)
        log.writerow(["step", "seconds", "train_loss_pct", "val_median_pct", "val_p90_pct"])
        bar = tqdm(range(1, steps + 1), desc="corner refiner", unit="step")
        for step in bar:
            x, t, sc = make_batch(rng, train, batch)
            loss = ((model(x) - t) * sc).abs().sum(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running.append(loss.item() * 100)
            out_of_time = hours is not None and time.time() - t0 > hours * 3600
            if step % eval_every == 0 or step == steps or out_of_time:
                ev = evaluate(model, val_set)
                log.writerow([step, round(time.time() - t0, 1), round(float(np.mean(running)), 3),
                              round(ev["median_pct"], 3), round(ev["p90_pct"], 3)])
                fh.flush()
                bar.set_postfix(loss=f"{np.mean(running):.2f}%", val=f"{ev['median_pct']:.2f}%")
                running = []
                if best is None or ev["median_pct"] < best["median_pct"]:
                    best = {**ev, "step": step}
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if out_of_time:
                break
    model.load_state_dict(best_state)
    meta = {**(info or {}), "steps": step, "batch": batch, "lr": lr, "seed": seed, "width": width,
            "validation": {k: round(v, 3) if isinstance(v, float) else v for k, v in best.items()},
            "train_plates": len(train), "val_plates": len(val), "seconds": round(time.time() - t0)}
    save_refiner(model.eval(), out, info=meta)
    return meta


def main(argv: list[str] | None = None) -> None:
    from train.detector import build_dataset

    p = argparse.ArgumentParser(prog="python -m train.corners", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synthetic", type=int, default=0, metavar="N", help="generate N synthetic scene images")
    p.add_argument("--imgsz", type=int, default=1280, help="synthetic image size (px, long side; plates 16 px .. 40 %% of it)")
    p.add_argument("--ccpd", type=Path, default=None, metavar="DIR", help="CCPD folder (corners from the file names)")
    p.add_argument("--ccpd-limit", type=int, default=None)
    p.add_argument("--yolo", type=Path, default=None, metavar="DATA.yaml", help="YOLO-pose dataset (4 corners)")
    p.add_argument("--dataset", type=Path, default=None, metavar="DIR",
                   help="a folder this command wrote before (--workdir): reuse its images")
    p.add_argument("--out", type=Path, default=REFINER_WEIGHTS)
    p.add_argument("--init", type=Path, default=None, help="refiner weights to start from")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--hours", type=float, default=None, help="wall-clock budget (stops early)")
    p.add_argument("--batch", type=int, default=96)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=12, help="network width (channels of the first layer)")
    p.add_argument("--eval-every", type=int, default=500, help="validate every this many steps")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--data-seed", type=int, default=None, help="seed of the synthetic images (default: --seed)")
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for folder in (args.ccpd, args.dataset):
        if folder is not None and not folder.is_dir():
            p.error(f"folder not found: {folder}")
    if args.init is not None and not args.init.is_file():
        p.error(f"init weights not found: {args.init}")
    if args.dataset is not None:
        roots, note = [d for d in sorted(args.dataset.iterdir()) if (d / "images").is_dir()], f"dataset {args.dataset}"
    else:
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="le-corners-"))
        try:
            _, note = build_dataset(workdir, synthetic=args.synthetic, ccpd=args.ccpd, ccpd_limit=args.ccpd_limit,
                                    yolo=args.yolo, seed=args.seed if args.data_seed is None else args.data_seed, imgsz=args.imgsz, pose=True,
                                    data_workers=args.data_workers)
        except ValueError as exc:
            p.error(str(exc))
        roots = [d for d in sorted(workdir.iterdir()) if (d / "images").is_dir()]
    train = [s for r in roots for s in plates_from_pose_dataset(r, "train")]
    val = [s for r in roots for s in plates_from_pose_dataset(r, "val")]
    if not train or not val:
        p.error("no plates with 4 labelled corners in the training or validation split")
    info = train_refiner(train, val, args.out, steps=args.steps, batch=args.batch, lr=args.lr, width=args.width,
                         seed=args.seed, init=args.init, hours=args.hours, eval_every=args.eval_every,
                         info={"data": note, "command": "python -m train.corners " + " ".join(sys.argv[1:] if argv is None else argv)})
    print(json.dumps(info, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
