"""Patch discriminator for GAN fine-tuning of the generator (a plain ``nn.Module``, no training logic).

VGG-style: strided conv stages with spectral normalisation (stabilises the relativistic GAN
without batch-norm statistics), ending in a 1-channel conv, so the output is a map of raw logits,
one per receptive-field patch: input (N, 3, H, W) RGB in [0, 1] → (N, 1, H / 2^k, W / 2^k) with
k = ``n_down`` (H and W need not be multiples: the map is floor-sized).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass(frozen=True)
class DiscriminatorConfig:
    """channels: width of the first stage (doubled per stage, capped at 8×); n_down: ×2 reductions."""

    channels: int = 32
    n_down: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


class PatchDiscriminator(nn.Module):
    """conv(3→c) → n_down × [conv stride 2 → LeakyReLU → conv → LeakyReLU] → conv(→1): raw logits."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        cin = c
        for i in range(config.n_down):
            cout = min(c * 2 ** (i + 1), c * 8)
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True),
                       spectral_norm(nn.Conv2d(cout, cout, 3, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) in [0, 1] → logits (N, 1, H // 2^n_down, W // 2^n_down)."""
        return self.net(x * 2 - 1)
