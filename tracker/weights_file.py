"""The tracker's weights files (detector, corner refiner): reading them with one-line errors, and
where their exported ONNX graphs are cached."""
from __future__ import annotations

import os
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


def default_cache_dir() -> Path:
    """Where exported ONNX graphs are cached: $LICENSE_ENHANCER_CACHE or ~/.cache/license-enhancer."""
    root = os.environ.get("LICENSE_ENHANCER_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "license-enhancer"
    return Path(root)


def onnx_available() -> bool:
    """Whether ONNX Runtime can be imported (the CPU inference path of both models)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
