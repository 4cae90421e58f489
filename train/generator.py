"""Train the plate super-resolution generator: L1 pretraining, then relativistic GAN fine-tuning.

    python -m train.generator --config train/configs/sr_l1_x4.json      # phase 1: content loss (L1)
    python -m train.generator --config train/configs/sr_gan_x4.json     # phase 2: GAN + text-aware loss
    python -m train.generator --config ... --resume                     # continue a run from its checkpoint

Phase ``l1``: generator only, L1 between SR and HR. Phase ``gan`` (ESRGAN recipe) starts from the
L1 weights (``--init``) and adds a patch discriminator with the relativistic average loss, plus a
text-aware perceptual loss through a frozen plate recognizer (``sr_model.recognizer``): feature
matching and CTC of SR against the plate's true text (``sr_model.losses``):
``w_l1·L1 + w_feat·features + w_ctc·CTC + w_adv·adversarial``.

Data (``train.sr_data``): synthetic plates of every style, real US plate crops (openalpr/us, the
train part of a seeded 80/20 split of crops at least ``--min-native-height`` px tall natively),
random windows of those US photos around the plate, and optionally CCPD folders
(``--hr-ccpd DIR``). LR inputs: ``train.sr_degradation.mixed_degrade`` (Real-ESRGAN-style
second-order blur / resize / noise / JPEG / H.264, the one-round ``train.synth.degrade``, plain).
openalpr/eu is never read: it is the evaluation set.

Validation (model choice): the held-out 20 % of the US crops and held-out synthetic plates, each
degraded by ``train.synth.degrade.degrade`` at strength 1 with fixed seeds, full crops; figures:
PSNR (torchmetrics) and rapidocr exact reads / character accuracy of the SR output (the
benchmark's judge). The evaluated step with the best :func:`selection_score` (mean character
accuracy over both validation sets, then PSNR) is written to ``--out``.

A run folder (``--run-dir``) holds ``config.json`` (every option), ``log.csv`` (one row per
evaluation), ``checkpoint.pt`` (models, optimisers, schedulers, step, RNG state; written every
``--ckpt-every`` steps and at the end) and ``last.safetensors``.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sr_model.discriminator import DiscriminatorConfig, PatchDiscriminator
from sr_model.generator import GeneratorConfig, build_generator
from sr_model.losses import TextPerceptualLoss, relativistic_d_loss, relativistic_g_loss
from sr_model.weights import load_generator, save_generator
from train.sr_data import (DEFAULT_DATA, CcpdPlates, OpenalprContext, OpenalprPlates, PairSampler, SyntheticPlates,
                           to_tensor)

VAL_SEED_OFFSET = 10_000  # validation data never shares a seed with training data


@dataclass
class RunConfig:
    """Every option of a run; ``config.json`` in the run folder is this, as JSON."""

    phase: str = "l1"  # "l1" or "gan"
    run_dir: str = "runs/sr_l1_x4"
    out: str | None = None  # best weights (by selection_score); None: run_dir/best.safetensors
    init: str | None = None  # generator weights to start from (required for gan)
    arch: str = "espcn_res"
    scale: int = 4
    channels: int = 32
    n_blocks: int = 4
    steps: int = 4000
    batch: int = 16
    hr_width: int = 96  # HR patch width, px (height: the canonical 60 px crop)
    lr: float = 2e-4
    lr_d: float = 1e-4
    seed: int = 0
    split_seed: int | None = None  # seed of the US 80/20 split; None: ``seed`` (keep it equal across phases!)
    threads: int = 1
    data: str = str(DEFAULT_DATA)
    use_us: bool = True
    min_native_height: int = 40
    val_fraction: float = 0.2
    synthetic: int = 3000
    context_per_photo: int = 6
    hr_ccpd: list[str] = field(default_factory=list)
    weights: dict = field(default_factory=lambda: {"synthetic": 0.35, "us": 0.45, "context": 0.2, "ccpd": 0.3})
    # gan phase
    recognizer: str | None = None
    w_l1: float = 1.0
    w_feat: float = 0.1
    w_ctc: float = 0.01
    w_adv: float = 0.005
    d_channels: int = 32
    # bookkeeping
    eval_every: int = 250
    ckpt_every: int = 250
    val_synthetic: int = 64

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)


# --------------------------------------------------------------------------- data
def _split_seed(cfg: RunConfig) -> int:
    return cfg.seed if cfg.split_seed is None else cfg.split_seed


def build_sources(cfg: RunConfig) -> tuple[PairSampler, dict]:
    """The training sampler and a description of its sources (for the weights' metadata)."""
    sources, weights, desc = [], [], {}
    syn = SyntheticPlates(cfg.synthetic, seed=cfg.seed)
    sources.append(syn), weights.append(cfg.weights.get("synthetic", 1.0))
    desc["synthetic"] = {"plates": len(syn), "seed": cfg.seed, "styles": "train.synth STYLES (latin, ccpd_blue)"}
    us_dir = Path(cfg.data) / "openalpr" / "us"
    if cfg.use_us and us_dir.is_dir():
        us = OpenalprPlates(us_dir, "train", cfg.min_native_height, cfg.val_fraction, _split_seed(cfg))
        sources.append(us), weights.append(cfg.weights.get("us", 1.0))
        names = {c.name for c in us.crops}
        ctx = OpenalprContext(us_dir, names, per_photo=cfg.context_per_photo, seed=cfg.seed)
        desc["openalpr_us"] = {"crops_total": us.n_total, "qualified_native_h>=": cfg.min_native_height,
                               "qualified": us.n_qualified, "train_crops": len(us), "split_seed": _split_seed(cfg),
                               "val_fraction": cfg.val_fraction, "context_windows": len(ctx)}
        if len(ctx):
            sources.append(ctx), weights.append(cfg.weights.get("context", 0.2))
    for folder in cfg.hr_ccpd:
        cc = CcpdPlates(Path(folder))
        sources.append(cc), weights.append(cfg.weights.get("ccpd", 0.3))
        desc.setdefault("ccpd", []).append({"folder": str(folder), "plates": len(cc)})
    return PairSampler(sources, weights, cfg.scale, cfg.hr_width), desc


@dataclass
class ValSet:
    """Full validation crops: lr list of (h, w, 3) uint8, hr list, texts."""

    name: str
    lr: list[np.ndarray]
    hr: list[np.ndarray]
    texts: list[str]


def build_val(cfg: RunConfig) -> list[ValSet]:
    """US held-out crops and held-out synthetic plates, degraded like the benchmark (fixed seeds)."""
    from train.synth.degrade import crop_to_multiple, degrade

    out = []
    rng = np.random.default_rng(cfg.seed + VAL_SEED_OFFSET)
    us_dir = Path(cfg.data) / "openalpr" / "us"
    if cfg.use_us and us_dir.is_dir():
        us = OpenalprPlates(us_dir, "val", cfg.min_native_height, cfg.val_fraction, _split_seed(cfg))
        hrs = [crop_to_multiple(c.hr, cfg.scale) for c in us.crops]
        out.append(ValSet("us_val", [degrade(h, cfg.scale, rng, 1.0) for h in hrs], hrs, [c.text for c in us.crops]))
    syn = SyntheticPlates(cfg.val_synthetic, seed=cfg.seed + VAL_SEED_OFFSET)
    hrs = [crop_to_multiple(s.hr, cfg.scale) for s in syn.items]
    out.append(ValSet("synthetic_val", [degrade(h, cfg.scale, rng, 1.0) for h in hrs], hrs, [s.text for s in syn.items]))
    return out


class Validator:
    """PSNR and OCR reads of the generator (and of bicubic, once) on the validation sets."""

    def __init__(self, sets: list[ValSet], ocr: bool = True) -> None:
        self.sets = sets
        self.reader = None
        if ocr:
            from benchmarks.ocr import PlateReader

            self.reader = PlateReader(threads=1)
        self.bicubic = self._score(lambda lr, s: cv2.resize(lr, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC))

    def _score(self, upscale) -> dict:
        """upscale(lr (h, w, 3) uint8, scale) -> (h·s, w·s, 3) uint8; figures per set."""
        from benchmarks.ocr import char_accuracy, exact_match
        from torchmetrics.functional.image import peak_signal_noise_ratio

        res = {}
        for vs in self.sets:
            s = vs.hr[0].shape[0] // vs.lr[0].shape[0]
            outs = [upscale(lr, s) for lr in vs.lr]
            ps = [float(peak_signal_noise_ratio(to_tensor([o]), to_tensor([h]), data_range=1.0))
                  for o, h in zip(outs, vs.hr)]
            res[f"{vs.name}_psnr"] = round(float(np.mean(ps)), 3)
            if self.reader is not None:
                reads = self.reader.read(outs)
                res[f"{vs.name}_exact"] = round(100 * float(np.mean([exact_match(r.text, t) for r, t in zip(reads, vs.texts)])), 2)
                res[f"{vs.name}_char"] = round(float(np.mean([char_accuracy(r.text, t) for r, t in zip(reads, vs.texts)])), 4)
        return res

    @torch.inference_mode()
    def __call__(self, model: torch.nn.Module) -> dict:
        was = model.training
        model.eval()

        def up(lr: np.ndarray, s: int) -> np.ndarray:
            y = model(to_tensor([lr])).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
            return np.ascontiguousarray(y[0].permute(1, 2, 0).numpy()[..., ::-1])

        res = self._score(up)
        model.train(was)
        return res


def selection_score(figures: dict) -> tuple[float, float]:
    """Model choice: mean OCR character accuracy over the validation sets, then mean PSNR (dB).
    (A single 38-plate set's exact reads at ×4 are too few and too noisy to choose by.)"""
    chars = [v for k, v in figures.items() if k.endswith("_char")]
    psnrs = [v for k, v in figures.items() if k.endswith("_psnr")]
    return (float(np.mean(chars)) if chars else 0.0, float(np.mean(psnrs)) if psnrs else 0.0)


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, step: int, nets: dict, opts: dict, scheds: dict, rng: np.random.Generator,
                    best: dict) -> None:
    """Everything to resume: state dicts, step, numpy RNG state (JSON) and the best score so far."""
    blob = {"step": step, "rng": json.dumps(rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
            "best": json.dumps(best)}
    for k, v in {**nets, **opts, **scheds}.items():
        blob[k] = v.state_dict()
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, nets: dict, opts: dict, scheds: dict, rng: np.random.Generator) -> tuple[int, dict]:
    """Restore what :func:`save_checkpoint` wrote; returns (step, best)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    for k, v in {**nets, **opts, **scheds}.items():
        v.load_state_dict(blob[k])
    rng.bit_generator.state = json.loads(blob["rng"])
    torch.set_rng_state(blob["torch_rng"])
    return int(blob["step"]), json.loads(blob["best"])


def _append_csv(path: Path, row: dict, max_step: int | None = None) -> None:
    rows = []
    if path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if max_step is None or int(r["step"]) <= max_step]
    if row:
        rows.append(row)
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


# --------------------------------------------------------------------------- training
def train(cfg: RunConfig, resume: bool = False, ocr: bool = True) -> dict:
    """Run one phase; returns the metadata written into the best weights."""
    if cfg.phase not in ("l1", "gan"):
        raise ValueError(f"phase must be l1 or gan, got {cfg.phase!r}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    out = Path(cfg.out) if cfg.out else run / "best.safetensors"
    (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    gcfg = GeneratorConfig(arch=cfg.arch, scale=cfg.scale, channels=cfg.channels, n_blocks=cfg.n_blocks)
    init_info = {}
    if cfg.init:
        G, init_info = load_generator(cfg.init)
        gcfg = G.config
        G.train()
    elif cfg.phase == "gan":
        raise ValueError("the gan phase starts from L1 weights: give --init")
    else:
        G = build_generator(gcfg)
    nets: dict = {"G": G}
    opts: dict = {"opt_G": torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.9, 0.99))}
    scheds: dict = {"sched_G": torch.optim.lr_scheduler.CosineAnnealingLR(opts["opt_G"], T_max=cfg.steps,
                                                                         eta_min=cfg.lr * 0.05)}
    text_loss = None
    if cfg.phase == "gan":
        D = PatchDiscriminator(DiscriminatorConfig(channels=cfg.d_channels))
        nets["D"] = D
        opts["opt_D"] = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(0.9, 0.99))
        scheds["sched_D"] = torch.optim.lr_scheduler.CosineAnnealingLR(opts["opt_D"], T_max=cfg.steps,
                                                                       eta_min=cfg.lr_d * 0.05)
        if cfg.recognizer and (cfg.w_feat > 0 or cfg.w_ctc > 0):
            from sr_model.recognizer import load_recognizer

            rec = load_recognizer(cfg.recognizer)
            text_loss = TextPerceptualLoss(rec, rec.config.charset)

    sampler, data_desc = build_sources(cfg)
    validator = Validator(build_val(cfg), ocr=ocr)
    step, best = 0, {}
    ckpt = run / "checkpoint.pt"
    log_csv = run / "log.csv"
    if resume and ckpt.exists():
        step, best = load_checkpoint(ckpt, nets, opts, scheds, rng)
        _append_csv(log_csv, {}, max_step=step)  # drop rows logged after that checkpoint
    elif log_csv.exists():
        log_csv.unlink()

    def info_for(figures: dict, at_step: int) -> dict:
        return {
            "phase": cfg.phase, "loss": "L1" if cfg.phase == "l1" else
            f"{cfg.w_l1}*L1 + {cfg.w_feat}*recognizer features + {cfg.w_ctc}*CTC + {cfg.w_adv}*relativistic adversarial",
            "trained_on": data_desc, "degradation": "train.sr_degradation.mixed_degrade (DegradationConfig defaults)",
            "steps": at_step, "batch": cfg.batch, "hr_patch": [sampler.hr_h, cfg.hr_width], "seed": cfg.seed,
            "init": cfg.init, "init_info": init_info.get("val") if init_info else None,
            "recognizer": cfg.recognizer if text_loss is not None else None,
            "val": {"sets": "openalpr/us held-out split + synthetic (seed+10000), degraded by "
                            "train.synth.degrade.degrade strength 1", "model": figures, "bicubic": validator.bicubic},
            "train_seconds": round(time.time() - t0 + prev_seconds, 1),
        }

    prev_seconds = float(best.get("train_seconds", 0.0))
    t0 = time.time()
    G.train()
    bar = tqdm(range(step + 1, cfg.steps + 1), desc=f"generator {cfg.phase}", unit="step", initial=step,
               total=cfg.steps)
    for step in bar:
        b = sampler.batch(rng, cfg.batch)
        sr = G(b.lr)
        losses = {"l1": F.l1_loss(sr, b.hr)}
        if cfg.phase == "gan":
            D = nets["D"]
            # generator step: D frozen
            for p in D.parameters():
                p.requires_grad_(False)
            real_logits = D(b.hr).detach()
            fake_logits = D(sr)
            losses["adv"] = relativistic_g_loss(real_logits, fake_logits)
            total = cfg.w_l1 * losses["l1"] + cfg.w_adv * losses["adv"]
            if text_loss is not None:
                losses["feat"], losses["ctc"] = text_loss(sr, b.hr, b.texts)
                total = total + cfg.w_feat * losses["feat"] + cfg.w_ctc * losses["ctc"]
        else:
            total = losses["l1"]
        opts["opt_G"].zero_grad(set_to_none=True)
        total.backward()
        opts["opt_G"].step()
        scheds["sched_G"].step()
        if cfg.phase == "gan":
            for p in D.parameters():
                p.requires_grad_(True)
            d_loss = relativistic_d_loss(D(b.hr), D(sr.detach()))
            opts["opt_D"].zero_grad(set_to_none=True)
            d_loss.backward()
            opts["opt_D"].step()
            scheds["sched_D"].step()
            losses["d"] = d_loss
        if step % cfg.eval_every == 0 or step == cfg.steps:
            figures = validator(G)
            row = {"step": step, "seconds": round(time.time() - t0 + prev_seconds, 1),
                   **{f"loss_{k}": round(float(v.detach()), 5) for k, v in losses.items()}, **figures}
            _append_csv(log_csv, row)
            score = selection_score(figures)
            if "score" not in best or tuple(best["score"]) < score:
                best = {"score": list(score), "step": step, "train_seconds": row["seconds"]}
                save_generator(G, out, info=info_for(figures, step))
            best["train_seconds"] = row["seconds"]
            save_generator(G, run / "last.safetensors", info=info_for(figures, step))
            bar.set_postfix({k: v for k, v in figures.items() if k.endswith(("exact", "psnr"))})
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            best["train_seconds"] = round(time.time() - t0 + prev_seconds, 1)
            save_checkpoint(ckpt, step, nets, opts, scheds, rng, best)
    _, info = load_generator(out)
    return info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.generator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None, help="JSON file of RunConfig options (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue from run_dir/checkpoint.pt")
    p.add_argument("--no-ocr", action="store_true", help="validate by PSNR only (no rapidocr)")
    p.add_argument("--hr-ccpd", type=Path, action="append", default=None, help="CCPD folder as an HR source (repeatable)")
    for f in fields(RunConfig):
        if f.name in ("hr_ccpd", "weights"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool):
            p.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=None, metavar="BOOL")
        elif isinstance(default, int) or f.name == "split_seed":
            p.add_argument(flag, type=int, default=None)
        elif isinstance(default, float):
            p.add_argument(flag, type=float, default=None)
        else:
            p.add_argument(flag, type=str, default=None)
    args = p.parse_args(argv)
    d = json.loads(args.config.read_text()) if args.config else {}
    for f in fields(RunConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            d[f.name] = v
    if args.hr_ccpd:
        d["hr_ccpd"] = [str(x) for x in args.hr_ccpd]
    cfg = RunConfig.from_dict(d)
    info = train(cfg, resume=args.resume, ocr=not args.no_ocr)
    print(json.dumps(info["val"], indent=2))


if __name__ == "__main__":
    main()
