"""Train the plate-text recognizer (CRNN + CTC) used as the SR generator's text-aware perceptual loss.

    python -m train.recognizer --steps 1200 --eval-every 300 --pool 1200 --clean-fraction 0.2 --seed 0 \
        --threads 1 --out sr_model/weights/plate_crnn.safetensors --run-dir /tmp/h1/run3   # the shipped weights

Data
----
* Synthetic (``--pool`` renders, made once before training, both styles alternately): a
  detector-like crop from ``train.synth.degrade.make_sr_pair`` (3 in 4) or an edge-to-edge
  ``train.synth.plates.render_plate`` plate (1 in 4); each gives a clean sample and a degraded
  one (``degrade`` at scale 2-4, strength U(0, 1), resized back up), so the recognizer also
  reads blurry, low-resolution-looking SR outputs.
* Real US crops (``benchmarks.plate_sets.load_openalpr`` on ``openalpr/us``): a fixed 80/20
  split by ``--split-seed``; the 80 % are trained on with affine / colour / blur / degrade
  augmentation, the 20 % are held out for validation. ``openalpr/eu`` is evaluation only: it is
  read once, after training, and never influences any choice.

Every batch is resized to one random size (24..64 px tall) so the model's own differentiable
resize sees the range of input sizes the generator will feed it.

Outputs: ``--out`` (safetensors with config and measured accuracies in its metadata) and, in
``--run-dir``, ``config.json`` (this run's settings), ``log.csv`` (step, loss, lr, validation
accuracies) and ``checkpoint.pt`` (``--resume`` continues from it).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sr_model.recognizer import (DEFAULT_RECOGNIZER_WEIGHTS, PlateRecognizer, RecognizerConfig, decode_greedy,
                                 encode_texts, normalise_text, save_recognizer)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
VAL_SEED_OFFSET = 10_000  # synthetic validation plates never share a seed with training plates

Sample = tuple[np.ndarray, str]  # ((h, w, 3) uint8 BGR image, plate text)


@dataclass
class TrainSettings:
    """Everything a run depends on (written to ``config.json``; ``--resume`` requires the same)."""

    steps: int = 1200
    batch: int = 24
    lr: float = 1e-3
    clean_fraction: float = 0.2
    seed: int = 0
    split_seed: int = 0
    pool: int = 1200
    val_synthetic: int = 200
    real_fraction: float = 0.25
    channels: int = 32
    sequence: str = "conv"
    hidden: int = 64
    height: int = 32
    width: int = 128
    eval_every: int = 300
    use_real: bool = True


# --------------------------------------------------------------------------- data
def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """list of equal-size (h, w, 3) uint8 BGR -> (N, 3, h, w) float RGB in [0, 1]."""
    x = torch.from_numpy(np.stack(images)[..., ::-1].copy())
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def _degraded_up(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``degrade`` at scale 2-4 and random strength in [0, 1], resized back to ``img``'s size."""
    from train.synth.degrade import crop_to_multiple, degrade

    scale = int(rng.integers(2, 5))
    img = crop_to_multiple(img, scale)
    lr = degrade(img, scale, rng, strength=float(rng.uniform(0, 1)))
    interp = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(2))]
    return cv2.resize(lr, (img.shape[1], img.shape[0]), interpolation=interp)


def make_synthetic(rng: np.random.Generator, n: int, desc: str) -> tuple[list[Sample], list[Sample]]:
    """``n`` rendered plates, both styles alternately: (clean samples, degraded samples), n each."""
    from train.synth.degrade import make_sr_pair
    from train.synth.plates import STYLES, render_plate

    clean, degraded = [], []
    for i in tqdm(range(n), desc=desc, unit="plate", leave=False):
        style = STYLES[i % len(STYLES)]
        if i % 4 == 3:  # edge-to-edge plate, as render_plate draws it
            plate = render_plate(rng, style, height=int(rng.integers(20, 72)))
            img, text = plate.image, plate.text
            deg = _degraded_up(img, rng)
        else:  # detector-like crop with a car-body margin and perspective jitter
            scale = int(rng.integers(2, 5))
            lr, img, text = make_sr_pair(rng, scale=scale, hr_height=int(rng.integers(24, 72)), style=style,
                                         strength=float(rng.uniform(0, 1)))
            interp = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)[int(rng.integers(2))]
            deg = cv2.resize(lr, (img.shape[1], img.shape[0]), interpolation=interp)
        clean.append((img, text))
        degraded.append((deg, text))
    return clean, degraded


