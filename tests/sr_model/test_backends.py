"""Every back end gives the eager fp32 output within a stated tolerance, or says why it cannot run."""
import importlib.util

import pytest
import torch

from sr_model.backends import BackendUnavailable, create_runner, model_key, resolve_auto
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
    ("eager", "fp32", False), ("eager", "fp32", True), ("eager", "bf16", False), ("onnx", "fp32", False)])
def test_backend_matches_eager_fp32(small_model, x, tmp_path, backend, precision, channels_last):
    ref = reference(small_model, x)
    _, run = create_runner(small_model, backend, "cpu", precision, channels_last, cache_dir=tmp_path)
    assert (run(x) - ref).abs().max() <= TOL[precision]
    # dynamic shapes: another batch size and crop size through the same runner
    x2 = torch.rand(5, 3, 20, 52)
    assert run(x2).shape == (5, 3, 80, 208)


def test_onnx_export_is_cached_by_model_hash(small_model, tmp_path):
    create_runner(small_model, "onnx", cache_dir=tmp_path)
    files = list(tmp_path.glob("*.onnx"))
    assert len(files) == 1
    create_runner(small_model, "onnx", cache_dir=tmp_path)
    assert list(tmp_path.glob("*.onnx")) == files
    other = build_generator(GeneratorConfig(channels=8, n_blocks=1))
    assert model_key(other) != model_key(small_model)


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
    with pytest.raises(BackendUnavailable, match="unknown back end"):
        create_runner(build_generator(GeneratorConfig(channels=8, n_blocks=1)), "openvino")
    with pytest.raises(BackendUnavailable, match="fp16"):
        create_runner(build_generator(GeneratorConfig(channels=8, n_blocks=1)), "eager", "cpu", "fp16")


def test_enhancer_uses_the_chosen_backend():
    import numpy as np

    crop = np.random.default_rng(0).integers(0, 255, (14, 40, 3), dtype=np.uint8)
    a = PlateEnhancer(config=EnhancerConfig(backend="eager")).enhance([crop])[0]
    e = PlateEnhancer(config=EnhancerConfig(backend="onnx"))
    assert e.backend == "onnx"
    assert np.abs(a.astype(int) - e.enhance([crop])[0].astype(int)).max() <= 1
