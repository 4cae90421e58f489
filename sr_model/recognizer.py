"""Plate-text recognizer (CRNN + CTC): a text-aware perceptual loss for the SR generator.

No pretrained VGG can be downloaded here, so the GAN generator's perceptual loss uses this
recognizer instead (the LPSRGAN / Nascimento et al. route): feature matching on its CNN maps
(:meth:`PlateRecognizer.features`) plus its CTC loss on the SR output against the true text.

Model: a plain ``nn.Module`` (no training logic). Input (N, 3, H, W) float RGB in [0, 1], any
H and W: resized inside (differentiably, bilinear) to the config's (height, width), centred
(x - 0.5), then a conv-BN-ReLU stack pools the height to 1 and keeps width / 4 time steps, two
1-D convolutions along the width (or a BiLSTM) read the sequence and a linear head gives
per-step class scores.
Output: log-probabilities (T, N, C), C = 1 + len(charset), class 0 = CTC blank, class i + 1 =
``charset[i]``: the layout :func:`torch.nn.functional.ctc_loss` expects.

Text is compared after :func:`normalise_text` (upper case, letters and decimal digits only),
the same rule as ``stream.reads.normalise_plate``.

Weights are safetensors (never pickle) with string metadata ``config`` (architecture JSON,
charset included) and ``info`` (training data, measured accuracies): see :func:`save_recognizer`.
"""
from __future__ import annotations

import string
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from sr_model.weights import read_config_info, write_model_file
from sr_model.charset import PROVINCES

#: Every character the recognizer can output: digits, Latin upper case (all 26: real plates
#: use I, O and Q even though the synthetic Latin plates do not) and the Chinese province
#: characters (:mod:`sr_model.charset`, CCPD blue plates).
DEFAULT_CHARSET: str = string.digits + string.ascii_uppercase + PROVINCES
DEFAULT_RECOGNIZER_WEIGHTS = Path(__file__).parent / "weights" / "plate_crnn.safetensors"


class RecognizerWeightsError(ValueError):
    """A recognizer weights file is missing, unreadable, or does not fit the architecture it names."""


def normalise_text(text: str) -> str:
    """Upper-cased ``text`` keeping only letters and decimal digits (as ``stream.reads.normalise_plate``)."""
    return "".join(c for c in text.upper()
                   if unicodedata.category(c)[0] == "L" or unicodedata.category(c) == "Nd")


@dataclass(frozen=True)
class RecognizerConfig:
    """Architecture hyper-parameters; stored in the weights file so loading rebuilds the model.

    charset: the output characters; class 0 is the CTC blank and ``charset[i]`` is class i + 1.
    height, width: px, the fixed size every input is resized to (height must be a multiple of 8
        and >= 16, width a multiple of 4): T = width // 4 time steps.
    channels: base conv width; the four conv stages use (1, 2, 3, 4) x channels.
    sequence: how the per-column CNN features are read along the width before the CTC head:
        ``"conv"`` (two 1-D conv-BN-ReLU layers, kernel 3, 4 x channels wide: converges much faster
        from scratch) or ``"lstm"`` (a BiLSTM with ``hidden`` units per direction).
    hidden: BiLSTM hidden size per direction (``sequence="lstm"`` only).
    dropout: dropout before the CTC head (training only).
    """

    charset: str = DEFAULT_CHARSET
    height: int = 32
    width: int = 128
    channels: int = 32
    sequence: str = "conv"
    hidden: int = 64
    dropout: float = 0.1
    arch: str = field(default="crnn")

    def __post_init__(self) -> None:
        if self.arch != "crnn":
            raise ValueError(f"unknown recognizer arch {self.arch!r}; expected 'crnn'")
        if not self.charset or len(set(self.charset)) != len(self.charset):
            raise ValueError("charset must be non-empty without repeated characters")
        if self.height < 16 or self.height % 8:
            raise ValueError(f"height must be a multiple of 8 and >= 16, got {self.height}")
        if self.width < 8 or self.width % 4:
            raise ValueError(f"width must be a multiple of 4 and >= 8, got {self.width}")
        if self.channels < 1 or self.hidden < 1:
            raise ValueError("channels and hidden must be >= 1")
        if self.sequence not in ("conv", "lstm"):
            raise ValueError(f"sequence must be 'conv' or 'lstm', got {self.sequence!r}")

    @property
    def num_classes(self) -> int:
        """C: charset characters + the CTC blank."""
        return len(self.charset) + 1

    @property
    def time_steps(self) -> int:
        """T: output sequence length (width // 4)."""
        return self.width // 4

    def to_dict(self) -> dict:
        return asdict(self)


