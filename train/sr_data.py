"""HR sources and (LR, HR, text) training batches for the super-resolution generator.

An HR source yields :class:`HrSample`: an (H, W, 3) uint8 BGR crop at the canonical benchmark
geometry (``HR_HEIGHT`` = 60 px tall, the plate about 1/1.2 of the height, width free) and the
plate text when there is one. Sources:

* :class:`SyntheticPlates`: rendered plates of every style (``train.synth``), on car-body margins.
* :class:`OpenalprPlates`: real US plate crops (``benchmarks.plate_sets.load_openalpr``), only
  those whose native crop height is at least ``min_native_height`` px (so the HR is real, not an
  enlargement), split train / validation by a seeded shuffle.
* :class:`OpenalprContext`: random windows of the same training photos around and beside the
  plate (car bodies, lights, stickers: text-like backgrounds), text ``None``.
* :class:`CcpdPlates`: CCPD images, the plate warped from its four corners (``train.ccpd``).

:class:`PairSampler` mixes sources by weight, cuts random HR patches (``hr_w`` px wide,
scale-aligned) and degrades each with :func:`train.sr_degradation.mixed_degrade`, or, with
probability ``p_video``, as the pipeline would cut it from H.264 footage
(:func:`train.video_degradation.video_sequence`'s reference crop: one camera blur, noise,
libx264 at CRF 23-35, crop corners that jitter; the target is the HR those corners frame).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.plate_sets import HR_HEIGHT, MARGIN_H, MARGIN_W, load_openalpr, parse_annotation, to_canonical
from train.sr_degradation import DegradationConfig, mixed_degrade

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass
class HrSample:
    """hr: (H, W, 3) uint8 BGR; text: the plate's characters, or None (no plate / unknown)."""

    hr: np.ndarray
    text: str | None


class HrSource:
    """A finite pool of HR samples; ``sample`` draws one (with a random horizontal crop later)."""

    name = "source"

    def __init__(self, items: list[HrSample]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, rng: np.random.Generator) -> HrSample:
        return self.items[int(rng.integers(len(self.items)))]


