"""Every Captum method the dashboard uses, on a net of each kind (plain, residual with option A and
option B shortcuts: KINDS), against what the method is, computed here without Captum, in float64:

- Saliency: the magnitude of the score's input gradient (autograd).
- Integrated Gradients: x times the Gauss-Legendre weighted gradients along the path from 0 (autograd);
  and complete (the sum is f(x) - f(0)) to the quadrature's accuracy on a tiny smooth net, where
  Gauss-Legendre converges fast (on a ReLU net the path gradient jumps, and many steps leave it off:
  tests/test_attribution_api.py holds completeness on the trained resnet20 within 3%).
- SmoothGrad: the mean input gradient over the noisy copies the net was run on, the noise of the std asked.
- DeepLift: complete, exactly, on every registered model. The rescale rule makes it so only when every
  nonlinearity is a distinct module that Captum can hook, so it doubles as a Captum-safety check.
- Guided Backprop: the gradient with each ReLU passing back only positive signal, where its input was
  positive (the net's ReLU modules swapped for such a one).
- Occlusion: each patch's score drop when it is set to 0.
- Grad-CAM, at every stage: the stage's maps weighted by their mean gradients (a hook and autograd).
And the app's own calls (core.research.attribution.attribute) on a linear net, f(x) = w·x + b, where the
answers are known: Saliency = SmoothGrad = Guided Backprop = w, IG = DeepLift = w * x, Occlusion = the
mean over the windows covering a pixel of their sum of w * x, Grad-CAM = ReLU(sum over channels of
mean(w_c) x_c).
"""
import copy

import numpy as np
import pytest
import torch
from captum.attr import DeepLift, GuidedBackprop, IntegratedGradients, LayerGradCam, NoiseTunnel, Occlusion, Saliency

from core.engine import models
from core.research import attribution as A
from tests.support import by_model

ALL = models.list_models()
KINDS = ("plain20", "resnet20", "resnet20b")  # one net of each kind: the same modules at every depth
TARGET = 3
EXACT = dict(rtol=1e-9, atol=1e-12)  # float64: the same sums in another order


def _x():
    torch.manual_seed(1)
    return torch.randn(1, 3, 32, 32)


def _f64(net, name):
    """A float64 copy of the shared calibrated net (eval mode)."""
    return copy.deepcopy(net(name)).double().eval()


def _input_grad(model, x):
    """d score / d x at each row of x (autograd alone)."""
    x = x.detach().clone().requires_grad_()
    grad, = torch.autograd.grad(model(x)[:, TARGET].sum(), x)
    return grad


def _close(got, want, **tol):
    torch.testing.assert_close(got, want, **(tol or EXACT))
    assert want.abs().max() > 0  # not two zero maps


@pytest.mark.parametrize("name", KINDS)
def test_saliency_is_the_input_gradients_magnitude(name, net):
    model, x = _f64(net, name), _x().double()
    _close(Saliency(model).attribute(x, target=TARGET), _input_grad(model, x).abs())


@pytest.mark.parametrize("name", KINDS)
def test_integrated_gradients_is_its_path_integral(name, net):
    """x * sum_k w_k grad f(a_k x), the nodes a_k and weights w_k of Gauss-Legendre on [0, 1] (Captum's default)."""
    model, x, steps = _f64(net, name), _x().double(), 8
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.tensor((nodes + 1) / 2)[:, None, None, None]
    weights = torch.tensor(weights / 2).float().double()[:, None, None, None]  # Captum rounds them to float32
    want = x * (weights * _input_grad(model, alphas * x)).sum(0, keepdim=True)
    _close(IntegratedGradients(model).attribute(x, target=TARGET, n_steps=steps), want)


