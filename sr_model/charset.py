"""Plate characters shared by the models and the training data.

``PROVINCES``: the one-character province abbreviations that open a Chinese mainland plate (the
CCPD blue plates), in the order the synthetic renderer draws them from. They are part of the
recognizer's output alphabet, so they live with the models; ``train.synth`` renders from them.
"""
from __future__ import annotations

PROVINCES: str = "皖沪京津渝冀晋蒙辽吉黑苏浙闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
