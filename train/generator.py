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
evaluation), ``checkpoint.pt`` (models, optimisers, step, RNG state; written every
``--ckpt-every`` steps and at the end), ``last.safetensors`` and, with ``--snapshots true``, the
weights of every evaluated step in ``snapshots/``.

Speed: ``--device cuda`` trains on a GPU; ``--workers N`` degrades batches in N data-loader
processes (the degradation, not the network, is the cost: about 5 ms of one core per pair);
``--minutes M`` ends the run after M minutes, the cosine learning rate following whichever of
steps and time runs out first; ``--synthetic-refresh P`` renders a fresh synthetic plate on a
fraction P of synthetic draws. With workers, a resumed run draws different (equally random)
batches than an uninterrupted one; with ``--workers 0`` it draws the same.

Model choice without the OCR on the training machine (a GPU box without ``rapidocr``): train
with ``--no-ocr --snapshots true``, then, where ``rapidocr`` is installed,
``python -m train.generator --select RUN_DIR --out BEST.safetensors`` scores every snapshot
on the same validation sets with the OCR and keeps the best by :func:`selection_score`.
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
    p_video: float = 0.0  # share of pairs degraded like crops of H.264 footage (train.video_degradation)
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
    # speed
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda when available)
    workers: int = 0  # data-loader processes degrading batches; 0: in the training process
    minutes: float | None = None  # time budget; the run ends at whichever of steps / minutes comes first
    eval_every_s: float | None = None  # evaluate every this many seconds (as well as every eval_every steps)
    synthetic_refresh: float = 0.0  # probability a synthetic draw renders a new plate first
    snapshots: bool = False  # keep each evaluated step's weights in run_dir/snapshots/

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
    syn = SyntheticPlates(cfg.synthetic, seed=cfg.seed, refresh=cfg.synthetic_refresh)
    sources.append(syn), weights.append(cfg.weights.get("synthetic", 1.0))
    desc["synthetic"] = {"plates": len(syn), "seed": cfg.seed, "styles": "train.synth STYLES (latin, ccpd_blue)"}
    if cfg.synthetic_refresh:
        desc["synthetic"]["refresh"] = cfg.synthetic_refresh
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
    if cfg.p_video:
        from train.video_degradation import VideoDegradation

        desc["footage_degradation"] = {"share": cfg.p_video, **VideoDegradation().to_dict()}
    return PairSampler(sources, weights, cfg.scale, cfg.hr_width, p_video=cfg.p_video), desc


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

    def __init__(self, sets: list[ValSet], ocr: bool = True, device: str | torch.device = "cpu") -> None:
        self.sets = sets
        self.device = torch.device(device)
        self.reader = None
        if ocr:
            from benchmarks.ocr import PlateReader

            self.reader = PlateReader(threads=1)
        self.bicubic = self._score(lambda lr, s: cv2.resize(lr, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC))

    def _score(self, upscale) -> dict:
        """upscale(lr (h, w, 3) uint8, scale) -> (h·s, w·s, 3) uint8; figures per set."""
        from torchmetrics.functional.image import peak_signal_noise_ratio

        res = {}
        for vs in self.sets:
            s = vs.hr[0].shape[0] // vs.lr[0].shape[0]
            outs = [upscale(lr, s) for lr in vs.lr]
            ps = [float(peak_signal_noise_ratio(to_tensor([o]), to_tensor([h]), data_range=1.0))
                  for o, h in zip(outs, vs.hr)]
            res[f"{vs.name}_psnr"] = round(float(np.mean(ps)), 3)
            if self.reader is not None:
                from benchmarks.ocr import char_accuracy, exact_match

                reads = self.reader.read(outs)
                res[f"{vs.name}_exact"] = round(100 * float(np.mean([exact_match(r.text, t) for r, t in zip(reads, vs.texts)])), 2)
                res[f"{vs.name}_char"] = round(float(np.mean([char_accuracy(r.text, t) for r, t in zip(reads, vs.texts)])), 4)
        return res

    @torch.inference_mode()
    def __call__(self, model: torch.nn.Module) -> dict:
        was = model.training
        model.eval()

        def up(lr: np.ndarray, s: int) -> np.ndarray:
            y = model(to_tensor([lr]).to(self.device)).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
            return np.ascontiguousarray(y[0].permute(1, 2, 0).cpu().numpy()[..., ::-1])

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
def cosine_lr(base: float, progress: float, floor: float = 0.05) -> float:
    """Cosine decay from ``base`` to ``floor·base`` over progress 0 → 1 (clipped)."""
    progress = min(1.0, max(0.0, progress))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class _PairBatches(torch.utils.data.IterableDataset):
    """Endless training batches from a :class:`PairSampler`; yields (lr, hr, texts) as in
    :class:`Batch`. Drawn from ``rng`` when given (in the training process: resumable exactly),
    else from one RNG stream per data-loader worker (seeded by run seed, start step and worker id)."""

    def __init__(self, sampler: PairSampler, batch: int, seed: int, start_step: int,
                 rng: np.random.Generator | None = None) -> None:
        self.sampler, self.batch, self.seed, self.start_step, self.rng = sampler, batch, seed, start_step, rng

    def __iter__(self):
        rng = self.rng
        if rng is None:
            info = torch.utils.data.get_worker_info()
            rng = np.random.default_rng([self.seed, self.start_step, info.id if info else 0])
        while True:
            b = self.sampler.batch(rng, self.batch)
            yield b.lr, b.hr, b.texts


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)  # one core per worker: OpenCV's own threads would oversubscribe them
    torch.set_num_threads(1)


