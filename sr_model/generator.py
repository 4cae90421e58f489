"""SRResNet-style plate super-resolution generator (a plain ``nn.Module``, no training logic).

Input: (N, 3, h, w) float RGB in [0, 1]. Output: (N, 3, h*scale, w*scale) float, not clamped.
Residual blocks follow EDSR (no batch norm: it hurts SR and makes batch size matter at
inference); upsampling is sub-pixel convolution (PixelShuffle) in steps of 2, as in SRResNet.
The network predicts a residual on top of a bilinear upscale, which makes it converge fast
and keeps colours right even when undertrained.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture hyper-parameters; stored in the weights file so loading rebuilds the model."""

    arch: str = "srresnet"
    scale: int = 4
    channels: int = 32
    n_blocks: int = 6

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualBlock(nn.Module):
    """conv-ReLU-conv with an identity skip, scaled down to keep deep stacks stable."""

    def __init__(self, channels: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x), inplace=True))


class SRResNet(nn.Module):
    """×2 or ×4 generator: head conv, residual body, sub-pixel upsampler, tail conv."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        if config.scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {config.scale}")
        self.config = config
        c = config.channels
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(c) for _ in range(config.n_blocks)])
        self.body_tail = nn.Conv2d(c, c, 3, padding=1)
        ups: list[nn.Module] = []
        for _ in range(config.scale.bit_length() - 1):  # log2(scale) steps of ×2
            ups += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.LeakyReLU(0.1, inplace=True)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(c, 3, 3, padding=1)

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.config.scale, mode="bilinear", align_corners=False)
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        return base + self.tail(self.upsample(feat))


def build_generator(config: GeneratorConfig | dict) -> nn.Module:
    """Build a generator from its config (a ``GeneratorConfig`` or its dict form)."""
    if isinstance(config, dict):
        config = GeneratorConfig(**config)
    if config.arch != "srresnet":
        raise ValueError(f"unknown generator arch {config.arch!r}")
    return SRResNet(config)
