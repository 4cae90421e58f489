import pytest
import torch

from sr_model.generator import GENERATORS, GeneratorConfig, build_generator


@pytest.mark.parametrize("arch,scale", [("srresnet", 2), ("srresnet", 4), ("espcn_res", 2), ("espcn_res", 3),
                                        ("espcn_res", 4)])
def test_output_is_scale_times_input(arch, scale):
    model = build_generator(GeneratorConfig(arch=arch, scale=scale, channels=8, n_blocks=1)).eval()
    with torch.inference_mode():
        y = model(torch.rand(3, 3, 10, 30))
    assert y.shape == (3, 3, 10 * scale, 30 * scale)
    assert model.scale == scale


@pytest.mark.parametrize("arch", sorted(GENERATORS))
def test_untrained_generator_starts_near_bilinear(arch):
    # The residual-on-bilinear design: a fresh model's output is a bilinear upscale plus a small
    # correction (exactly none for espcn_res, whose last conv starts at zero).
    torch.manual_seed(0)
    model = build_generator(GeneratorConfig(arch=arch, channels=8, n_blocks=1)).eval()
    x = torch.rand(1, 3, 8, 24)
    with torch.inference_mode():
        y = model(x)
    base = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert (y - base).abs().mean() < 0.25
    if arch == "espcn_res":
        assert torch.equal(y, base)


def test_espcn_tail_runs_every_conv_at_lr_resolution():
    # the point of the ESPCN tail: no conv at 2x or 4x resolution, so far fewer multiply-adds
    def macs(model, h=32, w=96):
        total = 0

        def hook(mod, inp, out):
            nonlocal total
            total += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups

        hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        with torch.inference_mode():
            model(torch.rand(1, 3, h, w))
        for h_ in hs:
            h_.remove()
        return total

    old = macs(build_generator(GeneratorConfig(arch="srresnet", channels=32, n_blocks=6)))
    new = macs(build_generator(GeneratorConfig(arch="espcn_res", channels=32, n_blocks=6)))
    assert new < old / 2


def test_rejects_unknown_arch_and_scale():
    with pytest.raises(ValueError):
        build_generator({"arch": "vdsr", "scale": 4, "channels": 8, "n_blocks": 1})
    with pytest.raises(ValueError):
        build_generator(GeneratorConfig(scale=3))  # srresnet upsamples in x2 steps only
    with pytest.raises(ValueError):
        build_generator(GeneratorConfig(arch="espcn_res", scale=5))
