"""The tracker's weights files (detector, corner refiner): reading them with one-line errors, and
their CPU inference paths, ONNX Runtime and OpenVINO (graphs exported to ONNX once per weights
file, cached on disk)."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open


def shape_batches(keys: Sequence[Hashable], batch_size: int) -> Iterator[list[int]]:
    """Indices of the inputs whose ``keys`` (their padded input shapes) are equal, in chunks of at
    most ``batch_size``, key by key in sorted order. Batching only inputs of one shape means no
    input is padded to a larger neighbour's size, so each one's result does not depend on which
    others (other tracks, other streams) shared its forward pass; used by the detector, the
    generator and the fusion model."""
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    bs = max(1, batch_size)
    for key in sorted(groups):  # type: ignore[type-var]
        group = groups[key]
        for start in range(0, len(group), bs):
            yield group[start : start + bs]


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


def openvino_available() -> bool:
    """Whether OpenVINO is installed (the faster CPU path of both models; a dependency, but the
    ONNX Runtime path works without it)."""
    return importlib.util.find_spec("openvino") is not None


OPENVINO_PRECISIONS = ("auto", "f32", "bf16")


def export_onnx_cached(model: torch.nn.Module, example: torch.Tensor, name: str, weights_sha: str,
                       cache_dir: Path | None = None, **export_kwargs) -> Path:
    """``model`` exported to ONNX (opset 17, TorchScript exporter) once: cached as
    ``<name>-<key>.onnx`` in ``cache_dir`` (default :func:`default_cache_dir`), the key a hash of
    the weights file's ``weights_sha`` and the torch and ONNX Runtime versions. Written to a temp
    file and renamed, so a concurrent writer is harmless. ``export_kwargs``: input / output names,
    dynamic axes."""
    import onnxruntime as ort

    key = hashlib.sha256(f"{weights_sha}|{torch.__version__}|{ort.__version__}|v1".encode()).hexdigest()[:20]
    path = Path(cache_dir or default_cache_dir()) / f"{name}-{key}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.onnx")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(model, (example,), str(tmp), opset_version=17, do_constant_folding=True, dynamo=False,
                          **export_kwargs)
    os.replace(tmp, path)
    return path


def _load_cached(export: Callable[[], Path], load: Callable[[Path], object], runtime: str, what: str,
                 error: type[Exception]):
    """``load(export())``; a cached graph that does not load (a corrupt cache file) is deleted
    and exported again once; then ``error`` ("<runtime> cannot load the exported <what>: ...")."""
    path = export()
    try:
        return load(path)
    except Exception as exc:
        path.unlink(missing_ok=True)
        try:
            return load(export())
        except Exception:
            raise error(f"{runtime} cannot load the exported {what}: {exc}") from None


def cpu_session(export: Callable[[], Path], threads: int, what: str, error: type[Exception]):
    """An ONNX Runtime CPU session on the graph ``export()`` returns, ``threads`` intra-op threads,
    without busy-waiting after a run (the pipeline's other stages need the cores right away;
    measured for the detector, 720p on 2 cores: 40.3 -> 32.4 ms median per frame, p90 54.8 ->
    34.2). A cached graph that does not load is exported again once; then ``error``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return _load_cached(export, lambda path: ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]),
                        "ONNX Runtime", what, error)


class OpenVINOSession:
    """An ONNX graph compiled by OpenVINO for the CPU, called like an ONNX Runtime session:
    ``run(None, {input_name: array}) -> [first output]``.

    precision: "f32", "bf16" (the CPU's native bf16 units, AVX512_BF16 or AMX: convolutions in
    bf16, accumulation in f32) or "auto" (OpenVINO's default: bf16 where the CPU has such units,
    else f32; checked by :func:`cpu_openvino`). ``precision`` after construction says which one
    runs. static_shapes: compile the graph again for each input shape it meets (the
    ``max_shapes`` latest kept) instead of running the dynamic-shape graph: the detector at
    640x384 on 2 cores, 8.7-10.9 -> 7.4-9.6 ms per call (interleaved, this AMD EPYC); worth it
    where the shapes are few (a stream's frame size, the coarse pass, the batch sizes), not for
    inputs of ever-changing size. A shape's first call compiles it (0.3-0.5 s for the detector on
    2 busy cores), and each kept shape holds its own buffers: 27-97 MB for the detector from a
    640x384 to a 3840x2176 input. Calls are serialised (one infer request per shape)."""

    def __init__(self, path: Path, threads: int, precision: str = "auto", static_shapes: bool = False,
                 max_shapes: int = 8) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                        # The pipeline's decoder and encoder threads share the cores: no pinning.
                        "ENABLE_CPU_PINNING": False}
        if precision != "auto":
            self._config["INFERENCE_PRECISION_HINT"] = precision
        self._model = self._core.read_model(str(path))
        compiled = self._core.compile_model(self._model, "CPU", self._config)  # also checks the graph loads
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        # The dynamic-shape graph's request, or, with static_shapes, one request per shape (latest last).
        self._request = None if static_shapes else compiled.create_infer_request()
        self._static: OrderedDict[tuple, object] = OrderedDict()
        self._max_shapes = max_shapes
        self._lock = threading.Lock()

    def _request_for(self, feeds: dict[str, np.ndarray]):
        if self._request is not None:
            return self._request
        key = tuple((name, x.shape) for name, x in feeds.items())
        request = self._static.get(key)
        if request is None:
            model = self._model.clone()
            model.reshape({name: list(x.shape) for name, x in feeds.items()})
            request = self._static[key] = self._core.compile_model(model, "CPU", self._config).create_infer_request()
        else:
            self._static.move_to_end(key)
        while len(self._static) > self._max_shapes:
            self._static.popitem(last=False)
        return request

    def run(self, output_names, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            request = self._request_for(feeds)
            request.infer({name: np.ascontiguousarray(x) for name, x in feeds.items()}, share_inputs=True)
            return [request.get_output_tensor(0).data.copy()]


def cpu_openvino(export: Callable[[], Path], threads: int, what: str, error: type[Exception],
                 precision: str = "auto", static_shapes: bool = False) -> OpenVINOSession:
    """:class:`OpenVINOSession` on the graph ``export()`` returns, ``threads`` threads. A cached
    graph that does not load is exported again once; then ``error``."""
    if precision not in OPENVINO_PRECISIONS:
        raise ValueError(f"unknown OpenVINO precision {precision!r}; expected one of {OPENVINO_PRECISIONS}")
    return _load_cached(export, lambda path: OpenVINOSession(path, threads, precision, static_shapes), "OpenVINO",
                        what, error)
