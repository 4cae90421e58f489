"""Losses for generator training (no training loop here).

* :func:`relativistic_d_loss` / :func:`relativistic_g_loss`: the relativistic average GAN of
  ESRGAN (Wang et al. 2018): D_Ra(a, b) = σ(C(a) − E[C(b)]); the discriminator learns that real
  images are "more real than the average fake", the generator the opposite, so the generator
  gets gradients from real images too. Logits of any shape (patch maps), the mean is over all
  of a batch's patches.
* :class:`TextPerceptualLoss`: a frozen plate-text recognizer (CRNN + CTC, ``sr_model.recognizer``)
  as a text-aware perceptual loss: L1 between its intermediate features of SR and HR, and the
  CTC loss of SR against the plate's true text.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def relativistic_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss, a scalar: BCE(C(real) − E[C(fake)], 1) + BCE(C(fake) − E[C(real)], 0), halved.
    Pass ``fake_logits`` computed from detached generator outputs."""
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    return 0.5 * (F.binary_cross_entropy_with_logits(real_rel, torch.ones_like(real_rel))
                  + F.binary_cross_entropy_with_logits(fake_rel, torch.zeros_like(fake_rel)))


def relativistic_g_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss, a scalar: the discriminator's targets swapped (real → 0, fake → 1), halved.
    ``real_logits`` may be detached; gradients flow through ``fake_logits``."""
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    return 0.5 * (F.binary_cross_entropy_with_logits(real_rel, torch.zeros_like(real_rel))
                  + F.binary_cross_entropy_with_logits(fake_rel, torch.ones_like(fake_rel)))


class TextPerceptualLoss(nn.Module):
    """Feature matching + CTC through a frozen recognizer.

    recognizer: an ``nn.Module`` with ``features(x) -> list[Tensor]`` and ``forward(x) -> (T, N, C)``
    log-probabilities (blank = 0), x (N, 3, H, W) RGB in [0, 1]; charset: its characters (class i+1
    is ``charset[i]``). ``forward(sr, hr, texts)`` returns (feature_loss, ctc_loss), scalars; the
    CTC term averages over samples whose text is known and fully in the charset (0 if none).
    """

    def __init__(self, recognizer: nn.Module, charset: str, feature_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.recognizer = recognizer.eval()
        for p in self.recognizer.parameters():
            p.requires_grad_(False)
        self.charset = charset
        self.index = {c: i + 1 for i, c in enumerate(charset)}
        self.feature_weights = feature_weights

    def train(self, mode: bool = True) -> "TextPerceptualLoss":  # the recognizer stays in eval mode
        super().train(mode)
        self.recognizer.eval()
        return self

    def encode(self, texts: Sequence[str | None]) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(kept sample indices, flat targets, lengths) for texts that are non-empty and in the charset."""
        keep, flat, lengths = [], [], []
        for i, t in enumerate(texts):
            if t and all(c in self.index for c in t):
                keep.append(i)
                flat += [self.index[c] for c in t]
                lengths.append(len(t))
        return keep, torch.tensor(flat, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, texts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        sr = sr.clamp(0, 1)
        with torch.no_grad():
            hr_feats = self.recognizer.features(hr)
        sr_feats = self.recognizer.features(sr)
        w = self.feature_weights or [1.0] * len(sr_feats)
        feat = sum(wi * F.l1_loss(a, b) for wi, a, b in zip(w, sr_feats, hr_feats)) / max(1e-8, sum(w))
        keep, targets, lengths = self.encode(texts)
        if not keep:
            return feat, sr.new_zeros(())
        logp = self.recognizer(sr[keep])  # (T, n, C)
        T = logp.shape[0]
        ok = lengths <= T
        if not bool(ok.all()):  # a text longer than the sequence cannot be aligned: drop it
            idx = [k for k, good in zip(range(len(keep)), ok.tolist()) if good]
            if not idx:
                return feat, sr.new_zeros(())
            starts = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), lengths]), 0)
            targets = torch.cat([targets[starts[i]:starts[i + 1]] for i in idx])
            logp, lengths = logp[:, idx], lengths[idx]
        in_lengths = torch.full((logp.shape[1],), T, dtype=torch.long)
        ctc = F.ctc_loss(logp.float(), targets, in_lengths, lengths, blank=0, reduction="mean", zero_infinity=True)
        return feat, ctc
