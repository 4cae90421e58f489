"""Inference back ends for the generator, behind one call: ``runner(x) -> y``.

x: (N, 3, h, w) float32 RGB in [0, 1] on the runner's device; y: (N, 3, h*s, w*s) float32.

| name | what | where |
|---|---|---|
| ``eager`` | the ``nn.Module`` itself; fp32, bf16 or fp16; optional channels_last | everywhere |
| ``compile`` | ``torch.compile`` (inductor), dynamic shapes | everywhere (CPU needs a C++ compiler) |
| ``onnx`` | ONNX Runtime session on an exported graph (CPU or CUDA provider) | everywhere |
| ``tensorrt`` | torch-tensorrt dynamo path, fp16, dynamic batch | NVIDIA GPU with the ``trt`` extra |
| ``auto`` | the fastest exact one for the device (see :func:`resolve_auto`) | |

Exported graphs and engines are cached on disk, keyed by a hash of the weights and config, the
back end, precision, device name and library versions, so a second start loads instead of
rebuilding. TensorRT is imported only when asked for.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "compile", "onnx", "tensorrt")
PRECISIONS = ("fp32", "bf16", "fp16")
Runner = Callable[[torch.Tensor], torch.Tensor]


class BackendUnavailable(RuntimeError):
    """The back end cannot run here; the message says why in one line."""


def default_cache_dir() -> Path:
    root = os.environ.get("LICENSE_ENHANCER_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "license-enhancer"
    return Path(root) / "engines"


def model_key(model: nn.Module, *parts: str) -> str:
    """Stable hash of the weights, the architecture config and ``parts`` (back end, versions...)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps(getattr(model, "config", None).to_dict() if hasattr(model, "config") else {}).encode())
    for p in parts:
        h.update(p.encode())
    return h.hexdigest()[:20]


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def eager_runner(model: nn.Module, device: torch.device, precision: str = "fp32", channels_last: bool = False) -> Runner:
    """The module as it is, optionally in bf16/fp16 and channels_last memory layout."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if dtype == torch.float16 and device.type != "cuda":
        raise BackendUnavailable("fp16 eager needs a CUDA device; use fp32 or bf16 on CPU")
    net = copy.deepcopy(model).to(device=device, dtype=dtype).eval()  # never cast the caller's model
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        net = net.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        return net(x.to(dtype=dtype).contiguous(memory_format=fmt)).float()

    return run


def compile_runner(model: nn.Module, device: torch.device, precision: str = "fp32") -> Runner:
    """torch.compile with dynamic shapes (crops vary in size); compiles on the first call."""
    eager = eager_runner(model, device, precision)
    try:
        compiled = torch.compile(eager, dynamic=True)
    except Exception as exc:  # e.g. no C++ compiler, unsupported Python
        raise BackendUnavailable(f"torch.compile unavailable: {exc}") from None
    return compiled


def onnx_runner(model: nn.Module, device: torch.device, precision: str = "fp32", cache_dir: Path | None = None,
                threads: int | None = None) -> Runner:
    """ONNX Runtime on a graph exported with dynamic batch, height and width."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime)") from None
    if precision != "fp32":
        raise BackendUnavailable("the onnx back end runs fp32 (quantise or use tensorrt for lower precision)")
    cache_dir = Path(cache_dir or default_cache_dir())
    key = model_key(model, "onnx", torch.__version__, ort.__version__)
    path = cache_dir / f"generator-{key}.onnx"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        net = copy.deepcopy(model).to("cpu", torch.float32).eval()
        tmp = path.with_suffix(".tmp.onnx")
        dyn = {0: "batch", 2: "height", 3: "width"}
        torch.onnx.export(net, (torch.rand(1, 3, 16, 48),), str(tmp), input_names=["lr"], output_names=["sr"],
                          dynamic_axes={"lr": dyn, "sr": dyn}, opset_version=17, dynamo=False)
        tmp.replace(path)  # atomic: a killed export never leaves a half file under the final name
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    elif device.type == "cuda":
        raise BackendUnavailable("onnxruntime here has no CUDA provider (install onnxruntime-gpu)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # leave the cores to the other stages
    session = ort.InferenceSession(str(path), opts, providers=providers)

    def run(x: torch.Tensor) -> torch.Tensor:
        y = session.run(None, {"lr": x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(y).to(x.device)

    return run


def tensorrt_runner(model: nn.Module, device: torch.device, precision: str = "fp16", cache_dir: Path | None = None,
                    max_batch: int = 64, max_hw: tuple[int, int] = (64, 256)) -> Runner:
    """torch-tensorrt (dynamo) engine, dynamic batch and size, cached on disk per GPU and version."""
    if device.type != "cuda" or not torch.cuda.is_available():
        raise BackendUnavailable("tensorrt needs an NVIDIA GPU")
    try:
        import torch_tensorrt  # noqa: F401  (optional extra `trt`)
    except ImportError:
        raise BackendUnavailable("torch-tensorrt is not installed (pip install 'license-enhancer[trt]')") from None
    import torch_tensorrt

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    cache_dir = Path(cache_dir or default_cache_dir())
    key = model_key(model, "trt", precision, _device_name(device), torch.__version__, torch_tensorrt.__version__,
                    str(max_batch), str(max_hw))
    path = cache_dir / f"generator-{key}.ep"
    net = copy.deepcopy(model).to(device).eval()
    if path.exists():
        program = torch.export.load(str(path))
        trt_module = program.module()
    else:
        inp = torch_tensorrt.Input(min_shape=(1, 3, 8, 8), opt_shape=(32, 3, 32, 96),
                                   max_shape=(max_batch, 3, *max_hw), dtype=torch.float32)
        trt_module = torch_tensorrt.compile(net, ir="dynamo", inputs=[inp], enabled_precisions={dtype})
        cache_dir.mkdir(parents=True, exist_ok=True)
        torch_tensorrt.save(trt_module, str(path), inputs=[torch.rand(1, 3, 16, 48, device=device)])

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        return trt_module(x.float()).float()

    return run


def resolve_auto(device: torch.device) -> str:
    """auto: TensorRT on an NVIDIA GPU when installed, else compile there; on CPU eager fp32 in
    channels_last layout, measured faster than ONNX Runtime and torch.compile at batch 1 to 32
    (benchmarks/results/throughput). bf16 is faster still on CPUs with bf16 units, but changes
    outputs by up to ~4/255, so it stays an explicit choice (--precision bf16)."""
    if device.type == "cuda":
        try:
            import torch_tensorrt  # noqa: F401

            return "tensorrt"
        except ImportError:
            return "compile"
    return "eager"


def create_runner(model: nn.Module, backend: str = "auto", device: str | torch.device = "cpu", precision: str = "fp32",
                  channels_last: bool = False, cache_dir: Path | None = None) -> tuple[str, Runner]:
    """Build the runner for ``backend``; returns (resolved back-end name, runner)."""
    device = torch.device(device)
    if backend not in BACKENDS:
        raise BackendUnavailable(f"unknown back end {backend!r}; choose from {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise BackendUnavailable(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    name = resolve_auto(device) if backend == "auto" else backend
    if backend == "auto" and name == "eager" and device.type == "cpu":
        channels_last = True
    if name == "eager":
        return name, eager_runner(model, device, precision, channels_last)
    if name == "compile":
        return name, compile_runner(model, device, precision)
    if name == "onnx":
        return name, onnx_runner(model, device, precision, cache_dir)
    return name, tensorrt_runner(model, device, "fp16" if precision == "fp32" and backend == "auto" else precision,
                                 cache_dir)
