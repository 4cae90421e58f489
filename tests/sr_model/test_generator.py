import pytest
import torch

from sr_model.generator import GeneratorConfig, build_generator


@pytest.mark.parametrize("scale", [2, 4])
def test_output_is_scale_times_input(scale):
    model = build_generator(GeneratorConfig(scale=scale, channels=8, n_blocks=1)).eval()
    with torch.inference_mode():
        y = model(torch.rand(3, 3, 10, 30))
    assert y.shape == (3, 3, 10 * scale, 30 * scale)


def test_untrained_generator_starts_near_bilinear():
    # The residual-on-bilinear design: a fresh model's output is a bilinear upscale plus a small
    # correction, so training starts from a sensible image, not from noise.
    torch.manual_seed(0)
    model = build_generator(GeneratorConfig(channels=8, n_blocks=1)).eval()
    x = torch.rand(1, 3, 8, 24)
    with torch.inference_mode():
        y = model(x)
    base = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert (y - base).abs().mean() < 0.25


def test_rejects_unknown_arch_and_scale():
    with pytest.raises(ValueError):
        build_generator({"arch": "vdsr", "scale": 4, "channels": 8, "n_blocks": 1})
    with pytest.raises(ValueError):
        build_generator(GeneratorConfig(scale=3))