def _batches(cfg: RunConfig, sampler: PairSampler, rng: np.random.Generator, start_step: int, pin: bool):
    """Training batches: in this process from ``rng`` (resumable exactly) or from ``cfg.workers`` processes."""
    if cfg.workers <= 0:
        yield from _PairBatches(sampler, cfg.batch, cfg.seed, start_step, rng)
        return
    loader = torch.utils.data.DataLoader(_PairBatches(sampler, cfg.batch, cfg.seed, start_step), batch_size=None,
                                         num_workers=cfg.workers, worker_init_fn=_worker_init, pin_memory=pin,
                                         prefetch_factor=4, persistent_workers=False,
                                         # fork after OpenCV / OpenMP thread pools exist can deadlock the workers
                                         multiprocessing_context="spawn")
    yield from loader


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train(cfg: RunConfig, resume: bool = False, ocr: bool = True) -> dict:
    """Run one phase; returns the metadata written into the best weights."""
    if cfg.phase not in ("l1", "gan"):
        raise ValueError(f"phase must be l1 or gan, got {cfg.phase!r}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
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
    G.to(device)
    nets: dict = {"G": G}
    opts: dict = {"opt_G": torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.9, 0.99))}
    text_loss = None
    if cfg.phase == "gan":
        D = PatchDiscriminator(DiscriminatorConfig(channels=cfg.d_channels)).to(device)
        nets["D"] = D
        opts["opt_D"] = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(0.9, 0.99))
        if cfg.recognizer and (cfg.w_feat > 0 or cfg.w_ctc > 0):
            from sr_model.recognizer import load_recognizer

            rec = load_recognizer(cfg.recognizer)
            text_loss = TextPerceptualLoss(rec, rec.config.charset).to(device)

    sampler, data_desc = build_sources(cfg)
    validator = Validator(build_val(cfg), ocr=ocr, device=device)
    step, best = 0, {}
    ckpt = run / "checkpoint.pt"
    log_csv = run / "log.csv"
    if resume and ckpt.exists():
        step, best = load_checkpoint(ckpt, nets, opts, {}, rng)
        _append_csv(log_csv, {}, max_step=step)  # drop rows logged after that checkpoint
    elif log_csv.exists():
        log_csv.unlink()
    snap_dir = run / "snapshots"
    if cfg.snapshots:
        snap_dir.mkdir(exist_ok=True)

    def info_for(figures: dict, at_step: int) -> dict:
        return {
            "phase": cfg.phase, "loss": "L1" if cfg.phase == "l1" else
            f"{cfg.w_l1}*L1 + {cfg.w_feat}*recognizer features + {cfg.w_ctc}*CTC + {cfg.w_adv}*relativistic adversarial",
            "trained_on": data_desc, "degradation": "train.sr_degradation.mixed_degrade (DegradationConfig defaults)",
            "steps": at_step, "batch": cfg.batch, "hr_patch": [sampler.hr_h, cfg.hr_width], "seed": cfg.seed,
            "lr": cfg.lr, "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "init": cfg.init, "init_info": init_info.get("val") if init_info else None,
            "recognizer": cfg.recognizer if text_loss is not None else None,
            "val": {"sets": "openalpr/us held-out split + synthetic (seed+10000), degraded by "
                            "train.synth.degrade.degrade strength 1", "model": figures, "bicubic": validator.bicubic},
            "train_seconds": round(elapsed(), 1),
        }

    prev_seconds = float(best.get("train_seconds", 0.0))
    t0 = time.time()
    budget_s = cfg.minutes * 60 if cfg.minutes else None

    def elapsed() -> float:
        return time.time() - t0 + prev_seconds

    def progress(at_step: int) -> float:
        p = at_step / cfg.steps
        return max(p, elapsed() / budget_s) if budget_s else p

    def evaluate(at_step: int, losses: dict) -> None:
        nonlocal best
        figures = validator(G)
        row = {"step": at_step, "seconds": round(elapsed(), 1),
               **{f"loss_{k}": round(float(v.detach()), 5) for k, v in losses.items()}, **figures}
        _append_csv(log_csv, row)
        score = selection_score(figures)
        if "score" not in best or tuple(best["score"]) < score:
            best = {"score": list(score), "step": at_step, "train_seconds": row["seconds"]}
            save_generator(G, out, info=info_for(figures, at_step))
        best["train_seconds"] = row["seconds"]
        save_generator(G, run / "last.safetensors", info=info_for(figures, at_step))
        if cfg.snapshots:
            save_generator(G, snap_dir / f"step_{at_step:07d}.safetensors", info=info_for(figures, at_step))
        bar.set_postfix({k: v for k, v in figures.items() if k.endswith(("exact", "psnr"))})

    G.train()
    bar = tqdm(total=cfg.steps, desc=f"generator {cfg.phase}", unit="step", initial=step)
    batches = _batches(cfg, sampler, rng, step, pin=device.type == "cuda")
    last_eval = time.time()
    losses: dict = {}
    while step < cfg.steps and progress(step) < 1.0:
        step += 1
        for g in opts["opt_G"].param_groups:
            g["lr"] = cosine_lr(cfg.lr, progress(step - 1))
        if cfg.phase == "gan":
            for g in opts["opt_D"].param_groups:
                g["lr"] = cosine_lr(cfg.lr_d, progress(step - 1))
        lr_t, hr_t, texts = next(batches)
        lr_t, hr_t = lr_t.to(device, non_blocking=True), hr_t.to(device, non_blocking=True)
        sr = G(lr_t)
        losses = {"l1": F.l1_loss(sr, hr_t)}
        if cfg.phase == "gan":
            D = nets["D"]
            # generator step: D frozen
            for p in D.parameters():
                p.requires_grad_(False)
            real_logits = D(hr_t).detach()
            fake_logits = D(sr)
            losses["adv"] = relativistic_g_loss(real_logits, fake_logits)
            total = cfg.w_l1 * losses["l1"] + cfg.w_adv * losses["adv"]
            if text_loss is not None:
                losses["feat"], losses["ctc"] = text_loss(sr, hr_t, texts)
                total = total + cfg.w_feat * losses["feat"] + cfg.w_ctc * losses["ctc"]
        else:
            total = losses["l1"]
        opts["opt_G"].zero_grad(set_to_none=True)
        total.backward()
        opts["opt_G"].step()
        if cfg.phase == "gan":
            for p in D.parameters():
                p.requires_grad_(True)
            d_loss = relativistic_d_loss(D(hr_t), D(sr.detach()))
            opts["opt_D"].zero_grad(set_to_none=True)
            d_loss.backward()
            opts["opt_D"].step()
            losses["d"] = d_loss
        bar.update(1)
        ending = step >= cfg.steps or progress(step) >= 1.0
        if step % cfg.eval_every == 0 or ending or (cfg.eval_every_s and time.time() - last_eval >= cfg.eval_every_s):
            evaluate(step, losses)
            last_eval = time.time()
        if step % cfg.ckpt_every == 0 or ending:
            best["train_seconds"] = round(elapsed(), 1)
            save_checkpoint(ckpt, step, nets, opts, {}, rng, best)
    bar.close()
    batches.close()  # stops the data-loader workers
    if not out.exists():  # resumed after the last step: nothing evaluated in this call
        evaluate(step, losses)
    _, info = load_generator(out)
    return info