def _jitter_height(hr: np.ndarray, rng: np.random.Generator, lo: float = 0.9, hi: float = 1.15) -> np.ndarray:
    """Rescale by U(lo, hi) and crop / pad back to the same height: plate-size variety."""
    f = float(rng.uniform(lo, hi))
    h, w = hr.shape[:2]
    if abs(f - 1) < 0.02:
        return hr
    img = cv2.resize(hr, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    if img.shape[0] >= h:
        y0 = int(rng.integers(0, img.shape[0] - h + 1))
        return img[y0:y0 + h]
    pad = h - img.shape[0]
    return cv2.copyMakeBorder(img, pad // 2, pad - pad // 2, 0, 0, cv2.BORDER_REPLICATE)


class SyntheticPlates(HrSource):
    """``n`` rendered plates (both styles, ``train.synth.degrade.make_sr_pair`` geometry) at height ``hr_height``.

    refresh: probability that a draw renders a new plate into the drawn slot first (about 13 ms
    of one core each), so a long run sees far more than ``n`` plates without rendering them all
    up front. Each data-loader worker then grows its own pool.
    """

    name = "synthetic"

    def __init__(self, n: int, seed: int, hr_height: int = HR_HEIGHT, min_width: int = 96, refresh: float = 0.0) -> None:
        from tqdm import tqdm

        rng = np.random.default_rng(seed)
        self.hr_height, self.min_width, self.refresh = hr_height, min_width, refresh
        items = [self._render(rng) for _ in tqdm(range(n), desc="synthetic HR", unit="plate", leave=False)]
        super().__init__(items)

    def _render(self, rng: np.random.Generator) -> HrSample:
        from train.synth.degrade import make_sr_pair

        _, hr, text = make_sr_pair(rng, scale=1, hr_height=self.hr_height, strength=0.0)
        if hr.shape[1] < self.min_width:
            hr = cv2.copyMakeBorder(hr, 0, 0, 0, self.min_width - hr.shape[1], cv2.BORDER_REPLICATE)
        return HrSample(hr, text)

    def sample(self, rng: np.random.Generator) -> HrSample:
        i = int(rng.integers(len(self.items)))
        if self.refresh > 0 and rng.random() < self.refresh:
            self.items[i] = self._render(rng)
        return self.items[i]


def split_names(names: Sequence[str], val_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """Seeded shuffle split of ``names`` into (train, val) sets."""
    order = sorted(names)
    np.random.default_rng(seed).shuffle(order)
    n_val = int(round(len(order) * val_fraction))
    return set(order[n_val:]), set(order[:n_val])


class OpenalprPlates(HrSource):
    """Real plate crops of one openalpr folder (the US set; never the EU evaluation set).

    part: ``"train"`` or ``"val"`` of a ``val_fraction`` split by ``seed`` over the crops whose
    native height is ≥ ``min_native_height`` px. ``self.n_qualified`` counts those crops.
    """

    name = "openalpr"

    def __init__(self, folder: Path, part: str = "train", min_native_height: int = 40, val_fraction: float = 0.2,
                 seed: int = 0) -> None:
        if Path(folder).name == "eu":
            raise ValueError("openalpr/eu is evaluation-only: never train or validate on it")
        crops, _ = load_openalpr(Path(folder), "openalpr_train")
        good = [c for c in crops if c.native_height >= min_native_height]
        self.n_total, self.n_qualified = len(crops), len(good)
        train, val = split_names([c.name for c in good], val_fraction, seed)
        keep = train if part == "train" else val
        self.crops = [c for c in good if c.name in keep]
        super().__init__([HrSample(c.hr, c.text) for c in self.crops])


class OpenalprContext(HrSource):
    """Random windows of the training photos near their plate, canonical height, no text.

    For each photo of ``names`` (the training split), ``per_photo`` windows are cut whose height
    is U(1, 3) × the plate crop height and whose centre is within a few plate heights of the
    plate; windows are only kept at native heights ≥ ``HR_HEIGHT`` after resize (area, never enlarged).
    """

    name = "context"

    def __init__(self, folder: Path, names: set[str], per_photo: int = 6, seed: int = 0, width: int = 144) -> None:
        rng = np.random.default_rng(seed)
        items = []
        for txt in sorted(Path(folder).glob("*.txt")):
            if txt.stem not in names:
                continue
            boxes, _ = parse_annotation(txt.read_text(encoding="utf-8", errors="replace"))
            if not boxes:
                continue
            photo = cv2.imread(str(Path(folder) / boxes[0].image_file), cv2.IMREAD_COLOR)
            if photo is None:
                continue
            H, W = photo.shape[:2]
            b = boxes[0]
            ph = b.height * (1 + 2 * MARGIN_H)
            for _ in range(per_photo):
                wh = max(HR_HEIGHT, ph * float(rng.uniform(1.0, 3.0)))
                ww = wh * width / HR_HEIGHT
                cx = b.x + b.width / 2 + float(rng.uniform(-2, 2)) * b.height * 2
                cy = b.y + b.height / 2 + float(rng.uniform(-2, 2)) * b.height
                x0, y0 = int(np.clip(cx - ww / 2, 0, max(0, W - ww))), int(np.clip(cy - wh / 2, 0, max(0, H - wh)))
                win = photo[y0:y0 + int(wh), x0:x0 + int(ww)]
                if win.shape[0] < HR_HEIGHT or win.shape[1] < width * win.shape[0] / HR_HEIGHT * 0.9:
                    continue
                items.append(HrSample(to_canonical(win), None))
        super().__init__(items)


class CcpdPlates(HrSource):
    """CCPD images in ``folder``: each plate warped from its four corners to a rectangle of the
    canonical height (plate 1/1.2 of it, 440:140 aspect) with a margin of the surrounding photo."""

    name = "ccpd"

    def __init__(self, folder: Path, limit: int | None = None) -> None:
        from train.ccpd import iter_ccpd

        items = []
        plate_h = HR_HEIGHT / (1 + 2 * MARGIN_H)
        plate_w = plate_h * 440 / 140
        mx, my = plate_w * MARGIN_W, plate_h * MARGIN_H
        out_w = int(round((plate_w + 2 * mx) / 12)) * 12
        dst = np.float32([[mx, my], [mx + plate_w, my], [mx + plate_w, my + plate_h], [mx, my + plate_h]])
        for path, label in iter_ccpd(folder, strict=False):
            if limit is not None and len(items) >= limit:
                break
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                continue
            src = np.asarray(label.corners, np.float32).reshape(4, 2)
            # shrink the photo first when the plate is much taller than the output (anti-aliasing)
            native_h = float(np.linalg.norm(src[3] - src[0]))
            if native_h > 2 * plate_h:
                f = 1.5 * plate_h / native_h
                img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
                src = src * f
            M = cv2.getPerspectiveTransform(src, dst)
            hr = cv2.warpPerspective(img, M, (out_w, HR_HEIGHT), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            items.append(HrSample(hr, label.text))
        if not items:
            raise ValueError(f"no readable CCPD images in {folder}")
        super().__init__(items)


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """list of (h, w, 3) uint8 BGR, same size → (N, 3, h, w) float32 RGB in [0, 1]."""
    x = torch.from_numpy(np.stack(images)[..., ::-1].copy())
    return x.permute(0, 3, 1, 2).float().div_(255.0)


@dataclass
class Batch:
    """lr: (N, 3, hr_h/s, hr_w/s), hr: (N, 3, hr_h, hr_w) float RGB [0, 1]; texts: per sample or None."""

    lr: torch.Tensor
    hr: torch.Tensor
    texts: list[str | None]


class PairSampler:
    """Draws training batches: source by ``weights``, HR patch ``hr_w`` px wide at a random
    scale-aligned x (the whole crop height, ``HR_HEIGHT``), light height jitter and colour
    jitter, random horizontal flips only for text-less samples, then :func:`mixed_degrade`.
    The patch keeps its text only when it spans the full crop width (the whole plate)."""

    def __init__(self, sources: Sequence[HrSource], weights: Sequence[float], scale: int, hr_w: int = 96,
                 degradation: DegradationConfig = DegradationConfig(), p_video: float = 0.0) -> None:
        """p_video: share of pairs degraded like a crop of H.264 footage instead of by
        :func:`mixed_degrade` (see the module doc)."""
        if len(sources) != len(weights) or not sources:
            raise ValueError("one weight per source, at least one source")
        if not 0.0 <= p_video <= 1.0:
            raise ValueError("p_video must be in [0, 1]")
        self.sources = list(sources)
        w = np.asarray(weights, float)
        self.p = w / w.sum()
        self.scale, self.hr_w, self.cfg = scale, hr_w, degradation
        self.p_video = p_video
        self.hr_h = HR_HEIGHT - HR_HEIGHT % scale

    def sample_hr(self, rng: np.random.Generator, full_width: bool = False) -> tuple[np.ndarray, str | None]:
        """One HR patch (hr_h, hr_w or the crop's width when ``full_width``, 3) uint8 and its text."""
        src = self.sources[int(rng.choice(len(self.sources), p=self.p))]
        s = src.sample(rng)
        hr, text = s.hr, s.text
        if rng.random() < 0.5:
            hr = _jitter_height(hr, rng)
        hr = hr[: self.hr_h]
        if hr.shape[1] < self.hr_w:
            hr = cv2.copyMakeBorder(hr, 0, 0, 0, self.hr_w - hr.shape[1], cv2.BORDER_REPLICATE)
        if not full_width:
            if hr.shape[1] > self.hr_w:
                text = None  # a part of the plate: its text is unknown
                x0 = int(rng.integers(0, (hr.shape[1] - self.hr_w) // self.scale + 1)) * self.scale
                hr = hr[:, x0:x0 + self.hr_w]
            if text is None and rng.random() < 0.5:
                hr = hr[:, ::-1]
        if rng.random() < 0.5:  # brightness / contrast jitter
            hr = np.clip(hr.astype(np.float32) * float(rng.uniform(0.8, 1.2)) + float(rng.uniform(-20, 20)), 0, 255)
            hr = hr.astype(np.uint8)
        return np.ascontiguousarray(hr[:, : hr.shape[1] - hr.shape[1] % self.scale]), text

    def batch(self, rng: np.random.Generator, n: int) -> Batch:
        """n patches of the same size (hr_h × hr_w)."""
        hrs, lrs, texts = [], [], []
        for _ in range(n):
            hr, text = self.sample_hr(rng)
            if self.p_video and rng.random() < self.p_video:
                from train.video_degradation import video_sequence

                crops, hr = video_sequence(hr, 1, self.scale, rng)
                lrs.append(crops[-1])
            else:
                lrs.append(mixed_degrade(hr, self.scale, rng, self.cfg))
            hrs.append(hr)
            texts.append(text)
        return Batch(to_tensor(lrs), to_tensor(hrs), texts)
