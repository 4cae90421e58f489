import math

import pytest
import torch
import torch.nn.functional as F

from sr_model.losses import TextPerceptualLoss, relativistic_d_loss, relativistic_g_loss


def test_relativistic_losses_on_hand_made_logits():
    real = torch.tensor([2.0, 2.0])
    fake = torch.tensor([-2.0, -2.0])
    # real - mean(fake) = 4, fake - mean(real) = -4: the discriminator is right, with margin 4
    d = relativistic_d_loss(real, fake)
    assert d.item() == pytest.approx(-math.log(torch.sigmoid(torch.tensor(4.0)).item()), rel=1e-5)
    g = relativistic_g_loss(real, fake)
    assert g.item() == pytest.approx(-math.log(torch.sigmoid(torch.tensor(-4.0)).item()), rel=1e-5)
    assert g > d  # the generator is losing
    # swapped: the generator wins, the discriminator loses
    assert relativistic_d_loss(fake, real) > relativistic_g_loss(fake, real)
    # indistinguishable: both at log 2
    same = torch.zeros(4)
    assert relativistic_d_loss(same, same).item() == pytest.approx(math.log(2), rel=1e-6)
    assert relativistic_g_loss(same, same).item() == pytest.approx(math.log(2), rel=1e-6)


def test_relativistic_generator_gradient_raises_fake_logits():
    real = torch.randn(2, 1, 4, 4)
    fake = torch.randn(2, 1, 4, 4, requires_grad=True)
    relativistic_g_loss(real, fake).backward()
    assert (fake.grad < 0).all()  # descending the loss pushes every fake logit up
    fake2 = fake.detach().clone().requires_grad_(True)
    relativistic_d_loss(real, fake2).backward()
    assert (fake2.grad > 0).all()  # the discriminator pushes them down


def _tiny_recognizer():
    from sr_model.recognizer import RecognizerConfig, build_recognizer

    torch.manual_seed(0)
    return build_recognizer(RecognizerConfig(height=16, width=64, channels=8, hidden=16)).eval()


def test_text_loss_gradients_reach_the_sr_image_and_not_the_recognizer():
    rec = _tiny_recognizer()
    loss = TextPerceptualLoss(rec, rec.config.charset)
    hr = torch.rand(3, 3, 24, 72)
    sr = (hr + 0.1 * torch.randn_like(hr)).requires_grad_(True)
    feat, ctc = loss(sr, hr, ["AB12", None, "7XYZ99"])
    assert feat.ndim == 0 and ctc.ndim == 0 and feat > 0 and ctc > 0
    (feat + ctc).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in rec.parameters())
    assert not rec.training


def test_text_loss_feature_term_is_zero_for_identical_images_and_ctc_skips_unknown_texts():
    rec = _tiny_recognizer()
    loss = TextPerceptualLoss(rec, rec.config.charset)
    hr = torch.rand(2, 3, 24, 72)
    feat, ctc = loss(hr.clone(), hr, [None, "a-b"])  # "a-b" has characters outside the charset
    assert feat.item() == pytest.approx(0.0, abs=1e-7) and ctc.item() == 0.0
    # the CTC term equals torch's own CTC on the recognizer's output
    feat, ctc = loss(hr, hr, ["AB1", "Z9"])
    logp = rec(hr)
    targets = torch.tensor([rec.config.charset.index(c) + 1 for c in "AB1Z9"])
    ref = F.ctc_loss(logp, targets, torch.full((2,), logp.shape[0]), torch.tensor([3, 2]), blank=0,
                     zero_infinity=True)
    assert ctc.item() == pytest.approx(ref.item(), rel=1e-5)
