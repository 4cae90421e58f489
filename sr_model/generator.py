"""Plate super-resolution generators (plain ``nn.Module``s, no training logic).

Input: (N, 3, h, w) float RGB in [0, 1]. Output: (N, 3, h*scale, w*scale) float, not clamped.
Residual blocks follow EDSR (no batch norm: it hurts SR and makes batch size matter at
inference). Both architectures predict a residual on top of a bilinear upscale, which makes
them converge fast and keeps colours right even when undertrained.

Architectures (``GeneratorConfig.arch``, built by :func:`build_generator`):

* ``"srresnet"``: SRResNet upsampling, sub-pixel convolution (PixelShuffle) in steps of ×2, each
  step a conv at the growing resolution (×2 and ×4 only). Over half its compute is in those
  convs at 2× and 4× the input resolution. Kept so older weight files still load.
* ``"espcn_res"``: every conv at the input (LR) resolution, then one conv to 3·s² channels and a
  single PixelShuffle(s) (the ESPCN tail): ×2, ×3 and ×4; about 2.4× fewer multiply-adds
  per pixel than ``srresnet`` at the same width and depth.
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


class EspcnResNet(nn.Module):
    """×2 / ×3 / ×4 generator whose convs all run at the LR resolution.

    head conv (3→c) → ``n_blocks`` residual blocks → conv (c→c) with a long skip → LeakyReLU →
    conv (c→3·s²) → PixelShuffle(s), added to a bilinear ×s upscale of the input.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        if config.scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {config.scale}")
        self.config = config
        c, s = config.channels, config.scale
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(c) for _ in range(config.n_blocks)])
        self.body_tail = nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        self.tail = nn.Conv2d(c, 3 * s * s, 3, padding=1)
        self.shuffle = nn.PixelShuffle(s)
        # A zero-initialised tail makes the untrained network exactly the bilinear upscale.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, h, w) RGB in [0, 1] → (N, 3, h·s, w·s), not clamped."""
        base = F.interpolate(x, scale_factor=self.config.scale, mode="bilinear", align_corners=False)
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        return base + self.shuffle(self.tail(self.act(feat)))


GENERATORS: dict[str, type[nn.Module]] = {"srresnet": SRResNet, "espcn_res": EspcnResNet}


def build_generator(config: GeneratorConfig | dict) -> nn.Module:
    """Build a generator from its config (a ``GeneratorConfig`` or its dict form); the registry
    is :data:`GENERATORS`."""
    if isinstance(config, dict):
        config = GeneratorConfig(**config)
    if config.arch not in GENERATORS:
        raise ValueError(f"unknown generator arch {config.arch!r}; known: {sorted(GENERATORS)}")
    return GENERATORS[config.arch](config)