def select_snapshots(run_dir: Path, out: Path, ocr: bool = True) -> dict:
    """Score every ``run_dir/snapshots/*.safetensors`` on the run's validation sets (rebuilt from
    its ``config.json``, OCR on) and write the best by :func:`selection_score` to ``out``, its
    metadata's ``val.model`` replaced by these figures. Returns {snapshot name: figures}."""
    cfg = RunConfig.from_dict(json.loads((Path(run_dir) / "config.json").read_text()))
    validator = Validator(build_val(cfg), ocr=ocr)
    scores, best = {}, None
    for snap in tqdm(sorted((Path(run_dir) / "snapshots").glob("*.safetensors")), desc="snapshots", unit="model"):
        G, info = load_generator(snap)
        figures = validator(G)
        scores[snap.name] = figures
        if best is None or selection_score(figures) > selection_score(scores[best[0].name]):
            best = (snap, G, info)
    if best is None:
        raise FileNotFoundError(f"no snapshots in {run_dir}/snapshots")
    snap, G, info = best
    info["val"] = {**info["val"], "model": scores[snap.name], "bicubic": validator.bicubic,
                   "selected_from": f"{len(scores)} snapshots by " + ("OCR character accuracy, then PSNR" if ocr else "PSNR")
                   + " (train.generator --select)"}
    save_generator(G, out, info=info)
    return scores


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.generator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=None, help="JSON file of RunConfig options (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue from run_dir/checkpoint.pt")
    p.add_argument("--no-ocr", action="store_true", help="validate by PSNR only (no rapidocr)")
    p.add_argument("--select", type=Path, default=None, metavar="RUN_DIR",
                   help="score RUN_DIR's snapshots with the OCR and write the best to --out; no training")
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
        elif isinstance(default, float) or f.name in ("minutes", "eval_every_s"):
            p.add_argument(flag, type=float, default=None)
        else:
            p.add_argument(flag, type=str, default=None)
    args = p.parse_args(argv)
    if args.select is not None:
        if not args.out:
            p.error("--select needs --out")
        scores = select_snapshots(args.select, Path(args.out), ocr=not args.no_ocr)
        print(json.dumps(scores, indent=2))
        return
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