def load_real(folder: Path, set_name: str) -> list[Sample]:
    """HR crops with text of one openalpr folder (``benchmarks.plate_sets`` loader); [] if missing."""
    from benchmarks.plate_sets import load_openalpr

    if not folder.is_dir():
        return []
    crops, _ = load_openalpr(folder, set_name)
    return [(c.hr, c.text) for c in crops]


def split_real(samples: list[Sample], seed: int, val_fraction: float = 0.2) -> tuple[list[Sample], list[Sample]]:
    """Fixed (train, val) split: a permutation by ``seed``; the first ``val_fraction`` is validation."""
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = int(round(val_fraction * len(samples)))
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]


def augment_real(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small affine jitter (rotation, scale, shift, shear), colour jitter, blur or degradation."""
    h, w = img.shape[:2]
    angle, s = rng.uniform(-4, 4), rng.uniform(0.9, 1.08)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, s)
    m[0, 1] += rng.uniform(-0.1, 0.1)
    m[:, 2] += rng.uniform(-0.04, 0.04, 2) * (w, h)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    f = out.astype(np.float32) * rng.uniform(0.7, 1.25) * rng.uniform(0.9, 1.1, 3) + rng.uniform(-25, 25)
    if rng.random() < 0.15:
        f = f.mean(axis=2, keepdims=True).repeat(3, axis=2)
    out = np.clip(f, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.5))
    elif r < 0.5:
        out = _degraded_up(out, rng)
    return out


def sample_batch(rng: np.random.Generator, pools: list[list[Sample]], weights: list[float], n: int,
                 augment: list[bool]) -> tuple[torch.Tensor, list[str]]:
    """n samples drawn from ``pools`` with probabilities ``weights`` (augmented where ``augment``),
    all resized to one random size 24..64 px tall, about 3.3-4.7x as wide: ((n, 3, h, w), texts)."""
    h = int(rng.integers(24, 65))
    w = int(round(h * rng.uniform(3.3, 4.7)))
    which = rng.choice(len(pools), size=n, p=np.asarray(weights) / sum(weights))
    images, texts = [], []
    for p in which:
        img, text = pools[p][int(rng.integers(len(pools[p])))]
        if augment[p]:
            img = augment_real(img, rng)
        interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
        images.append(cv2.resize(img, (w, h), interpolation=interp))
        texts.append(text)
    return to_tensor(images), texts


# --------------------------------------------------------------------------- evaluation
@torch.inference_mode()
def read_texts(model: PlateRecognizer, images: list[np.ndarray], batch: int = 64) -> list[str]:
    """Greedy reads of (h, w, 3) uint8 BGR images, each at its own size (grouped by shape)."""
    was_training = model.training
    model.eval()
    reads: list[str] = [""] * len(images)
    by_shape: dict[tuple, list[int]] = {}
    for i, img in enumerate(images):
        by_shape.setdefault(img.shape, []).append(i)
    for idx in by_shape.values():
        for k in range(0, len(idx), batch):
            part = idx[k: k + batch]
            out = decode_greedy(model(to_tensor([images[i] for i in part])), model.config.charset)
            for i, r in zip(part, out):
                reads[i] = r
    model.train(was_training)
    return reads


def exact_accuracy(model: PlateRecognizer, samples: list[Sample]) -> float | None:
    """Fraction of ``samples`` read exactly (normalised strings); None for an empty set."""
    if not samples:
        return None
    reads = read_texts(model, [s[0] for s in samples])
    return sum(normalise_text(r) == normalise_text(t) for r, (_, t) in zip(reads, samples)) / len(samples)


# --------------------------------------------------------------------------- training
def lr_factor(step: int, steps: int, warmup: int = 50) -> float:
    """Learning-rate multiplier at optimiser step ``step`` (0-based): linear warm-up, flat, cosine decay
    over the last 40 % of ``steps`` down to 0.05."""
    if step < warmup:
        return (step + 1) / warmup
    start = 0.6 * steps
    if step < start:
        return 1.0
    t = min(1.0, (step - start) / max(1.0, steps - start))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def train_recognizer(out: Path, run_dir: Path, settings: TrainSettings = TrainSettings(),
                     data_dir: Path = DEFAULT_DATA, threads: int | None = None, resume: bool = False,
                     command: str | None = None) -> dict:
    """Train, write ``out`` and the run files in ``run_dir``; returns the ``info`` stored in ``out``."""
    s = settings
    if s.steps < 1 or s.batch < 1 or s.pool < 1:
        raise ValueError("steps, batch and pool must be >= 1")
    if threads:
        torch.set_num_threads(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    if resume:
        if not ckpt_path.is_file():
            raise ValueError(f"--resume: no checkpoint at {ckpt_path}")
        saved = json.loads((run_dir / "config.json").read_text())["settings"]
        if saved != asdict(s):
            raise ValueError(f"--resume: settings differ from {run_dir / 'config.json'}: {saved} vs {asdict(s)}")
    (run_dir / "config.json").write_text(json.dumps(
        {"settings": asdict(s), "out": str(out), "data_dir": str(data_dir), "command": command}, indent=2))

    torch.manual_seed(s.seed)
    config = RecognizerConfig(height=s.height, width=s.width, channels=s.channels, sequence=s.sequence,
                              hidden=s.hidden)
    model = PlateRecognizer(config)
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lr_factor(i, s.steps))

    t_data = time.time()
    val_clean, val_degraded = make_synthetic(np.random.default_rng(s.seed + VAL_SEED_OFFSET), s.val_synthetic,
                                             "validation plates")
    clean, degraded = make_synthetic(np.random.default_rng([s.seed, 1]), s.pool, "training plates")
    us_train, us_val = split_real(load_real(data_dir / "openalpr" / "us", "openalpr_us"), s.split_seed) \
        if s.use_real else ([], [])
    pools, weights, augment = [clean, degraded], [0.5, 0.5], [False, False]
    if us_train:
        pools.append(us_train)
        weights = [(1 - s.real_fraction) / 2] * 2 + [s.real_fraction]
        augment.append(True)
    clean_steps = int(s.clean_fraction * s.steps)  # curriculum: CTC finds its alignment fastest on clean plates
    data_seconds = time.time() - t_data

    rng = np.random.default_rng([s.seed, 2])
    rows: list[dict] = []
    start, train_seconds = 0, 0.0
    if resume:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        rng.bit_generator.state = json.loads(ck["np_rng"])
        torch.set_rng_state(ck["torch_rng"])
        start, rows, train_seconds = int(ck["step"]), json.loads(ck["rows"]), float(ck["train_seconds"])

    model.train()
    losses: list[float] = []
    t0 = time.time() - train_seconds
    bar = tqdm(range(start + 1, s.steps + 1), desc="recognizer CTC", unit="step", initial=start, total=s.steps)
    for step in bar:
        if step <= clean_steps:
            x, texts = sample_batch(rng, [clean], [1.0], s.batch, [False])
        else:
            x, texts = sample_batch(rng, pools, weights, s.batch, augment)
        targets, lengths = encode_texts(texts, config.charset)
        log_probs = model(x)
        in_lengths = torch.full((x.shape[0],), log_probs.shape[0], dtype=torch.long)
        loss = F.ctc_loss(log_probs, targets, in_lengths, lengths, blank=0, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % s.eval_every == 0 or step == s.steps:
            row = {"step": step, "loss": round(float(np.mean(losses)), 4), "lr": f"{sched.get_last_lr()[0]:.3g}",
                   "acc_synthetic": round(exact_accuracy(model, val_clean), 4),
                   "acc_synthetic_degraded": round(exact_accuracy(model, val_degraded), 4),
                   "acc_us_val": None if not us_val else round(exact_accuracy(model, us_val), 4),
                   "seconds": round(time.time() - t0, 1)}
            rows.append(row)
            losses = []
            bar.set_postfix(loss=row["loss"], synth=row["acc_synthetic"], deg=row["acc_synthetic_degraded"],
                            us=row["acc_us_val"])
            _write_csv(run_dir / "log.csv", rows)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "np_rng": json.dumps(rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
                        "step": step, "rows": json.dumps(rows), "train_seconds": time.time() - t0}, ckpt_path)
    train_seconds = time.time() - t0
    model.eval()

    eu = load_real(data_dir / "openalpr" / "eu", "openalpr_eu")  # evaluation only, after training
    final = rows[-1]
    info = {
        "trained_on": {
            "synthetic": f"{s.pool} plates (seed [{s.seed}, 1]), styles latin and ccpd_blue alternately; 3 in 4 "
                         "train.synth.degrade.make_sr_pair HR crops, 1 in 4 edge-to-edge render_plate plates; each "
                         "clean and degraded (degrade scale 2-4, strength U(0,1), resized back up)",
            "real": (f"openalpr/us HR crops (benchmarks.plate_sets.load_openalpr): {len(us_train)} of "
                     f"{len(us_train) + len(us_val)}, 80 % split by split_seed {s.split_seed}, augmented "
                     "(affine, colour, blur, degrade)") if us_train else "none",
            "batches": f"{s.steps} steps x {s.batch} samples, real fraction {s.real_fraction if us_train else 0}, "
                       "each batch resized to one random size 24..64 px tall",
            "curriculum": f"first {clean_steps} steps clean synthetic plates only, then the full mix",
            "optimiser": f"Adam lr {s.lr} (50-step warm-up, cosine decay over the last 40 % to 5 %), CTC loss "
                         "(zero_infinity), grad-norm clip 5",
        },
        "accuracy": {
            "metric": "exact read, normalised strings (upper case, letters and digits only), greedy CTC decoding",
            "synthetic_clean": final["acc_synthetic"],
            "synthetic_degraded": final["acc_synthetic_degraded"],
            "synthetic_plates": s.val_synthetic,
            "synthetic_seed": s.seed + VAL_SEED_OFFSET,
            "us_val": final["acc_us_val"],
            "us_val_plates": len(us_val),
            "eu_hr_eval_only": None if not eu else round(exact_accuracy(model, eu), 4),
            "eu_plates": len(eu),
        },
        "steps": s.steps,
        "settings": asdict(s),
        "train_seconds": round(train_seconds, 1),
        "data_seconds": round(data_seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "command": command,
    }
    save_recognizer(model, out, info=info)
    (run_dir / "info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
    return info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.recognizer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainSettings()
    p.add_argument("--out", type=Path, default=DEFAULT_RECOGNIZER_WEIGHTS, help="weights file to write (.safetensors)")
    p.add_argument("--run-dir", type=Path, default=Path("runs/recognizer"), help="config.json, log.csv, checkpoint.pt")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt (same settings)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder (holds openalpr/)")
    p.add_argument("--no-real", action="store_true", help="synthetic plates only")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    for name, default in asdict(d).items():
        if name == "use_real":
            continue
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    args = p.parse_args(argv)
    settings = TrainSettings(**{k: getattr(args, k) for k in asdict(d) if k != "use_real"}, use_real=not args.no_real)
    command = "python -m train.recognizer " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        info = train_recognizer(args.out, args.run_dir, settings, data_dir=args.data, threads=args.threads,
                                resume=args.resume, command=command)
    except ValueError as exc:
        p.exit(2, f"error: {exc}\n")
    print(json.dumps(info["accuracy"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
