"""Inference back ends for the generator, behind one call: ``runner(x) -> y``.

x: (N, 3, h, w) float32 RGB in [0, 1] on the runner's device; y: (N, 3, h*s, w*s) float32.

| name | what | where |
|---|---|---|
| ``eager`` | the ``nn.Module`` itself; fp32, bf16 or fp16; optional channels_last | everywhere |
| ``compile`` | ``torch.compile`` (inductor), dynamic shapes | everywhere (CPU needs a C++ compiler) |
| ``onnx`` | ONNX Runtime session on an exported graph (CPU or CUDA provider); fp32, or int8 | everywhere |
| ``openvino`` | OpenVINO on the same graph, CPU; fp32, or bf16 on CPUs with native bf16 units | CPU |
| ``tensorrt`` | torch-tensorrt dynamo path, fp16, dynamic batch | NVIDIA GPU with the ``trt`` extra |
| ``auto`` | the fastest correct one for the device (see :func:`resolve`) | |

Exported graphs and engines are cached on disk, keyed by a hash of the weights and config, the
back end, precision, device name and library versions, so a second start loads instead of
rebuilding. TensorRT is imported only when asked for.

int8 (``onnx`` only): static quantisation with ONNX Runtime (QDQ, per-channel int8 weights,
uint8 activations whose ranges come from :func:`sr_model.calibration.calibration_crops`). The
network's first convolution and its output stage (the last convolution, the activation before
it, the pixel shuffle and the bilinear base) stay fp32: quantising the first conv's output,
which the long skip carries straight to the output, put errors of up to 40/255 into the
plates; with it in fp32 the shipped ×4 generator stays within mean 0.5/255, p99 2/255 (max
17/255) of fp32 on real plate crops, with the same OCR reads within one plate
(benchmarks/results/legibility_int8), at 1.3-1.5× the fp32 graph's speed on this repository's
2-core AVX2 machine (benchmarks/results/throughput).
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "compile", "onnx", "openvino", "tensorrt")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: Version of the int8 recipe below (part of the cached graph's key).
INT8_RECIPE = "1"
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
    if precision == "int8":
        raise BackendUnavailable("int8 runs on the onnx back end only (--backend onnx --precision int8)")
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


def _export_onnx(model: nn.Module, path: Path) -> None:
    """fp32 graph with dynamic batch, height and width, written atomically to ``path``."""
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    tmp = path.with_suffix(".tmp.onnx")
    dyn = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(net, (torch.rand(1, 3, 16, 48),), str(tmp), input_names=["lr"], output_names=["sr"],
                      dynamic_axes={"lr": dyn, "sr": dyn}, opset_version=17, dynamo=False)
    tmp.replace(path)  # atomic: a killed export never leaves a half file under the final name


def int8_excluded_nodes(graph, input_convs: bool = True) -> list[str]:
    """Names of the nodes :func:`quantize_int8` keeps in fp32: every node reading the network's
    input (first conv, bilinear base) and the output stage, from the graph output back to the
    last convolution and the activation feeding it. ``graph``: an ``onnx.GraphProto``.
    input_convs=False quantises the convolutions that read an input all the same (the fusion
    decoder's: its input is a feature map, carried in fp32 by the skips, not the image)."""
    inputs = {i.name for i in graph.input}
    producer = {out: node for node in graph.node for out in node.output}
    keep = {n.name for n in graph.node if any(i in inputs for i in n.input)
            and (input_convs or n.op_type != "Conv")}
    stack = [o.name for o in graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in keep:
            continue
        keep.add(node.name)
        if node.op_type == "Conv":
            src = producer.get(node.input[0])
            if src is not None and src.op_type != "Conv":
                keep.add(src.name)  # the activation feeding the last conv
            continue
        stack.extend(node.input)
    return sorted(keep)


def quantize_int8(fp32_path: Path, out_path: Path, feeds: Iterable[dict[str, np.ndarray]] | None = None,
                  input_convs_fp32: bool = True) -> None:
    """Static int8 quantisation of an exported graph (see the module docstring), written
    atomically to ``out_path``. feeds: calibration inputs, one {input name: array} per batch;
    default: the generator's, :func:`sr_model.calibration.calibration_crops` as input ``lr``.
    input_convs_fp32: see :func:`int8_excluded_nodes`."""
    import tempfile

    import cv2
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from sr_model.calibration import calibration_crops

    if feeds is None:
        feeds = [{"lr": cv2.dnn.blobFromImage(c, 1.0 / 255.0, swapRB=True)} for c in calibration_crops()]

    class _Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory(prefix="le-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        excluded = int8_excluded_nodes(onnx.load(str(pre)).graph, input_convs_fp32)
        q = Path(tmp) / "int8.onnx"
        quantize_static(str(pre), str(q), _Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=excluded)
        tmp_out = out_path.with_suffix(".tmp.onnx")
        tmp_out.write_bytes(q.read_bytes())
        tmp_out.replace(out_path)


def ort_session(path: Path, threads: int | None = None, providers: list[str] | None = None):
    """An ONNX Runtime session on ``path`` (default provider: the CPU): all graph optimisations,
    ``threads`` intra-op threads (default: torch's), no spinning between calls (the other pipeline
    stages need the cores)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])


def onnx_runner(model: nn.Module, device: torch.device, precision: str = "fp32", cache_dir: Path | None = None,
                threads: int | None = None) -> Runner:
    """ONNX Runtime on a graph exported with dynamic batch, height and width (fp32, or int8 on CPU)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime)") from None
    if precision not in ("fp32", "int8"):
        raise BackendUnavailable("the onnx back end runs fp32 or int8 (use eager or tensorrt for bf16 / fp16)")
    if precision == "int8" and device.type != "cpu":
        raise BackendUnavailable("int8 is for the CPU; on a GPU use tensorrt (fp16)")
    cache_dir = Path(cache_dir or default_cache_dir())
    key = model_key(model, "onnx", torch.__version__, ort.__version__)
    path = cache_dir / f"generator-{key}.onnx"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        _export_onnx(model, path)
    if precision == "int8":
        from sr_model.calibration import CALIBRATION_VERSION

        key8 = model_key(model, "onnx-int8", INT8_RECIPE, CALIBRATION_VERSION, torch.__version__, ort.__version__)
        path8 = cache_dir / f"generator-{key8}-int8.onnx"
        if not path8.exists():
            quantize_int8(path, path8)
        path = path8
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    elif device.type == "cuda":
        raise BackendUnavailable("onnxruntime here has no CUDA provider (install onnxruntime-gpu)")
    session = ort_session(path, threads, providers)

    def run(x: torch.Tensor) -> torch.Tensor:
        y = session.run(None, {"lr": x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(y).to(x.device)

    return run


def cpu_has_native_bf16() -> bool:
    """Whether OpenVINO (when installed) finds bf16 units on this CPU (AVX-512 BF16 or AMX):
    without them bf16 is emulated, and slower than fp32."""
    if importlib.util.find_spec("openvino") is None:
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_runner(model: nn.Module, device: torch.device, precision: str = "fp32", cache_dir: Path | None = None,
                    threads: int | None = None) -> Runner:
    """OpenVINO on the CPU, on the graph the onnx back end exports (shared cache file): fp32, or
    bf16 (convolutions in bf16 with f32 accumulation) where the CPU has native bf16 units. Not
    the CPU default: on a 2-core AVX-512 BF16 / VNNI machine bf16 ran 380-440 crops/s (32x96,
    batch 1-32) against 480-560 for int8 on ONNX Runtime, but closer to fp32 (max 1.3/255 on
    random crops; int8 up to 17/255 on real plates)."""
    if importlib.util.find_spec("openvino") is None:
        raise BackendUnavailable("OpenVINO is not installed (pip install openvino)")
    if device.type != "cpu":
        raise BackendUnavailable("the openvino back end runs on the CPU; on a GPU use tensorrt or compile")
    if precision not in ("fp32", "bf16"):
        raise BackendUnavailable("the openvino back end runs fp32 or bf16 (int8: --backend onnx)")
    if precision == "bf16" and not cpu_has_native_bf16():
        raise BackendUnavailable("this CPU has no native bf16 units (AVX-512 BF16 / AMX); use fp32")
    import onnxruntime as ort

    from tracker.weights_file import OpenVINOSession  # the detector's session: one OpenVINO set-up

    cache_dir = Path(cache_dir or default_cache_dir())
    path = cache_dir / f"generator-{model_key(model, 'onnx', torch.__version__, ort.__version__)}.onnx"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        _export_onnx(model, path)
    session = OpenVINOSession(path, threads or torch.get_num_threads(), "bf16" if precision == "bf16" else "f32")

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {0: x.detach().float().cpu().numpy()})[0]).to(x.device)

    return run


def tensorrt_runner(model: nn.Module, device: torch.device, precision: str = "fp16", cache_dir: Path | None = None,
                    max_batch: int = 64, max_hw: tuple[int, int] = (64, 256)) -> Runner:
    """torch-tensorrt (dynamo) engine, dynamic batch and size, cached on disk per GPU and version."""
    if device.type != "cuda" or not torch.cuda.is_available():
        raise BackendUnavailable("tensorrt needs an NVIDIA GPU")
    if precision == "int8":
        raise BackendUnavailable("int8 TensorRT engines need a calibration step not built here; use fp16")
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
    """The back end ``auto`` means for an fp32 (or bf16 / fp16) request: TensorRT on an NVIDIA GPU
    when installed, else compile there; on CPU eager fp32 in channels_last layout, measured
    faster than ONNX Runtime fp32 and torch.compile at batch 1 to 32 with 2 threads
    (benchmarks/results/throughput). bf16 is faster still on CPUs with bf16 units, but changes
    outputs by up to ~4/255, so it stays an explicit choice (--precision bf16)."""
    if device.type == "cuda":
        try:
            import torch_tensorrt  # noqa: F401

            return "tensorrt"
        except ImportError:
            return "compile"
    return "eager"


def resolve(backend: str, precision: str, device: str | torch.device) -> tuple[str, str]:
    """(back end, precision) that ``create_runner(model, backend, device, precision)`` runs.

    ``precision="auto"`` is the fastest one whose plate reads match fp32: on the CPU, int8 on
    ONNX Runtime when ``backend`` is auto or onnx and onnxruntime is installed (1.3-1.5x the fp32
    graph with 2 threads, ~1.9x eager fp32 on one thread; the legibility benchmark's reads within
    one plate of fp32 on every set and scale: benchmarks/results/throughput,
    benchmarks/results/legibility_int8; on a CPU with AVX-512 VNNI and BF16 also 1.2-1.4x
    OpenVINO bf16); bf16 for openvino where the CPU has native bf16 units, else fp32; fp16 for
    TensorRT; fp32 otherwise. ``backend="auto"``: :func:`resolve_auto`, or onnx for int8 on the
    CPU.
    """
    device = torch.device(device)
    if backend not in BACKENDS:
        raise BackendUnavailable(f"unknown back end {backend!r}; choose from {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise BackendUnavailable(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision == "auto":
        if backend == "openvino":
            return backend, "bf16" if cpu_has_native_bf16() else "fp32"
        if device.type == "cpu" and backend in ("auto", "onnx") and importlib.util.find_spec("onnxruntime"):
            precision = "int8"
        else:
            name = resolve_auto(device) if backend == "auto" else backend
            precision = "fp16" if name == "tensorrt" else "fp32"
    if backend == "auto":
        backend = "onnx" if precision == "int8" and device.type == "cpu" else resolve_auto(device)
    return backend, precision


def create_runner(model: nn.Module, backend: str = "auto", device: str | torch.device = "cpu", precision: str = "auto",
                  channels_last: bool = False, cache_dir: Path | None = None) -> tuple[str, Runner]:
    """Build the runner for ``backend`` and ``precision`` (``auto``: see :func:`resolve`);
    returns (resolved back-end name, runner)."""
    device = torch.device(device)
    name, precision_ = resolve(backend, precision, device)
    if backend == "auto" and name == "eager" and device.type == "cpu":
        channels_last = True
    if name == "eager":
        return name, eager_runner(model, device, precision_, channels_last)
    if name == "compile":
        return name, compile_runner(model, device, precision_)
    if name == "onnx":
        return name, onnx_runner(model, device, precision_, cache_dir)
    if name == "openvino":
        return name, openvino_runner(model, device, precision_, cache_dir)
    return name, tensorrt_runner(model, device, precision_, cache_dir)
