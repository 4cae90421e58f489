"""Every back end gives the eager fp32 output within a stated tolerance, or says why it cannot run."""
import importlib.util

import pytest
import torch

from sr_model.backends import BackendUnavailable, cpu_has_native_bf16, create_runner, model_key, resolve, resolve_auto
from sr_model.enhancer import EnhancerConfig, PlateEnhancer
from sr_model.generator import GeneratorConfig, build_generator

# fp32 back ends differ from eager only by float re-association; bf16 keeps ~2-3 significant digits.
TOL = {"fp32": 1e-4, "bf16": 3e-2}


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_generator(GeneratorConfig(channels=8, n_blocks=1)).eval()


@pytest.fixture(scope="module")
def x():
    return torch.rand(3, 3, 12, 36)


def reference(model, x):
    with torch.inference_mode():
        return model(x)


@pytest.mark.parametrize("backend, precision, channels_last", [
    ("eager", "fp32", False), ("eager", "fp32", True), ("eager", "bf16", False), ("onnx", "fp32", False),
    ("openvino", "fp32", False), ("openvino", "bf16", False)])
def test_backend_matches_eager_fp32(small_model, x, tmp_path, backend, precision, channels_last):
    if backend == "openvino" and not importlib.util.find_spec("openvino"):
        pytest.skip("OpenVINO is not installed")
    if (backend, precision) == ("openvino", "bf16") and not cpu_has_native_bf16():
        with pytest.raises(BackendUnavailable, match="native bf16"):
            create_runner(small_model, backend, "cpu", precision, cache_dir=tmp_path)
        pytest.skip("this CPU has no native bf16 units: OpenVINO bf16 refuses, as checked")
    ref = reference(small_model, x)
    _, run = create_runner(small_model, backend, "cpu", precision, channels_last, cache_dir=tmp_path)
    assert (run(x) - ref).abs().max() <= TOL[precision]
    # dynamic shapes: another batch size and crop size through the same runner
    x2 = torch.rand(5, 3, 20, 52)
    assert run(x2).shape == (5, 3, 80, 208)


