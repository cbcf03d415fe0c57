"""Every Captum method the dashboard uses runs on every registered model and gives sane output.

DeepLift's completeness (attributions sum to f(x) - f(baseline)) holds only when every
nonlinearity is a distinct module that Captum can hook, so it doubles as a Captum-safety check.
"""
import copy

import pytest
import torch
from captum.attr import DeepLift, GuidedBackprop, IntegratedGradients, LayerGradCam, Occlusion, Saliency

from core.engine import models

ALL = models.list_models()


def _x():
    torch.manual_seed(1)
    return torch.randn(1, 3, 32, 32)


def _check(attr, shape=(1, 3, 32, 32)):
    assert attr.shape == shape
    assert torch.isfinite(attr).all()
    assert attr.abs().sum() > 0


@pytest.mark.parametrize("name", ALL)
def test_saliency(name, net):
    _check(Saliency(net(name)).attribute(_x(), target=3))


@pytest.mark.parametrize("name", ALL)
def test_integrated_gradients(name, net):
    attr, delta = IntegratedGradients(net(name)).attribute(_x(), target=3, n_steps=8,
                                                            return_convergence_delta=True)
    _check(attr)
    assert torch.isfinite(delta).all()


@pytest.mark.parametrize("name", ALL)
def test_deeplift_completeness(name, net):
    """In float64 (float32's rescale-rule divisions are noisy in deep plain nets)."""
    model, x = copy.deepcopy(net(name)).double(), _x().double()
    attr, delta = DeepLift(model).attribute(x, target=3, return_convergence_delta=True)
    _check(attr)
    with torch.no_grad():
        diff = (model(x) - model(torch.zeros_like(x)))[0, 3].abs().item()
    assert delta.abs().item() <= 1e-8 * max(1.0, diff)


@pytest.mark.parametrize("name", ALL)
def test_guided_backprop(name, net):
    _check(GuidedBackprop(net(name)).attribute(_x(), target=3))


@pytest.mark.parametrize("name", ALL)
def test_occlusion(name, net):
    attr = Occlusion(net(name)).attribute(_x(), target=3, sliding_window_shapes=(3, 16, 16),
                                           strides=(3, 16, 16))
    _check(attr)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("stage,size", [("layer1", 32), ("layer2", 16), ("layer3", 8)])
def test_layer_gradcam_every_stage(name, stage, size, net):
    model = net(name)
    attr = LayerGradCam(model, getattr(model, stage)).attribute(_x(), target=3)
    assert attr.shape == (1, 1, size, size)
    assert torch.isfinite(attr).all()