class _Smooth(torch.nn.Module):
    """A tiny net with smooth nonlinearities (tanh): its path gradient is analytic, so Gauss-Legendre on
    it converges fast. `linear` is the head core.research.attribution reads the class count from."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.linear = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.linear(torch.tanh(self.pool(torch.tanh(self.conv(x)))).flatten(1))


def test_integrated_gradients_is_complete_on_a_smooth_net():
    """The app's Integrated Gradients (baseline 0; 65 steps, over IG_BATCH, so in two internal batches)
    sums to f(x) - f(0); with 4 steps, it does not yet (the check can tell the two apart)."""
    model, x = _Smooth().double().eval(), 3 * _x().double()
    with torch.no_grad():
        diff = (model(x) - model(torch.zeros_like(x)))[0, TARGET].item()
    attr, _ = A.attribute(model, x, "Integrated Gradients", TARGET, ig_steps=A.IG_BATCH + 1)
    few, _ = A.attribute(model, x, "Integrated Gradients", TARGET, ig_steps=4)
    tol = 2e-7 * np.abs(attr).sum()  # the map comes back in float32: each value within 6e-8 of itself
    assert abs(attr.sum(dtype=np.float64) - diff) <= tol < abs(few.sum(dtype=np.float64) - diff), (diff, tol)


@pytest.mark.parametrize("name", KINDS)
def test_smoothgrad_is_the_mean_gradient_over_its_noisy_copies(name, net):
    """Signed (the app's abs=False): the mean of the input gradients at the copies the net was run on, which
    are x plus noise of the std asked."""
    model, x, stdev = _f64(net, name), _x().double(), 0.15
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        attr = NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=4, stdevs=stdev,
                                                      target=TARGET, abs=False)
    finally:
        hook.remove()
    noisy = torch.cat(seen)
    assert noisy.shape == (4, 3, 32, 32)
    assert (noisy - x).std().item() == pytest.approx(stdev, rel=0.05)  # 12,288 draws: about 0.6% standard error
    _close(attr, _input_grad(model, noisy).mean(0, keepdim=True))


@pytest.mark.parametrize("name", by_model(ALL))
def test_deeplift_completeness(name, net):
    """The sum of the attributions is f(x) - f(0), computed here; in float64 (float32's rescale-rule
    divisions are noisy in deep plain nets)."""
    model, x = _f64(net, name), _x().double()
    attr = DeepLift(model).attribute(x, target=TARGET)
    with torch.no_grad():
        diff = (model(x) - model(torch.zeros_like(x)))[0, TARGET].item()
    assert attr.shape == x.shape and attr.abs().max() > 0
    assert abs(attr.sum().item() - diff) <= 1e-8 * max(1.0, abs(diff)), (attr.sum().item(), diff)


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


class _GuidedReLUModule(torch.nn.Module):
    def forward(self, x):
        return _GuidedReLU.apply(x)


@pytest.mark.parametrize("name", KINDS)
def test_guided_backprop_is_the_gradient_through_guided_relus(name, net):
    model, x = _f64(net, name), _x().double()
    guided = copy.deepcopy(model)
    relus = [(parent, child) for parent in guided.modules() for child, m in parent.named_children()
             if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == 1 + 2 * 9  # the stem's and two per block (9 blocks)
    for parent, child in relus:
        setattr(parent, child, _GuidedReLUModule())
    want = _input_grad(guided, x)
    _close(GuidedBackprop(model).attribute(x, target=TARGET), want)
    assert not torch.allclose(want, _input_grad(model, x))  # not the plain gradient


@pytest.mark.parametrize("name", KINDS)
def test_occlusion_is_each_patchs_score_drop(name, net):
    """Four 16 x 16 patches (all three channels), each set to 0 in turn: each of its pixels gets f(x) minus
    f(x with that patch occluded)."""
    model, x = _f64(net, name), _x().double()
    attr = Occlusion(model).attribute(x, target=TARGET, sliding_window_shapes=(3, 16, 16), strides=(3, 16, 16))
    want = torch.empty_like(x)
    with torch.no_grad():
        score = model(x)[0, TARGET]
        for i in (0, 16):
            for j in (0, 16):
                hidden = x.clone()
                hidden[..., i:i + 16, j:j + 16] = 0
                want[..., i:i + 16, j:j + 16] = score - model(hidden)[0, TARGET]
    # Captum (0.9) sums its ablations in float32 whatever the net's dtype
    _close(attr.double(), want, rtol=1e-5, atol=1e-6 * want.abs().max().item())


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("stage, size", [("layer1", 32), ("layer2", 16), ("layer3", 8)])
def test_grad_cam_is_the_stages_maps_weighted_by_their_mean_gradients(name, stage, size, net):
    """Captum's LayerGradCam (relu_attributions off: the signed sum; the app asks for its ReLU) against the
    stage's output A and the score's gradient G with respect to it: sum over channels c of mean(G_c) A_c."""
    model, x = _f64(net, name), _x().double()
    layer = getattr(model, stage)
    attr = LayerGradCam(model, layer).attribute(x, target=TARGET)
    maps = []
    hook = layer.register_forward_hook(lambda m, args, out: maps.append(out))
    try:
        score = model(x)[0, TARGET]
    finally:
        hook.remove()
    grads, = torch.autograd.grad(score, maps[0])
    want = (grads.mean((2, 3), keepdim=True) * maps[0]).sum(1, keepdim=True).detach()
    assert want.shape == (1, 1, size, size)
    _close(attr, want)
    assert (want < 0).any() and (want > 0).any()  # signed: the app's ReLU has something to remove


class _Linear(torch.nn.Module):
    """f(x) = w·x + b over the flattened input; `layer1` (Grad-CAM's stage) passes the input on as it is."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer1 = torch.nn.Identity()
        self.linear = torch.nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.linear(self.layer1(x).flatten(1))


def _windows(contrib: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Occlusion's answer on a linear net: per pixel, the mean over the windows covering it of the window's
    sum of contributions (w * x over all channels: the score drop when it is set to 0)."""
    total, count = np.zeros(contrib.shape[1:]), np.zeros(contrib.shape[1:])
    for i in range(0, 32 - window + 1, stride):
        for j in range(0, 32 - window + 1, stride):
            total[i:i + window, j:j + window] += contrib[:, i:i + window, j:j + window].sum()
            count[i:i + window, j:j + window] += 1
    return np.broadcast_to(total / count, contrib.shape)


@pytest.mark.parametrize("method", list(A.METHODS))
def test_the_apps_methods_on_a_linear_net_give_the_known_answers(method):
    model, x = _Linear().double().eval(), _x().double()
    w = model.linear.weight[TARGET].detach().view(3, 32, 32).numpy()
    xs = x[0].numpy()
    stage = {"stage": "layer1"} if method == "Grad-CAM" else {}
    attr, _ = A.attribute(model, x, method, TARGET, **stage)  # the app's defaults otherwise
    cam = np.maximum((w.mean((1, 2))[:, None, None] * xs).sum(0), 0)
    want = {"Saliency": w, "SmoothGrad": w, "Guided Backprop": w,  # the gradient, everywhere
            "Integrated Gradients": w * xs, "DeepLift": w * xs,
            "Occlusion": _windows(w * xs, A.DEFAULTS["occlusion_window"], A.DEFAULTS["occlusion_stride"]),
            "Grad-CAM": np.broadcast_to(cam, xs.shape)}[method]
    assert cam.max() > 0 and (cam == 0).any()  # the ReLU keeps part of the map
    np.testing.assert_allclose(attr, want.transpose(1, 2, 0), rtol=1e-5, atol=1e-6 * np.abs(want).max())