def test_onnx_export_is_cached_by_model_hash(small_model, tmp_path):
    create_runner(small_model, "onnx", precision="fp32", cache_dir=tmp_path)
    files = list(tmp_path.glob("*.onnx"))
    assert len(files) == 1
    create_runner(small_model, "onnx", precision="fp32", cache_dir=tmp_path)
    assert list(tmp_path.glob("*.onnx")) == files
    create_runner(small_model, "onnx", precision="int8", cache_dir=tmp_path)  # quantised from the cached graph
    int8 = sorted(set(tmp_path.glob("*.onnx")) - set(files))
    assert len(int8) == 1 and int8[0].name.endswith("-int8.onnx")
    create_runner(small_model, "onnx", precision="int8", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.onnx"))) == 2
    other = build_generator(GeneratorConfig(channels=8, n_blocks=1))
    assert model_key(other) != model_key(small_model)


def test_int8_graph_keeps_input_and_output_stages_in_fp32(small_model, tmp_path):
    import onnx

    from sr_model.backends import _export_onnx, int8_excluded_nodes

    path = tmp_path / "g.onnx"
    _export_onnx(small_model, path)
    graph = onnx.load(str(path)).graph
    kept = {n.op_type for n in graph.node if n.name in int8_excluded_nodes(graph)}
    convs = [n.name for n in graph.node if n.op_type == "Conv"]
    excluded = set(int8_excluded_nodes(graph))
    # first conv (reads the input), last conv (the tail), the bilinear base and the final add
    assert convs[0] in excluded and convs[-1] in excluded
    assert {"Resize", "Add", "LeakyRelu"} <= kept
    assert not set(convs[1:-1]) & excluded  # the body is quantised


def test_int8_close_to_fp32_on_plate_crops(tmp_path):
    """The shipped generator through int8 ONNX Runtime stays within a few /255 of eager fp32 on
    plate-like crops it was not calibrated on (measured: mean 0.6, p99 3 on these; real plate
    crops: mean 0.5, p99 2)."""
    import numpy as np

    from sr_model.calibration import calibration_crops

    crops = calibration_crops(12, seed=7)
    ref = PlateEnhancer(config=EnhancerConfig(backend="eager")).enhance(crops)
    from sr_model import backends

    e8 = PlateEnhancer(config=EnhancerConfig(backend="auto", precision="int8"))
    assert e8.backend == "onnx"
    out = e8.enhance(crops)
    diff = np.concatenate([np.abs(a.astype(int) - b.astype(int)).ravel() for a, b in zip(ref, out)])
    assert diff.mean() <= 1.5 and np.percentile(diff, 99) <= 6
    assert backends.INT8_RECIPE  # the cache key changes with the recipe


def test_int8_only_on_onnx(small_model):
    with pytest.raises(BackendUnavailable, match="onnx back end only"):
        create_runner(small_model, "eager", "cpu", "int8")


def test_calibration_crops_are_deterministic_plate_sized():
    import numpy as np

    from sr_model.calibration import calibration_crops

    a, b = calibration_crops(6), calibration_crops(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(x.dtype == np.uint8 and x.ndim == 3 and 12 <= x.shape[0] <= 32 and x.shape[1] >= 1.5 * x.shape[0]
               for x in a)


def test_compile_matches_eager(small_model, x):
    if importlib.util.find_spec("torch._inductor") is None:
        pytest.skip("torch inductor not available")
    ref = reference(small_model, x)
    _, run = create_runner(small_model, "compile")
    assert (run(x) - ref).abs().max() <= TOL["fp32"]


def test_tensorrt_runs_or_says_why(small_model, x):
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="NVIDIA GPU"):
            create_runner(small_model, "tensorrt", "cpu")
        pytest.skip("TensorRT needs an NVIDIA GPU; none on this machine")
    if importlib.util.find_spec("torch_tensorrt") is None:
        pytest.skip("torch-tensorrt is not installed (optional extra 'trt')")
    ref = reference(small_model.cuda(), x.cuda())
    _, run = create_runner(small_model, "tensorrt", "cuda", "fp16")
    assert (run(x.cuda()) - ref).abs().max() <= 1e-2


def test_auto_and_bad_names():
    assert resolve_auto(torch.device("cpu")) == "eager"
    # precision auto on the CPU: int8 through ONNX Runtime; an explicit fp32 keeps eager channels-last
    default = ("onnx", "int8")
    assert resolve("auto", "auto", "cpu") == default
    assert resolve("onnx", "auto", "cpu") == ("onnx", "int8")
    assert resolve("auto", "fp32", "cpu") == ("eager", "fp32")
    assert resolve("eager", "auto", "cpu") == ("eager", "fp32")
    assert resolve("openvino", "auto", "cpu") == ("openvino", "bf16" if cpu_has_native_bf16() else "fp32")
    enhancer = PlateEnhancer(config=EnhancerConfig())
    assert (enhancer.backend, enhancer.precision) == default
    with pytest.raises(BackendUnavailable, match="unknown precision"):
        resolve("auto", "int4", "cpu")
    with pytest.raises(BackendUnavailable, match="unknown back end"):
        create_runner(build_generator(GeneratorConfig(channels=8, n_blocks=1)), "tvm")
    with pytest.raises(BackendUnavailable, match="int8"):
        create_runner(build_generator(GeneratorConfig(channels=8, n_blocks=1)), "openvino", "cpu", "int8")
    with pytest.raises(BackendUnavailable, match="fp16"):
        create_runner(build_generator(GeneratorConfig(channels=8, n_blocks=1)), "eager", "cpu", "fp16")


def test_enhancer_uses_the_chosen_backend():
    import numpy as np

    crop = np.random.default_rng(0).integers(0, 255, (14, 40, 3), dtype=np.uint8)
    a = PlateEnhancer(config=EnhancerConfig(backend="eager")).enhance([crop])[0]
    e = PlateEnhancer(config=EnhancerConfig(backend="onnx", precision="fp32"))
    assert e.backend == "onnx" and e.precision == "fp32"
    assert np.abs(a.astype(int) - e.enhance([crop])[0].astype(int)).max() <= 1


@pytest.mark.parametrize("backend,precision", [("eager", "fp32"), ("onnx", "int8")])
def test_a_crops_enhanced_image_does_not_depend_on_its_batch(backend, precision):
    """The same crop gives the same pixels alone and batched with crops of other sizes (padding it
    to a larger neighbour's size used to change its border by up to 41 levels)."""
    import numpy as np

    if backend == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(14, 40), (24, 80), (31, 126), (14, 44)]]
    e = PlateEnhancer(config=EnhancerConfig(backend=backend, precision=precision, batch_size=3))
    alone = [e.enhance([c])[0] for c in crops]
    together = e.enhance(crops)
    for a, b, c in zip(alone, together, crops):
        assert a.shape == b.shape == (c.shape[0] * 4, c.shape[1] * 4, 3)
        assert np.array_equal(a, b)
