"""Train the multi-frame fusion generator (:class:`sr_model.fusion.MultiFrameSR`) with an L1 loss.

    python -m train.fusion --steps 4800 --threads 1 --work /tmp/fusion_run --out sr_model/weights/fusion_x4.safetensors \
        --log benchmarks/results/fusion/fusion_training.csv [--resume]

The defaults are the shipped model's recipe (``fusion_x4`` v3: ESPCN upsampler, one-conv
per-frame encoder, 4-channel attention scorer, 2 decoder blocks, affine ECC alignment on native-size
crops, 4800 steps; about 9 min on one CPU thread).

Training sequences: the same HR plate under sub-pixel motion, each frame degraded on its own.

* HR sources (60 px tall crops, the legibility benchmark's canonical HR height): rendered
  synthetic plates (``train.synth.degrade.make_sr_pair``'s clean HR: ``render_plate``, every
  style, on a car-body background with perspective jitter) and real US plate crops
  (``benchmarks.plate_sets.load_openalpr`` on ``openalpr/us``: split 80 / 20 by ``--seed`` into
  train / validation; training keeps only crops whose native height is at least 60 px, so the HR
  is a real one, not an enlargement). ``openalpr/eu`` is never read here.
* A sequence of K frames: the reference (the last frame) is the HR crop itself; every other frame
  is the HR crop translated by a uniform random sub-pixel offset of up to ±``--max-shift`` HR px
  (``cv2.warpAffine``, bicubic, edges replicated). Each frame is degraded independently by
  :func:`train.synth.degrade.degrade` (×4) at a random strength in [0.3, 1]. With probability
  ``--p-wrong`` a frame shows a different plate instead (a tracker mix-up), so alignment drops it.
* ``--p-video P``: that share of sequences is made by :mod:`train.video_degradation` instead
  (the frames encoded as one H.264 sequence, a growing plate, crops rectified from jittering
  corners, as ``enhance-video`` cuts them; ``--video JSON`` overrides its ranges). Off by default:
  models trained with it were not better on real footage (benchmarks/results/fusion/NOTES.md,
  "Real footage"). ``--motion affine`` aligns with affine ECC (recorded in the weights);
  ``--init W`` starts from existing weights (fine-tuning).
* Frames are aligned exactly as at inference (:func:`sr_model.align.align_sequence`: ECC, crops
  under ``min_ecc`` dropped). During training, kept frames are also dropped at random
  (``--p-drop`` each; reference only with ``--p-single``) so the model sees 1..K frames.
* Batches: random 60 × 96 HR patches (15 × 24 LR) of pool sequences.

Outputs: the weights (safetensors, config + info metadata: data, steps, validation figures,
time), ``--work``/run_config.json, ``--work``/checkpoint.safetensors (model + Adam state + RNG
state every ``--ckpt-every`` steps; ``--resume`` continues from it), and the CSV log.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tqdm import tqdm

from sr_model.align import DEFAULT_MIN_ECC, align_sequence
from sr_model.fusion import (DEFAULT_FUSION_WEIGHTS, FusionNetConfig, build_fusion_model, read_fusion_metadata,
                             save_fusion)
from train.synth.degrade import degrade, make_sr_pair
from train.video_degradation import VideoDegradation, video_sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
HR_H = 60  # px, HR crop / patch height (legibility benchmark canonical height)
VAL_SEED_OFFSET = 10_000


@dataclass
class FusionTrainConfig:
    """Everything that defines a run (written to run_config.json and the weights' metadata)."""

    steps: int = 4800
    batch: int = 16
    k: int = 5
    scale: int = 4
    patch_w: int = 96  # HR px
    lr: float = 4e-4
    channels: int = 32
    enc_blocks: int = 0  # the shipped model (fusion_x4 v3); v1 had 1 (see benchmarks/results/fusion/NOTES.md)
    dec_blocks: int = 2  # v2: 3, v1: 4
    att_channels: int = 4  # v2: 8, v1: 16
    upsampler: str = "espcn"  # v1: "progressive" (≈ 4x the cost; see sr_model.fusion.FusionNetConfig)
    seed: int = 0
    n_synthetic: int = 1200  # synthetic training sequences
    real_repeats: int = 8  # sequences per real US training crop
    real_min_native: int = 60  # px, native crop height a real HR needs
    val_split: float = 0.2
    n_val_synthetic: int = 96
    max_shift: float = 4.0  # HR px (= 1 LR px at ×4)
    strength: tuple[float, float] = (0.3, 1.0)
    p_wrong: float = 0.05
    p_drop: float = 0.2
    p_single: float = 0.1
    min_ecc: float = DEFAULT_MIN_ECC
    p_video: float = 0.0  # share of sequences made by train.video_degradation (H.264, zoom, corner jitter)
    video: dict = field(default_factory=dict)  # overrides of train.video_degradation.VideoDegradation's ranges
    motion: str = "affine"  # v2, v1: "translation"
    upsample: int = 1  # ECC alignment runs on crops enlarged this many times (1 = native: ~2x cheaper than 2; v2, v1: 2)
    eval_every: int = 250
    ckpt_every: int = 250
    threads: int = 1
    data: str = str(DEFAULT_DATA)
    init: str = ""  # start from these fusion weights (same architecture) instead of a fresh model
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- data
def shift_hr(hr: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Sub-pixel translation of an HR crop by (dx, dy) px, edges replicated."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(hr, m, (hr.shape[1], hr.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def make_sequence(rng: np.random.Generator, hr: np.ndarray, others: list[np.ndarray], cfg: FusionTrainConfig
                  ) -> dict:
    """One training sequence from an HR crop ((60, W, 3) uint8, W % scale == 0).

    Returns {"lr": (K, 15, W/4, 3) float16 aligned BGR frames in [0, 1] (reference last), "valid": (K,) bool,
    "hr": the HR crop, "ecc": (K,) float}.
    """
    s = cfg.scale

    def wrong_plate() -> np.ndarray | None:
        """With probability p_wrong, another plate at this plate's size (a tracker mix-up)."""
        if others and rng.random() < cfg.p_wrong:
            o = others[int(rng.integers(len(others)))]
            return cv2.resize(o, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_AREA)
        return None

    if cfg.p_video > 0 and rng.random() < cfg.p_video:
        wrong = {f: w for f in range(cfg.k - 1) if (w := wrong_plate()) is not None}
        frames, hr = video_sequence(hr, cfg.k, s, rng, VideoDegradation(**cfg.video), wrong)
    else:
        frames = []
        for f in range(cfg.k):
            src = hr
            if f < cfg.k - 1:
                w = wrong_plate()
                src = hr if w is None else w
                dx, dy = rng.uniform(-cfg.max_shift, cfg.max_shift, 2)
                src = shift_hr(src, float(dx), float(dy))
            frames.append(degrade(src, s, rng, strength=float(rng.uniform(*cfg.strength))))
    al = align_sequence(frames, cfg.motion, cfg.upsample, cfg.min_ecc)
    return {"lr": np.stack(al.frames).astype(np.float16), "valid": al.valid, "hr": hr,
            "ecc": np.array([a.ecc for a in al.alignments], np.float32)}


def synthetic_hr(rng: np.random.Generator, min_w: int) -> np.ndarray:
    """A clean rendered plate crop, 60 px tall, at least ``min_w`` px wide (multiple of 4)."""
    while True:
        _, hr, _ = make_sr_pair(rng, scale=4, hr_height=HR_H, strength=0.0)
        if hr.shape[1] >= min_w:
            return hr


def split_real(data: Path, seed: int, val_split: float) -> tuple[list, list]:
    """(train, val) canonical US crops (``PlateCrop``), split by a seeded permutation."""
    from benchmarks.plate_sets import load_openalpr

    folder = data / "openalpr" / "us"
    if not folder.is_dir():
        return [], []
    crops, _ = load_openalpr(folder, "openalpr_us")
    perm = np.random.default_rng(seed).permutation(len(crops))
    n_val = int(round(val_split * len(crops)))
    val = [crops[i] for i in sorted(perm[:n_val])]
    train = [crops[i] for i in sorted(perm[n_val:])]
    return train, val


def _fit_width(hr: np.ndarray, min_w: int) -> np.ndarray:
    """Pad (edge) an HR crop narrower than ``min_w``; crop the width to a multiple of 4."""
    if hr.shape[1] < min_w:
        hr = np.pad(hr, ((0, 0), (0, min_w - hr.shape[1]), (0, 0)), mode="edge")
    return hr[:, : hr.shape[1] - hr.shape[1] % 4]


def build_pool(rng: np.random.Generator, cfg: FusionTrainConfig, real: list[np.ndarray], n_synth: int,
               repeats: int, desc: str) -> list[dict]:
    """``n_synth`` synthetic sequences + ``repeats`` sequences per real HR crop."""
    sources = [synthetic_hr(rng, cfg.patch_w) for _ in range(n_synth)]
    sources += [_fit_width(hr, cfg.patch_w) for hr in real for _ in range(repeats)]
    pool = []
    for hr in tqdm(sources, desc=desc, unit="seq", leave=False):
        pool.append(make_sequence(rng, hr, sources[:64], cfg))
    return pool


def sample_batch(rng: np.random.Generator, pool: list[dict], cfg: FusionTrainConfig, n: int, train: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(frames (n, K, 3, 15, 24) RGB float, valid (n, K) bool, hr (n, 3, 60, 96) RGB float) patches."""
    s, pw = cfg.scale, cfg.patch_w
    xs, vs, hs = [], [], []
    idx = rng.integers(0, len(pool), n) if train else np.arange(min(n, len(pool)))
    for i in idx:
        item = pool[int(i)]
        W = item["hr"].shape[1]
        x0 = (int(rng.integers(0, (W - pw) // s + 1)) * s) if train else ((W - pw) // (2 * s)) * s
        lr = item["lr"][:, :, x0 // s: (x0 + pw) // s].astype(np.float32)
        valid = item["valid"].copy()
        if train:
            if rng.random() < cfg.p_single:
                valid[:-1] = False
            else:
                valid[:-1] &= rng.random(cfg.k - 1) >= cfg.p_drop
        xs.append(lr)
        vs.append(valid)
        hs.append(item["hr"][:, x0: x0 + pw])
    x = torch.from_numpy(np.ascontiguousarray(np.stack(xs)[..., ::-1])).permute(0, 1, 4, 2, 3).float()
    h = torch.from_numpy(np.ascontiguousarray(np.stack(hs)[..., ::-1])).permute(0, 3, 1, 2).float().div_(255.0)
    return x, torch.from_numpy(np.stack(vs)), h


# --------------------------------------------------------------------------- metrics
def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR (dB) over a batch of [0, 1] images (N, 3, H, W)."""
    mse = ((pred.clamp(0, 1) - target) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


@torch.inference_mode()
def evaluate(model: torch.nn.Module, x: torch.Tensor, v: torch.Tensor, hr: torch.Tensor) -> dict:
    """Validation PSNR (dB): fused (all aligned frames), single (same model, reference only), bicubic."""
    was_training = model.training
    model.eval()
    fused = model(x, v)
    single = model(x[:, -1:], v[:, -1:])
    bicubic = F.interpolate(x[:, -1], size=hr.shape[-2:], mode="bicubic", align_corners=False)
    model.train(was_training)
    return {"psnr_fused": round(psnr(fused, hr), 3), "psnr_single": round(psnr(single, hr), 3),
            "psnr_bicubic": round(psnr(bicubic, hr), 3)}


# --------------------------------------------------------------------------- checkpoints
def _opt_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for name, t in st.items():
            tensors[f"opt.{idx}.{name}"] = t if torch.is_tensor(t) else torch.tensor(t)
    return tensors, json.dumps(sd["param_groups"])


def save_checkpoint(path: Path, model, opt, sched, rng: np.random.Generator, step: int, log_rows: list[dict],
                    elapsed: float) -> None:
    """Model + Adam state + scheduler + numpy RNG state + log so far, in one safetensors file."""
    tensors, groups = _opt_tensors(opt)
    tensors["torch_rng"] = torch.get_rng_state()
    meta = {"step": str(step), "param_groups": groups, "scheduler": json.dumps(sched.state_dict(), default=float),
            "np_rng": json.dumps(rng.bit_generator.state), "log": json.dumps(log_rows), "elapsed_s": str(elapsed)}
    save_fusion(model, path, {"checkpoint": True, "step": step}, extra_tensors=tensors, extra_meta=meta)


def load_checkpoint(path: Path, model, opt, sched, rng: np.random.Generator) -> tuple[int, list[dict], float]:
    """Restore what :func:`save_checkpoint` wrote; returns (step, log rows, elapsed seconds)."""
    meta = read_fusion_metadata(path)
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    sched.load_state_dict(json.loads(meta["scheduler"]))
    rng.bit_generator.state = json.loads(meta["np_rng"])
    torch.set_rng_state(tensors["torch_rng"])
    return int(meta["step"]), json.loads(meta["log"]), float(meta["elapsed_s"])


# --------------------------------------------------------------------------- training
def train_fusion(cfg: FusionTrainConfig, out: Path, work: Path, log_csv: Path | None = None, resume: bool = False,
                 stop_after: int | None = None) -> dict | None:
    """Build the data, train, write ``out``; returns the weights' info metadata.

    stop_after: end after this step with only the checkpoint written (as if the run were killed
    there; returns None), for ``resume``."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    work.mkdir(parents=True, exist_ok=True)
    (work / "run_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    t_data = time.time()
    real_train, real_val = split_real(Path(cfg.data), cfg.seed, cfg.val_split)
    real_hr = [c.hr for c in real_train if c.native_height >= cfg.real_min_native]
    val_rng = np.random.default_rng(cfg.seed + VAL_SEED_OFFSET)
    val_pool = build_pool(val_rng, cfg, [c.hr for c in real_val], cfg.n_val_synthetic, 1, "validation sequences")
    vx, vv, vh = sample_batch(val_rng, val_pool, cfg, len(val_pool), train=False)
    rng = np.random.default_rng(cfg.seed)
    pool = build_pool(rng, cfg, real_hr, cfg.n_synthetic, cfg.real_repeats, "training sequences")
    data_s = time.time() - t_data
    kept = float(np.mean([p["valid"][:-1].mean() for p in pool]))

    model = build_fusion_model(FusionNetConfig(scale=cfg.scale, channels=cfg.channels, enc_blocks=cfg.enc_blocks,
                                               dec_blocks=cfg.dec_blocks, att_channels=cfg.att_channels,
                                               upsampler=cfg.upsampler))
    if cfg.init:
        from sr_model.fusion import load_fusion

        init_model, _ = load_fusion(cfg.init)
        if init_model.config != model.config:
            raise ValueError(f"--init {cfg.init} is a {init_model.config}, not the {model.config} asked for")
        model.load_state_dict(init_model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr * 0.05)
    ckpt = work / "checkpoint.safetensors"
    step0, log_rows, elapsed0 = 0, [], 0.0
    if resume and ckpt.is_file():
        step0, log_rows, elapsed0 = load_checkpoint(ckpt, model, opt, sched, rng)
    model.train()
    t0 = time.time()
    bar = tqdm(range(step0 + 1, cfg.steps + 1), desc="fusion L1", unit="step", initial=step0, total=cfg.steps)
    for step in bar:
        x, v, hr = sample_batch(rng, pool, cfg, cfg.batch)
        loss = F.l1_loss(model(x, v), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            fig = evaluate(model, vx, vv, vh)
            log_rows.append({"step": step, "loss": round(float(loss.detach()), 5), **fig,
                             "elapsed_s": round(elapsed0 + time.time() - t0, 1)})
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", fused=fig["psnr_fused"], single=fig["psnr_single"],
                            bicubic=fig["psnr_bicubic"])
            if log_csv:
                log_csv.parent.mkdir(parents=True, exist_ok=True)
                with open(log_csv, "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=list(log_rows[0]))
                    w.writeheader()
                    w.writerows(log_rows)
        if step % cfg.ckpt_every == 0 or step == cfg.steps or step == stop_after:
            save_checkpoint(ckpt, model, opt, sched, rng, step, log_rows, elapsed0 + time.time() - t0)
        if step == stop_after:
            return None
    train_s = elapsed0 + time.time() - t0
    final = log_rows[-1] if log_rows else evaluate(model, vx, vv, vh)
    info = {
        "trained_on": {
            "synthetic": f"{cfg.n_synthetic} sequences from train.synth.degrade.make_sr_pair HR (render_plate, "
                         f"all styles), seed {cfg.seed}",
            "openalpr_us": f"{len(real_hr)} of {len(real_train)} training-split US crops (native height >= "
                           f"{cfg.real_min_native} px) x {cfg.real_repeats} sequences; split 80/20 by seed {cfg.seed}",
            "openalpr_eu": "not used (evaluation only)",
            "sequence": f"K={cfg.k}, reference = last frame (unshifted HR); others shifted U(+-{cfg.max_shift}) HR px; "
                        f"each frame degrade(x{cfg.scale}, strength U{tuple(cfg.strength)}); p_wrong {cfg.p_wrong}",
            "video_sequences": (f"share {cfg.p_video}: train.video_degradation.video_sequence "
                                f"{json.dumps(VideoDegradation(**cfg.video).to_dict())} instead") if cfg.p_video > 0 else "none",
            "frames_kept_by_alignment": round(kept, 3),
            "init": cfg.init or "fresh model",
        },
        "alignment": {"method": "cv2.findTransformECC on band-passed grey, upsampled", "motion": cfg.motion,
                      "upsample": cfg.upsample, "min_ecc": cfg.min_ecc},
        "loss": "L1",
        "steps": cfg.steps, "batch": cfg.batch, "patch_hr": [HR_H, cfg.patch_w],
        "val": {"sequences": len(val_pool), "real_us_val_crops": len(real_val),
                "synthetic_seed": cfg.seed + VAL_SEED_OFFSET,
                **{k: final[k] for k in ("psnr_fused", "psnr_single", "psnr_bicubic")}},
        "train_seconds": round(train_s, 1), "data_seconds": round(data_s, 1), "threads": cfg.threads,
        "command_config": asdict(cfg),
    }
    save_fusion(model, out, info=info)
    return info


def export_checkpoint(work: Path, out: Path) -> dict:
    """Write the model of ``work``/checkpoint.safetensors (an unfinished run) as plain weights to
    ``out``, with its config, step and validation log so far in the info metadata."""
    ckpt = work / "checkpoint.safetensors"
    meta = read_fusion_metadata(ckpt)
    from sr_model.fusion import load_fusion

    model, _ = load_fusion(ckpt)
    cfg = json.loads((work / "run_config.json").read_text())
    log = json.loads(meta["log"])
    last = log[-1] if log else {}
    info = {"partial": True, "step": int(meta["step"]), "steps_planned": cfg["steps"], "loss": "L1",
            "trained_on": "see command_config; exported from an unfinished run's checkpoint",
            "alignment": {"method": "cv2.findTransformECC on band-passed grey, upsampled", "motion": cfg["motion"],
                          "upsample": cfg["upsample"], "min_ecc": cfg["min_ecc"]},
            "val": {k: last[k] for k in ("psnr_fused", "psnr_single", "psnr_bicubic") if k in last},
            "train_seconds": round(float(meta["elapsed_s"]), 1), "command_config": cfg}
    save_fusion(model, out, info=info)
    return info


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m train.fusion", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = FusionTrainConfig()
    p.add_argument("--out", type=Path, default=DEFAULT_FUSION_WEIGHTS, help="weights file to write (.safetensors)")
    p.add_argument("--work", type=Path, required=True, help="folder for run_config.json and the checkpoint")
    p.add_argument("--log", type=Path, default=None, help="CSV of validation figures during training")
    p.add_argument("--resume", action="store_true", help="continue from --work/checkpoint.safetensors")
    p.add_argument("--export-checkpoint", action="store_true",
                   help="only write --out from --work/checkpoint.safetensors (an unfinished run) and exit")
    for name in ("steps", "batch", "k", "channels", "enc_blocks", "dec_blocks", "att_channels", "seed",
                 "n_synthetic", "real_repeats", "n_val_synthetic", "eval_every", "ckpt_every", "threads", "upsample"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("lr", "max_shift", "p_wrong", "p_drop", "p_single", "min_ecc", "p_video"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--video", type=json.loads, default=d.video, metavar="JSON",
                   help="overrides of train.video_degradation.VideoDegradation's ranges, e.g. '{\"crf\": [25, 35]}'")
    p.add_argument("--data", type=str, default=d.data, help="shared data folder (holds openalpr/us)")
    p.add_argument("--init", type=str, default=d.init, help="fusion weights to start from (fine-tuning)")
    p.add_argument("--upsampler", choices=("progressive", "espcn"), default=d.upsampler)
    p.add_argument("--motion", choices=("translation", "affine"), default=d.motion,
                   help="ECC motion model of the alignment (recorded in the weights; FusionEnhancer uses it)")
    args = p.parse_args(argv)
    if args.export_checkpoint:
        info = export_checkpoint(args.work, args.out)
        print(f"wrote {args.out} from step {info['step']}")
        return info
    kw = {k: v for k, v in vars(args).items() if k not in ("out", "work", "log", "resume", "export_checkpoint")}
    cfg = FusionTrainConfig(**kw)
    info = train_fusion(cfg, args.out, args.work, args.log, args.resume)
    print(json.dumps({k: info[k] for k in ("val", "train_seconds", "data_seconds")}, indent=1))
    print(f"wrote {args.out}")
    return info


if __name__ == "__main__":
    main()
