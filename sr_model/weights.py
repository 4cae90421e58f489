"""Safe saving and loading of generator weights (safetensors, never pickle).

A weights file holds the tensors plus string metadata: ``config`` (the architecture as JSON,
so the right model is rebuilt) and free-form ``info`` JSON (training data, steps, figures).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from sr_model.generator import build_generator

WEIGHTS_DIR = Path(__file__).parent / "weights"
#: The shipped ×4 generator (``python -m train.generator``, see its docstring and the file's ``info``).
DEFAULT_WEIGHTS = WEIGHTS_DIR / "plate_sr_l1_x4.safetensors"


class WeightsError(ValueError):
    """A weights file is missing, unreadable, or does not fit the architecture it names."""


def write_model_file(state: dict[str, torch.Tensor], path: str | Path, config: dict, info: dict | None = None) -> Path:
    """Write tensors (floating ones as float32, on the CPU) to ``path`` (.safetensors) with
    ``config`` and ``info`` as JSON metadata: the format every model of ``sr_model`` ships in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    meta = {"config": json.dumps(config, ensure_ascii=False), "info": json.dumps(info or {}, ensure_ascii=False)}
    save_file(state, str(path), metadata=meta)
    return path


def read_config_info(path: str | Path, what: str, error: type[Exception]) -> tuple[dict, dict]:
    """(config, info) from a file written by :func:`write_model_file`; ``error(one line)`` when it
    cannot be read or holds no config (``what`` names the model in the message)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise error(f"cannot read {what} weights {path}: {exc}") from None
    if "config" not in meta:
        raise error(f"{path} has no {what} config in its metadata")
    return json.loads(meta["config"]), json.loads(meta.get("info", "{}"))


def save_generator(model: nn.Module, path: str | Path, info: dict | None = None) -> Path:
    """Write ``model``'s weights and config to ``path`` (.safetensors)."""
    return write_model_file(model.state_dict(), path, model.config.to_dict(), info)


def read_metadata(path: str | Path) -> tuple[dict, dict]:
    """(config, info) stored in a weights file."""
    return read_config_info(path, "generator", WeightsError)


def update_info(path: str | Path, extra: dict) -> Path:
    """Merge ``extra`` into a weights file's ``info`` metadata in place (tensors and config unchanged),
    e.g. to record benchmark figures measured after training."""
    config, info = read_metadata(path)
    state = load_file(str(path))
    save_file(state, str(path), metadata={"config": json.dumps(config), "info": json.dumps({**info, **extra})})
    return Path(path)


def load_generator(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the generator a weights file describes and load its tensors; returns (model, info).

    The model comes back in eval mode on ``device``; ``info`` is the file's metadata plus
    ``sha256`` (first 16 hex digits of the file's hash). Raises ``WeightsError`` with a one-line
    message when the file is missing, not safetensors, or its tensors do not fit the architecture.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise WeightsError(f"generator weights not found: {path}")
    config, info = read_metadata(path)
    try:
        model = build_generator(config)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{path} names an unusable generator config: {exc}") from None
    try:
        state = load_file(str(path))
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{path} does not fit a {config.get('arch')} generator: {first}") from None
    info = {**info, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}
    return model.eval().to(device), info
