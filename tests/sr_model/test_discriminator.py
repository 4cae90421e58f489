import torch

from sr_model.discriminator import DiscriminatorConfig, PatchDiscriminator


def test_patch_logits_shape_and_gradients():
    d = PatchDiscriminator(DiscriminatorConfig(channels=8, n_down=3))
    x = torch.rand(2, 3, 60, 96, requires_grad=True)
    y = d(x)
    assert y.shape == (2, 1, 60 // 8, 96 // 8)
    y.mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_is_a_plain_module_without_training_logic():
    d = PatchDiscriminator(DiscriminatorConfig(channels=8, n_down=2))
    assert isinstance(d, torch.nn.Module)
    assert not any(hasattr(d, name) for name in ("optimizer", "train_step", "loss"))
    assert d(torch.rand(1, 3, 16, 16)).shape == (1, 1, 4, 4)
