"""Multi-frame super-resolution of a track's plate crops: align, fuse, decode once.

    >>> enh = FusionEnhancer()                    # shipped sr_model/weights/fusion_x4.safetensors
    >>> fused = enh.enhance([track_crops])[0]     # track_crops: oldest first, the LAST is the reference
    >>> fused.image.shape                         # (h * 4, w * 4, 3) uint8 BGR, h, w = reference size
    >>> fused.frames_used, fused.frames_dropped

Pipeline per track (the last ``k`` crops):

1. every crop is resized to the reference's size (area-shrunk first when taller than
   ``max_input_height``, like :class:`sr_model.enhancer.PlateEnhancer`);
2. :func:`sr_model.align.align_sequence`: ECC (affine by default; on grey crops at the scale the
   weights record, native size for the shipped model) to the reference at sub-pixel precision,
   each crop warped onto the reference grid; crops whose ECC
   correlation is under ``min_ecc`` or that fail to converge are *dropped* (masked out of the
   fusion, never averaged in);
3. :class:`MultiFrameSR`: a shared per-frame encoder (all K frames in one call), per-pixel
   softmax attention over the kept frames (score from [reference feature, frame feature]), the
   attention-weighted mean of the frame features, one decoder (residual blocks + an upsampler)
   predicting a residual on a bilinear upscale of the reference. Upsamplers: ``"espcn"`` (one
   conv to 3·s² channels at the LR resolution + PixelShuffle(s), as the single-frame
   generator; the shipped model) or ``"progressive"`` (conv + PixelShuffle(2) steps, most of the
   compute at 2× and 4× the LR resolution; ``fusion_x4_v1`` and older files).

Cost (issue #7: at most 2× the single-frame generator per output): the shipped network (v3) is a
decoder like the single-frame generator's but shallower (c 32, 2 residual blocks, ESPCN tail) plus
a one-conv per-frame encoder and a 4-channel attention scorer; on the CPU its decoder runs as an
int8 ONNX Runtime graph (:func:`int8_decoder`, like the single-frame generator's default) and the
alignment is affine ECC on native-size crops. With alignment it measures 1.5-1.7× the single-frame
int8 generator per output on CPU (benchmarks/results/fusion/cost.md). The front end runs
channels-last in torch.

When every kept frame equals the reference, the attention-weighted mean *is* the reference
feature (the weights sum to 1), so the output equals the model run on the reference alone
(K = 1) up to float rounding: fusion never does worse than its own single-frame path because of
the fusion arithmetic itself.
"""
from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from sr_model.align import DEFAULT_MIN_ECC, align_sequence
from sr_model.backends import (INT8_RECIPE, BackendUnavailable, default_cache_dir, model_key, ort_session,
                               quantize_int8)
from tracker.weights_file import shape_batches

DEFAULT_FUSION_WEIGHTS = Path(__file__).parent / "weights" / "fusion_x4.safetensors"


# --------------------------------------------------------------------------- model
@dataclass(frozen=True)
class FusionNetConfig:
    """Architecture hyper-parameters; stored in the weights file so loading rebuilds the model.

    channels: feature width; enc_blocks / dec_blocks: residual blocks in the per-frame encoder /
    the decoder; att_channels: hidden width of the attention scorer.
    """

    arch: str = "fusion_attn"
    scale: int = 4
    channels: int = 32
    enc_blocks: int = 1
    dec_blocks: int = 4
    att_channels: int = 16
    upsampler: str = "progressive"  # "progressive": (conv c->4c, PixelShuffle(2)) x log2(scale), then a conv;
    #                                  "espcn": one conv c -> 3*scale^2 and PixelShuffle(scale) (far cheaper)

    def to_dict(self) -> dict:
        return asdict(self)


