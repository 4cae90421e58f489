"""Train the plate super-resolution generator with an L1 content loss on synthetic pairs.

    python -m train.generator --steps 4000 --out sr_model/weights/srresnet_x4.safetensors

Pairs come from ``train.synth``: a crisp rendered plate (HR) and its degraded low-resolution
version (blur, noise, downscale, JPEG). Training pairs are drawn from ``--seed``; the held-out
validation pairs from a different seed, so the reported PSNR is on plates never trained on.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sr_model.generator import GeneratorConfig, build_generator
from sr_model.weights import DEFAULT_WEIGHTS, save_generator

VAL_SEED_OFFSET = 10_000  # validation pairs never share a seed with training pairs


def _to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """list of (h, w, 3) uint8 BGR -> (N, 3, h, w) float RGB in [0, 1]."""
    x = torch.from_numpy(np.stack(images)[..., ::-1].copy())
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def make_pair_pool(rng: np.random.Generator, n: int, scale: int, hr_h: int, hr_w: int,
                   desc: str = "pairs") -> list[tuple[np.ndarray, np.ndarray]]:
    """n (LR, HR) plate pairs at least ``hr_w`` wide. Rendering and degrading a pair costs about
    as much as a training step on CPU, so pairs are made once and patches are cut from them."""
    from train.synth.degrade import make_sr_pair

    pool = []
    with tqdm(total=n, desc=desc, unit="pair", leave=False) as bar:
        while len(pool) < n:
            lr, hr, _ = make_sr_pair(rng, scale=scale, hr_height=hr_h)
            if hr.shape[1] >= hr_w:
                pool.append((lr, hr))
                bar.update(1)
    return pool


def sample_batch(rng: np.random.Generator, pool: list[tuple[np.ndarray, np.ndarray]], n: int, scale: int,
                 hr_h: int, hr_w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n aligned (LR, HR) patches cut from random pool pairs: HR (n,3,hr_h,hr_w), LR (n,3,hr_h/s,hr_w/s)."""
    lrs, hrs = [], []
    for k in rng.integers(0, len(pool), n):
        lr, hr = pool[k]
        x0 = int(rng.integers(0, (hr.shape[1] - hr_w) // scale + 1)) * scale  # keep LR/HR grids aligned
        hrs.append(hr[:hr_h, x0 : x0 + hr_w])
        lrs.append(lr[: hr_h // scale, x0 // scale : (x0 + hr_w) // scale])
    return _to_tensor(lrs), _to_tensor(hrs)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR in dB over a batch of [0, 1] images."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(pred.clamp(0, 1), target, data_range=1.0, reduction="elementwise_mean",
                                         dim=(1, 2, 3)))


@torch.inference_mode()
def evaluate(model: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor) -> dict:
    """PSNR of the model and of bicubic upscaling on the same held-out pairs."""
    model.eval()
    sr = model(lr)
    bicubic = F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False)
    model.train()
    return {"psnr_model": round(psnr(sr, hr), 3), "psnr_bicubic": round(psnr(bicubic, hr), 3)}


def train_generator(
    out: Path,
    steps: int = 4000,
    batch: int = 16,
    scale: int = 4,
    hr_size: tuple[int, int] = (64, 96),
    pool_size: int = 3000,
    lr_rate: float = 2e-4,
    channels: int = 32,
    n_blocks: int = 6,
    seed: int = 0,
    val_pairs: int = 128,
    log_csv: Path | None = None,
    threads: int | None = None,
) -> dict:
    """L1 training loop; writes ``out`` (safetensors) and returns the final validation figures."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_generator(GeneratorConfig(scale=scale, channels=channels, n_blocks=n_blocks))
    opt = torch.optim.Adam(model.parameters(), lr=lr_rate, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr_rate * 0.05)
    val_rng = np.random.default_rng(seed + VAL_SEED_OFFSET)
    val_pool = make_pair_pool(val_rng, val_pairs, scale, *hr_size, desc="validation pairs")
    val_lr, val_hr = sample_batch(val_rng, val_pool, val_pairs, scale, *hr_size)
    pool = make_pair_pool(rng, pool_size, scale, *hr_size, desc="training pairs")
    log_rows = []
    t0 = time.time()
    bar = tqdm(range(1, steps + 1), desc="generator L1", unit="step")
    for step in bar:
        lr, hr = sample_batch(rng, pool, batch, scale, *hr_size)
        loss = F.l1_loss(model(lr), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps:
            figures = evaluate(model, val_lr, val_hr)
            log_rows.append({"step": step, "loss": round(float(loss.detach()), 5), **figures})
            bar.set_postfix(loss=f"{float(loss):.4f}", psnr=figures["psnr_model"], bicubic=figures["psnr_bicubic"])
    final = log_rows[-1]
    info = {
        "trained_on": f"train.synth.make_sr_pair, seed {seed}: {pool_size} pairs, {steps} steps x {batch} patches "
                      f"of HR {hr_size[0]}x{hr_size[1]} px",
        "loss": "L1",
        "val": {"pairs": val_pairs, "seed": seed + VAL_SEED_OFFSET, "psnr_model_db": final["psnr_model"],
                "psnr_bicubic_db": final["psnr_bicubic"]},
        "train_seconds": round(time.time() - t0, 1),
    }
    save_generator(model, out, info=info)
    if log_csv:
        log_csv.parent.mkdir(parents=True, exist_ok=True)
        with open(log_csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(log_rows[0]))
            w.writeheader()
            w.writerows(log_rows)
    return info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.generator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS, help="weights file to write (.safetensors)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--scale", type=int, default=4, choices=(2, 4))
    p.add_argument("--hr-height", type=int, default=64, help="HR patch height, px")
    p.add_argument("--hr-width", type=int, default=96, help="HR patch width, px")
    p.add_argument("--pool", type=int, default=3000, help="synthetic pairs rendered before training")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--log", type=Path, default=None, help="CSV of validation figures during training")
    args = p.parse_args(argv)
    info = train_generator(args.out, steps=args.steps, batch=args.batch, scale=args.scale,
                           hr_size=(args.hr_height, args.hr_width), lr_rate=args.lr, channels=args.channels,
                           n_blocks=args.blocks, seed=args.seed, pool_size=args.pool, log_csv=args.log, threads=args.threads)
    print(json.dumps(info, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