def _cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlateRecognizer(nn.Module):
    """CRNN plate reader. See the module doc for shapes; build from a :class:`RecognizerConfig`."""

    def __init__(self, config: RecognizerConfig = RecognizerConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        # Stage outputs at input 32 x 128: (c, 16, 64), (2c, 8, 32), (3c, 4, 32), (4c, 1, 32).
        self.stage1 = nn.Sequential(_cbr(3, c), nn.MaxPool2d(2))
        self.stage2 = nn.Sequential(_cbr(c, 2 * c), nn.MaxPool2d(2))
        self.stage3 = nn.Sequential(_cbr(2 * c, 3 * c), nn.MaxPool2d((2, 1)))
        self.stage4 = nn.Sequential(_cbr(3 * c, 4 * c), nn.AdaptiveAvgPool2d((1, None)))
        if config.sequence == "lstm":
            self.sequence = nn.LSTM(4 * c, config.hidden, batch_first=False, bidirectional=True)
            width = 2 * config.hidden
        else:
            self.sequence = nn.Sequential(
                nn.Conv1d(4 * c, 4 * c, 3, padding=1, bias=False), nn.BatchNorm1d(4 * c), nn.ReLU(inplace=True),
                nn.Conv1d(4 * c, 4 * c, 3, padding=1, bias=False), nn.BatchNorm1d(4 * c), nn.ReLU(inplace=True))
            width = 4 * c
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(width, config.num_classes)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W), got shape {tuple(x.shape)}")
        if x.shape[-2:] != (self.config.height, self.config.width):
            x = F.interpolate(x, size=(self.config.height, self.config.width), mode="bilinear",
                              align_corners=False, antialias=False)
        return x - 0.5

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.stage1(self._prepare(x))
        f2 = self.stage2(f1)
        f3 = self.stage3(f2)
        f4 = self.stage4(f3)
        return [f1, f2, f3, f4]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """CNN feature maps for a feature-matching loss, same preprocessing as :meth:`forward`.

        x: (N, 3, H, W) float RGB in [0, 1]. Returns the 3 stage outputs (conv-BN-ReLU then
        max-pool; sizes for the default 32 x 128 input): (N, c, 16, 64), (N, 2c, 8, 32),
        (N, 3c, 4, 32), c = ``config.channels``. For a loss, put the model in eval mode (fixed
        BN statistics) and freeze its parameters; gradients still flow to ``x``.
        """
        return self._stages(x)[:3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) float RGB in [0, 1] -> log-probabilities (T, N, C), T = width // 4."""
        cols = self._stages(x)[-1].squeeze(2)  # (N, 4c, T)
        if self.config.sequence == "lstm":
            seq = self.sequence(cols.permute(2, 0, 1))[0]  # (T, N, 2 * hidden)
        else:
            seq = self.sequence(cols).permute(2, 0, 1)  # (T, N, 4c)
        return F.log_softmax(self.head(self.dropout(seq)), dim=-1)


def build_recognizer(config: RecognizerConfig | dict) -> PlateRecognizer:
    """Build a recognizer from its config (a :class:`RecognizerConfig` or its dict form)."""
    if isinstance(config, dict):
        config = RecognizerConfig(**config)
    return PlateRecognizer(config)


# --------------------------------------------------------------------------- text <-> targets
def encode_texts(texts: list[str], charset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets for ``F.ctc_loss``: (targets (sum of lengths,) int64 concatenated, lengths (N,) int64).

    Each text is normalised first (:func:`normalise_text`); ``charset[i]`` becomes class i + 1.
    Raises ValueError naming the character when one is not in ``charset``, or when a text is
    empty after normalisation.
    """
    index = {ch: i + 1 for i, ch in enumerate(charset)}
    targets: list[int] = []
    lengths: list[int] = []
    for text in texts:
        norm = normalise_text(text)
        if not norm:
            raise ValueError(f"plate text {text!r} has no letters or digits")
        for ch in norm:
            if ch not in index:
                raise ValueError(f"character {ch!r} of plate text {text!r} is not in the recognizer charset")
            targets.append(index[ch])
        lengths.append(len(norm))
    return torch.tensor(targets, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)


def decode_greedy(log_probs: torch.Tensor, charset: str) -> list[str]:
    """Best-path CTC decoding: argmax per step, collapse repeats, drop blanks.

    log_probs: (T, N, C) scores (log-probabilities or logits), C = 1 + len(charset).
    Returns N strings.
    """
    if log_probs.ndim != 3 or log_probs.shape[2] != len(charset) + 1:
        raise ValueError(f"expected log-probabilities (T, N, {len(charset) + 1}), got shape {tuple(log_probs.shape)}")
    best = log_probs.detach().argmax(dim=2).T.cpu()  # (N, T)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != 0
    return ["".join(charset[int(k) - 1] for k in row[m]) for row, m in zip(best, keep)]


# --------------------------------------------------------------------------- weights I/O
def save_recognizer(model: PlateRecognizer, path: str | Path, info: dict | None = None) -> Path:
    """Write ``model``'s tensors (float32) to ``path`` (.safetensors) with its config and ``info`` as metadata."""
    return write_model_file(model.state_dict(), path, model.config.to_dict(), info)


def read_recognizer_metadata(path: str | Path) -> tuple[dict, dict]:
    """(config, info) stored in a recognizer weights file."""
    return read_config_info(path, "recognizer", RecognizerWeightsError)


def load_recognizer(path: str | Path = DEFAULT_RECOGNIZER_WEIGHTS,
                    device: str | torch.device = "cpu") -> PlateRecognizer:
    """Rebuild the recognizer a weights file describes and load its tensors.

    Returns the model in eval mode on ``device``; its training ``info`` is in ``model.info``.
    Raises :class:`RecognizerWeightsError` (a ValueError) with a one-line message when the file
    is missing, not safetensors, or its tensors do not fit the architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise RecognizerWeightsError(f"recognizer weights not found: {path}")
    config, info = read_recognizer_metadata(path)
    try:
        model = build_recognizer(config)
    except (TypeError, ValueError) as exc:
        raise RecognizerWeightsError(f"{path} names an unusable recognizer config: {exc}") from None
    try:
        model.load_state_dict(load_file(str(path)), strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise RecognizerWeightsError(f"{path} does not fit a {config.get('arch')} recognizer: {first}") from None
    model.info = info
    return model.eval().to(device)