class _ResBlock(nn.Module):
    """conv-ReLU-conv with an identity skip (EDSR style, no batch norm)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


class MultiFrameSR(nn.Module):
    """K aligned LR frames in, one ×scale image out.

    forward(frames, valid):
        frames: (N, K, 3, h, w) float RGB in [0, 1], already warped onto the reference grid;
            frames[:, -1] is the reference.
        valid: (N, K) bool, False for frames to ignore (dropped or padding); the reference
            must be valid. None = all valid.
        returns (N, 3, h*scale, w*scale) float, not clamped.
    """

    def __init__(self, config: FusionNetConfig = FusionNetConfig()) -> None:
        super().__init__()
        if config.scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {config.scale}")
        self.config = config
        c = config.channels
        self.encoder = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                                     *[_ResBlock(c) for _ in range(config.enc_blocks)])
        a = config.att_channels
        self.attention = nn.Sequential(nn.Conv2d(2 * c, a, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                                       nn.Conv2d(a, 1, 3, padding=1))
        self.merge = nn.Conv2d(2 * c, c, 1)  # [fused, reference] features -> c
        self.body = nn.Sequential(*[_ResBlock(c) for _ in range(config.dec_blocks)])
        self.body_tail = nn.Conv2d(c, c, 3, padding=1)
        if config.upsampler == "progressive":
            ups: list[nn.Module] = []
            for _ in range(config.scale.bit_length() - 1):  # log2(scale) steps of ×2
                ups += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.LeakyReLU(0.1, inplace=True)]
            self.upsample = nn.Sequential(*ups)
            self.tail: nn.Module = nn.Conv2d(c, 3, 3, padding=1)
        elif config.upsampler == "espcn":
            # As sr_model.generator.EspcnResNet: LeakyReLU, one conv c -> 3 s^2 at the LR resolution,
            # PixelShuffle(s). Zero-initialised, so the untrained model is the bilinear upscale.
            self.upsample = nn.Sequential(nn.LeakyReLU(0.1), nn.Conv2d(c, 3 * config.scale ** 2, 3, padding=1))
            nn.init.zeros_(self.upsample[1].weight)
            nn.init.zeros_(self.upsample[1].bias)
            self.tail = nn.PixelShuffle(config.scale)
        else:
            raise ValueError(f"unknown upsampler {config.upsampler!r}")

    @property
    def scale(self) -> int:
        return self.config.scale

    def fuse(self, frames: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(fused features (N, C, h, w), attention weights (N, K, h, w) summing to 1 over K).

        The K frames go through the shared encoder in one call. The scorer's first conv sees
        [reference feature, frame feature]; being linear, it is computed as conv_ref(reference) once
        per track plus conv_frame(frame) per frame (the same weights split in two), which halves its
        cost and never builds the (N·K, 2C, h, w) pair tensor."""
        n, k, _, h, w = frames.shape
        x = frames.reshape(n * k, 3, h, w)
        if frames.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        feats = self.encoder(x)
        c = feats.shape[1]
        ref = feats.reshape(n, k, c, h, w)[:, -1]
        first, act, last = self.attention[0], self.attention[1], self.attention[2]
        ref_term = F.conv2d(ref, first.weight[:, :c], first.bias, padding=first.padding)
        frame_term = F.conv2d(feats, first.weight[:, c:], None, padding=first.padding)
        hidden = act(frame_term.reshape(n, k, -1, h, w).add_(ref_term.unsqueeze(1)).reshape(n * k, -1, h, w))
        scores = last(hidden).reshape(n, k, h, w)
        if valid is not None:
            scores = scores.masked_fill(~valid.to(torch.bool).reshape(n, k, 1, 1), float("-inf"))
        weights = torch.softmax(scores, dim=1)
        per_frame = feats.reshape(n, k, c, h, w)
        fused = per_frame[:, 0] * weights[:, 0:1]  # a loop of K multiply-adds: ~4x faster than a broadcast
        for i in range(1, k):  # product + sum over K on channels-last features
            fused = fused.addcmul(per_frame[:, i], weights[:, i: i + 1]) if torch.is_grad_enabled() \
                else fused.addcmul_(per_frame[:, i], weights[:, i: i + 1])
        return self.merge(torch.cat([fused, ref], dim=1)), weights

    def decode(self, feat: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """The decoder: fused features (N, C, h, w) and the reference frame (N, 3, h, w) RGB in
        [0, 1] → (N, 3, h*scale, w*scale), a residual on the bilinear upscale of the reference."""
        base = F.interpolate(reference, scale_factor=self.config.scale, mode="bilinear", align_corners=False)
        feat = feat + self.body_tail(self.body(feat))
        return base + self.tail(self.upsample(feat))

    def forward(self, frames: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        ref = frames[:, -1]
        if frames.device.type == "cpu":  # channels-last all through: the upscale, shuffle and sum run ~20 % faster
            ref = ref.contiguous(memory_format=torch.channels_last)
        feat, _ = self.fuse(frames, valid)
        return self.decode(feat, ref)


def build_fusion_model(config: FusionNetConfig | dict) -> MultiFrameSR:
    """Build the model from its config (a ``FusionNetConfig`` or its dict form)."""
    if isinstance(config, dict):
        config = FusionNetConfig(**config)
    if config.arch != "fusion_attn":
        raise ValueError(f"unknown fusion arch {config.arch!r}")
    return MultiFrameSR(config)


# --------------------------------------------------------------------------- weights I/O
class FusionWeightsError(ValueError):
    """A fusion weights file is missing, unreadable, or does not fit the architecture it names."""


def save_fusion(model: MultiFrameSR, path: str | Path, info: dict | None = None,
                extra_tensors: dict[str, torch.Tensor] | None = None, extra_meta: dict[str, str] | None = None) -> Path:
    """Write the model's weights, config (JSON) and ``info`` (JSON) to ``path`` (.safetensors).

    extra_tensors / extra_meta: additional entries (training checkpoints store optimizer state
    there); the loader ignores tensors whose names do not start with ``model.``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"model.{k}": v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    state.update({k: v.detach().cpu().contiguous() for k, v in (extra_tensors or {}).items()})
    meta = {"config": json.dumps(model.config.to_dict()), "info": json.dumps(info or {}), **(extra_meta or {})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.chmod(0o644)
    tmp.replace(path)  # never a half-written weights file
    return path


def read_fusion_metadata(path: str | Path) -> dict[str, str]:
    """The raw string metadata of a fusion weights file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise FusionWeightsError(f"cannot read fusion weights {path}: {exc}") from None


def load_fusion(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[MultiFrameSR, dict]:
    """Rebuild the model a weights file describes and load its tensors; returns (model in eval mode, info)."""
    path = Path(path) if path is not None else DEFAULT_FUSION_WEIGHTS
    if not path.is_file():
        raise FusionWeightsError(f"fusion weights not found: {path}")
    meta = read_fusion_metadata(path)
    if "config" not in meta:
        raise FusionWeightsError(f"{path} has no fusion config in its metadata")
    try:
        model = build_fusion_model(json.loads(meta["config"]))
    except (TypeError, ValueError) as exc:
        raise FusionWeightsError(f"{path} names an unusable fusion config: {exc}") from None
    try:
        tensors = load_file(str(path))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise FusionWeightsError(f"{path} does not fit a fusion model: {first}") from None
    return model.eval().to(device), json.loads(meta.get("info", "{}"))


# --------------------------------------------------------------------------- inference
@dataclass(frozen=True)
class FusionConfig:
    """k: crops per track fused (the last k); device: torch device; batch_size: tracks per forward
    pass; min_ecc: ECC correlation under which a crop is dropped; max_input_height: px, taller
    crops are area-shrunk to it first (as in ``PlateEnhancer``); motion: ECC motion model
    (``"translation"`` / ``"affine"``), None = the one the weights were trained with (their info);
    upsample: ECC runs on crops enlarged this many times, None = as the weights were trained;
    precision: ``"int8"`` runs the decoder as an int8 ONNX Runtime graph (CPU only), ``"fp32"``
    the eager model, ``"auto"`` int8 on the CPU where onnxruntime is installed; cache_dir: where
    the int8 graph is kept (default: the back ends' engine cache).

    Default affine: on real footage (benchmarks/results/fusion/NOTES.md, "Real footage") it took
    v2, trained with translation, from 21 to 29 of 108 voted exact reads (single-frame: 31):
    zooming plates and jittering corners leave crops that a shift cannot align. The shipped v3 was
    trained with affine ECC on native-size crops, which it records."""

    k: int = 5
    device: str = "cpu"
    batch_size: int = 16
    min_ecc: float = DEFAULT_MIN_ECC
    max_input_height: int = 48
    motion: str | None = "affine"
    upsample: int | None = None
    precision: str = "auto"
    cache_dir: Path | None = None


@dataclass
class FusedPlate:
    """One track's fused result.

    image: (h * scale, w * scale, 3) uint8 BGR, (h, w) = the reference crop's (possibly shrunk) size.
    frames_used: crops fused, the reference included; frames_dropped: crops left out (bad alignment).
    """

    image: np.ndarray
    frames_used: int
    frames_dropped: int


def _check(crop: np.ndarray) -> None:
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"crops must be (h, w, 3) uint8 BGR, got {crop.shape} {crop.dtype}")


def shrink_to_height(crop: np.ndarray, max_height: int) -> np.ndarray:
    """``crop`` area-shrunk to ``max_height`` px tall (aspect kept) if taller; else as is."""
    h, w = crop.shape[:2]
    if h <= max_height:
        return crop
    f = max_height / h
    return cv2.resize(crop, (max(1, round(w * f)), max_height), interpolation=cv2.INTER_AREA)


def frames_to_tensor(frames: list[list[np.ndarray]], valid: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch aligned sequences: frames[i] = K_i arrays (h_i, w_i, 3) float32 BGR in [0, 1] (the
    reference last). Sequences are edge-padded to the batch's largest (h, w) and front-padded
    with invalid copies of their reference to the largest K. Returns ((N, K, 3, H, W) float RGB,
    (N, K) bool)."""
    kmax = max(len(f) for f in frames)
    hmax = max(f[-1].shape[0] for f in frames)
    wmax = max(f[-1].shape[1] for f in frames)
    x = np.empty((len(frames), kmax, hmax, wmax, 3), np.float32)
    vs = np.zeros((len(frames), kmax), bool)
    for i, (seq, v) in enumerate(zip(frames, valid)):
        pad = kmax - len(seq)
        h, w = seq[-1].shape[:2]
        for j, f in enumerate([seq[-1]] * pad + list(seq)):
            x[i, j, :h, :w] = f[..., ::-1]  # BGR -> RGB
        if h < hmax:
            x[i, :, h:, :w] = x[i, :, h - 1: h, :w]
        if w < wmax:
            x[i, :, :, w:] = x[i, :, :, w - 1: w]
        vs[i, pad:] = np.asarray(v, bool)
    # (N, K, H, W, 3) memory seen as (N, K, 3, H, W): each frame is already channels-last for the convs
    return torch.from_numpy(x).permute(0, 1, 4, 2, 3), torch.from_numpy(vs)


def _to_bgr8(rgb: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) float RGB (contiguous, overwritten) → uint8 BGR, clamped to [0, 1] × 255 and
    rounded. OpenCV does it in two passes: ~0.3 ms per 128 × 384 output against ~0.9 ms for the
    same four steps as torch ops."""
    n, h, w, _ = rgb.shape
    flat = rgb.reshape(n * h, w, 3)
    np.maximum(flat, 0.0, out=flat)  # convertScaleAbs takes |x|: negatives must be 0 first
    return cv2.cvtColor(cv2.convertScaleAbs(flat, alpha=255.0), cv2.COLOR_RGB2BGR).reshape(n, h, w, 3)


class FusionEnhancer:
    """Aligns and fuses each track's last ``k`` crops into one ×scale plate image (see module doc)."""

    def __init__(self, weights: str | Path | None = None, config: FusionConfig = FusionConfig()) -> None:
        if config.k < 1:
            raise ValueError(f"k must be >= 1, got {config.k}")
        self.config = config
        self.model, self.info = load_fusion(weights, device=config.device)
        if str(config.device).startswith("cpu"):  # channels-last convs: ~1.5x faster on CPU, same outputs
            self.model = self.model.to(memory_format=torch.channels_last)
        self.motion = config.motion or str(self.info.get("alignment", {}).get("motion", "translation"))
        self.upsample = int(config.upsample or self.info.get("alignment", {}).get("upsample", 2))
        self.precision = resolve_precision(config.precision, config.device)
        self._decoder = int8_decoder(self, config.cache_dir) if self.precision == "int8" else None
        #: what runs the network: torch alone, or torch's front end and ONNX Runtime's int8 decoder
        self.backend = "eager+onnx" if self._decoder is not None else "eager"

    @property
    def scale(self) -> int:
        return int(self.model.scale)

    def align(self, sequence: list[np.ndarray]):
        """The last ``k`` crops of one track, shrunk, resized to the reference and aligned
        (an :class:`sr_model.align.AlignedSequence`)."""
        if not sequence:
            raise ValueError("every sequence needs at least one crop (the reference)")
        crops = list(sequence)[-self.config.k:]
        for c in crops:
            _check(c)
        crops = [shrink_to_height(c, self.config.max_input_height) for c in crops]
        return align_sequence(crops, self.motion, self.upsample, self.config.min_ecc)

    @torch.inference_mode()
    def _run(self, aligned: list) -> list[np.ndarray]:
        x, v = frames_to_tensor([a.frames for a in aligned], [a.valid for a in aligned])
        x, v = x.to(self.config.device), v.to(self.config.device)
        if self._decoder is not None:  # fp32 front end in torch, int8 decoder in ONNX Runtime (CPU)
            feat, _ = self.model.fuse(x, v)
            y = self._decoder.run(None, {"feat": feat.contiguous().numpy(), "ref": x[:, -1].contiguous().numpy()})[0]
            y = _to_bgr8(np.ascontiguousarray(y.transpose(0, 2, 3, 1)))
        else:
            y = self.model(x, v)
            if y.device.type == "cpu":  # channels-last output: (N, H, W, 3) is a free view
                y = _to_bgr8(np.ascontiguousarray(y.permute(0, 2, 3, 1).numpy()))
            else:  # on the device: one (N, H, W, 3) uint8 array comes back
                y = y.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).flip(-1).cpu().numpy()
        s = self.scale
        return [np.ascontiguousarray(y[i, : a.frames[-1].shape[0] * s, : a.frames[-1].shape[1] * s])
                for i, a in enumerate(aligned)]

    def enhance(self, sequences: list[list[np.ndarray]]) -> list[FusedPlate]:
        """One :class:`FusedPlate` per sequence (one track's crops, (h_i, w_i, 3) uint8 BGR, oldest
        first, the last is the reference), in order."""
        aligned = [self.align(seq) for seq in sequences]
        # Only sequences of one shape (reference size, number of crops) share a forward pass: none
        # is padded to a neighbour's size, so a track's fused image does not depend on the others.
        shapes = [(*a.frames[-1].shape[:2], len(a.frames)) for a in aligned]
        out: list[FusedPlate | None] = [None] * len(aligned)
        for idx in shape_batches(shapes, self.config.batch_size):
            for i, img in zip(idx, self._run([aligned[i] for i in idx])):
                out[i] = FusedPlate(img, aligned[i].n_used, aligned[i].n_dropped)
        return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- int8 decoder (CPU)
#: Bumped whenever the decoder's int8 recipe or calibration sequences change (part of the graph's cache key).
DECODER_INT8_VERSION = "2"  # 2: the first conv quantised too
PRECISIONS = ("auto", "fp32", "int8")


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``"auto"``: int8 decoder on the CPU when onnxruntime is installed, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown fusion precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    cpu = torch.device(device).type == "cpu"
    if precision == "int8" and not cpu:
        raise BackendUnavailable("the int8 fusion decoder is for the CPU; use fp32 on a GPU")
    if precision == "int8" and importlib.util.find_spec("onnxruntime") is None:
        raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime); use fp32")
    if precision == "auto":
        return "int8" if cpu and importlib.util.find_spec("onnxruntime") is not None else "fp32"
    return precision


class _Decoder(nn.Module):
    """``MultiFrameSR.decode`` as a module of its own, for export (NCHW, fp32)."""

    def __init__(self, model: MultiFrameSR) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).to("cpu", torch.float32, memory_format=torch.contiguous_format).eval()

    def forward(self, feat: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.model.decode(feat, ref)


def _calibration_feeds(enhancer: "FusionEnhancer", n_tracks: int = 48, batch: int = 8) -> list[dict[str, np.ndarray]]:
    """The decoder's inputs on plate-like sequences: each :func:`sr_model.calibration.calibration_crops`
    crop as the reference, ``k - 1`` copies shifted by up to ±0.75 px with their own noise before
    it, aligned and fused by the model's own front end."""
    from sr_model.calibration import calibration_crops

    rng = np.random.default_rng(0)
    seqs = []
    for crop in calibration_crops(n_tracks, seed=1):
        h, w = crop.shape[:2]
        seq = []
        for _ in range(enhancer.config.k - 1):
            m = np.float32([[1, 0, rng.uniform(-0.75, 0.75)], [0, 1, rng.uniform(-0.75, 0.75)]])
            moved = cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            seq.append(np.clip(moved + rng.normal(0, 3, moved.shape), 0, 255).astype(np.uint8))
        seqs.append(seq + [crop])
    feeds = []
    with torch.inference_mode():
        for i in range(0, len(seqs), batch):
            aligned = [enhancer.align(s) for s in seqs[i: i + batch]]
            x, v = frames_to_tensor([a.frames for a in aligned], [a.valid for a in aligned])
            feat, _ = enhancer.model.fuse(x, v)
            feeds.append({"feat": feat.contiguous().numpy(), "ref": x[:, -1].contiguous().numpy()})
    return feeds


def int8_decoder(enhancer: "FusionEnhancer", cache_dir: Path | None = None):
    """An ONNX Runtime session on the int8 graph of ``enhancer.model``'s decoder, built on first
    use and cached on disk (keyed by the weights, the recipe and the library versions).

    Why only the decoder: it holds most of the network's convolutions (the single-frame
    generator's shape), and quantising it follows the generator's int8 recipe
    (:func:`sr_model.backends.quantize_int8`: the long skip, the bilinear base and the output
    stage stay fp32; the first conv is int8, as its input is a feature map that the skips carry
    in fp32). Quantising the per-frame encoder and the attention scorer as well put errors of
    mean 4/255 (max 83/255) into the output; and ONNX Runtime runs that fp32 front end slower
    than torch's channels-last convolutions, so it stays in torch."""
    import onnxruntime as ort

    cache_dir = Path(cache_dir or default_cache_dir())
    key = model_key(enhancer.model, "fusion-decoder-int8", INT8_RECIPE, DECODER_INT8_VERSION,
                    str(enhancer.config.k), enhancer.motion, str(enhancer.upsample), torch.__version__, ort.__version__)
    path = cache_dir / f"fusion-decoder-{key}-int8.onnx"
    if not path.exists():
        import tempfile

        cache_dir.mkdir(parents=True, exist_ok=True)
        feeds = _calibration_feeds(enhancer)
        with tempfile.TemporaryDirectory(prefix="le-fusion-") as tmp:
            fp32 = Path(tmp) / "decoder.onnx"
            c = enhancer.model.config.channels
            dyn = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(_Decoder(enhancer.model), (torch.rand(1, c, 16, 48), torch.rand(1, 3, 16, 48)), str(fp32),
                              input_names=["feat", "ref"], output_names=["sr"],
                              dynamic_axes={"feat": dyn, "ref": dyn, "sr": dyn}, opset_version=17, dynamo=False)
            quantize_int8(fp32, path, feeds, input_convs_fp32=False)
    return ort_session(path)
