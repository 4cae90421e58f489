"""Reading the tracker's safetensors weights files (detector, corner refiner) with one-line errors."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open


def read_weights_file(path: Path, what: str, error: type[Exception]) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, tensors) of ``path``; ``error`` ("<what> weights not found: ..." or "cannot read
    <what> weights ...") when it is missing or not a safetensors file. No pickle is ever loaded."""
    if not path.is_file():
        raise error(f"{what} weights not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return meta, load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise error(f"cannot read {what} weights {path}: {exc}") from None
