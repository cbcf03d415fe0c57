"""core.research.attribution: every method's output, parameter checking, rendering, caching; on resnet110:
every method's map, Saliency = the input gradient, Integrated Gradients = its path integral, DeepLift
complete; Integrated Gradients complete on the shipped resnet20. (Latency: bench/app_latency.py.)"""
import gc
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch

from core.engine import models
from core.research import attribution as A
from tests.support import ROOT

NAMES = ("resnet20", "plain20", "resnet20b")


def _fresh(name, seed=0):
    torch.manual_seed(seed)
    return models.build(name).eval()


@pytest.fixture(scope="module")
def nets():
    return {name: _fresh(name) for name in NAMES}


def _x(seed=1):
    torch.manual_seed(seed)
    return torch.randn(1, 3, 32, 32)  # already "normalised": zero mean, unit std per channel


def test_tables():
    assert list(A.METHODS) == ["Saliency", "Integrated Gradients", "SmoothGrad", "Guided Backprop",
                               "DeepLift", "Grad-CAM", "Occlusion"]
    for info in A.METHODS.values():
        assert info.summary.endswith(".") and set(info.params) <= set(A.DEFAULTS)
        with pytest.raises(AttributeError):
            info.summary = "x"  # frozen
    assert A.STAGES == models.STAGES
    assert set(A.LIMITS) | {"stage"} == set(A.DEFAULTS)


def test_import_is_light():
    code = "import sys, core.research.attribution; print('captum' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_app_imports_captum_on_its_main_thread_before_the_worker_runs():
    """A lazy first import of captum on the worker thread raced Gradio's matplotlib import on its
    own thread (a CI failure): the page's build imports captum.attr and matplotlib on the calling thread."""
    code = ("import sys; from core.ui.dashboard import build; from core.settings import Settings; "
            "before = 'captum.attr' in sys.modules; build(Settings()); "
            "print(before, 'captum.attr' in sys.modules, 'matplotlib.colors' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "True", "True"], out.stdout + out.stderr


@pytest.mark.parametrize("method", list(A.METHODS))
@pytest.mark.parametrize("name", NAMES)
def test_every_method(name, method, nets):
    model = nets[name]
    model.train()  # attribute must run in eval mode and then restore this
    seen = []
    hook = model.bn1.register_forward_pre_hook(lambda m, i: seen.append(m.training))
    try:
        attr, seconds = A.attribute(model, _x(), method, 3)
    finally:
        hook.remove()
    assert len(seen) >= 1 and not any(seen)  # at least one forward, every one in eval mode
    assert attr.shape == (32, 32, 3) and attr.dtype == np.float32
    assert np.isfinite(attr).all() and np.abs(attr).sum() > 0
    assert isinstance(seconds, float) and seconds > 0
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    model.eval()


@pytest.mark.parametrize("stage", A.STAGES)
def test_grad_cam_stages(stage, nets):
    attr, _ = A.attribute(nets["resnet20"], _x(), "Grad-CAM", 5, stage=stage)
    assert attr.shape == (32, 32, 3) and (attr >= 0).all()
    assert (attr[..., 0] == attr[..., 1]).all() and (attr[..., 0] == attr[..., 2]).all()


def test_state_left_as_found(nets):
    model = nets["plain20"]
    model.layer2.train()  # mixed flags come back exactly
    w = model.linear.weight
    w.grad = torch.ones_like(w)  # a .grad that was there stays untouched
    try:
        A.attribute(model, _x(), "Integrated Gradients", 0, ig_steps=4)
        assert [m.training for m in model.modules()] == \
            [any(m is s for s in model.layer2.modules()) for m in model.modules()]
        assert torch.equal(w.grad, torch.ones_like(w))
        assert all(p.grad is None for p in model.parameters() if p is not w)
    finally:
        w.grad = None
        model.eval()


def test_cache_reuses_objects_and_frees_the_model():
    model = _fresh("resnet20")
    A.attribute(model, _x(), "DeepLift", 1)
    obj = A._CACHE[model]["DeepLift"]
    A.attribute(model, _x(2), "DeepLift", 2)
    assert A._CACHE[model]["DeepLift"] is obj
    ref = weakref.ref(model)
    del model, obj
    gc.collect()
    assert ref() is None


def test_deeplift_complete_through_the_cache():
    """Sum of attributions = f(x) - f(0): DeepLift's hooks reach every ReLU via the weak model."""
    model, x = _fresh("resnet20").double(), _x().double()
    attr, _ = A.attribute(model, x, "DeepLift", 3)
    with torch.no_grad():
        diff = (model(x) - model(torch.zeros_like(x)))[0, 3].item()
    assert attr.sum() == pytest.approx(diff, rel=1e-4, abs=1e-5)


def test_saliency_is_signed_and_calls_on_one_model_are_serialised(nets):
    import threading

    model, x = nets["resnet20b"], _x()
    want = {m: A.attribute(model, x, m, 4)[0] for m in ("Saliency", "DeepLift", "Guided Backprop")}
    assert (want["Saliency"] < 0).any()  # render's `sign` decides what to show
    got = {}
    threads = [threading.Thread(target=lambda m=m: got.update({m: A.attribute(model, x, m, 4)[0]}))
               for m in want for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in want:  # no hooks of one leaked into another
        np.testing.assert_allclose(got[m], want[m], rtol=1e-5, atol=1e-7)


def test_check_params_defaults():
    assert A.check_params("Saliency") == {}
    assert A.check_params("Integrated Gradients") == {"ig_steps": 50}
    assert A.check_params("SmoothGrad") == {"nt_samples": 16, "nt_stdev": 0.15}
    assert A.check_params("Grad-CAM") == {"stage": "layer3"}
    assert A.check_params("Occlusion") == {"occlusion_window": 8, "occlusion_stride": 4}
    # the UI may send every slider: others' parameters are dropped, None means default
    assert A.check_params("Grad-CAM", ig_steps=7, stage=None) == {"stage": "layer3"}
    assert A.check_params("Occlusion", occlusion_window=2) == \
        {"occlusion_window": 2, "occlusion_stride": 2}  # the default stride never exceeds it


def test_check_params_types():
    out = A.check_params("Integrated Gradients", ig_steps=50.0)
    assert out == {"ig_steps": 50} and type(out["ig_steps"]) is int
    assert A.check_params("SmoothGrad", nt_stdev=0)["nt_stdev"] == 0.0
    assert A.check_params("Occlusion", occlusion_window=np.int64(16), occlusion_stride=16.0) == \
        {"occlusion_window": 16, "occlusion_stride": 16}
    for bad in ("abc", "50", 50.5, True, float("nan"), [50]):
        with pytest.raises(A.AttributionError, match="ig_steps"):
            A.check_params("Integrated Gradients", ig_steps=bad)


@pytest.mark.parametrize("method,params,fragment", [
    ("Integrated Gradients", {"ig_steps": 201}, "ig_steps=201 .*1 to 200"),
    ("Integrated Gradients", {"ig_steps": 0}, "ig_steps=0 .*1 to 200"),
    ("SmoothGrad", {"nt_samples": 33}, "nt_samples=33 .*1 to 32"),
    ("SmoothGrad", {"nt_stdev": 1.5}, r"nt_stdev=1.5 .*0.0 to 1.0"),
    ("SmoothGrad", {"nt_stdev": -0.1}, r"nt_stdev=-0.1 "),
    ("Occlusion", {"occlusion_window": 17}, "occlusion_window=17 .*2 to 16"),
    ("Occlusion", {"occlusion_window": 1}, "occlusion_window=1 "),
    ("Occlusion", {"occlusion_stride": 0}, "occlusion_stride=0 .*1 to 16"),
    ("Occlusion", {"occlusion_window": 4, "occlusion_stride": 6}, "occlusion_stride=6 .*window"),
    ("Grad-CAM", {"stage": "layer4"}, "stage='layer4'.*layer1"),
    ("Saliency", {"igsteps": 5}, "igsteps"),
    ("Sailency", {}, "method='Sailency'.*Saliency"),
])
def test_check_params_rejects(method, params, fragment):
    with pytest.raises(A.AttributionError, match=fragment):
        A.check_params(method, **params)


@pytest.mark.parametrize("target", [10, -1, 2.5, "3", None])
def test_bad_target(target, nets):
    with pytest.raises(A.AttributionError, match="target"):
        A.attribute(nets["resnet20"], _x(), "Saliency", target)
    assert issubclass(A.AttributionError, ValueError)


def _image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def _signed():
    a = np.zeros((32, 32, 3), np.float32)
    a[:16] = 1.0
    a[16:] = -1.0
    return a


@pytest.mark.parametrize("display", A.DISPLAYS)
@pytest.mark.parametrize("sign", A.SIGNS)
def test_render_shapes(display, sign):
    out = A.render(np.random.default_rng(1).normal(size=(32, 32, 3)), _image(), display, sign, 96)
    assert out.shape == (96, 96, 3) and out.dtype == np.uint8


def test_render_all_is_red_and_blue():
    out = A.render(_signed(), _image(), "heat map", "all", 64).astype(int)
    r, b = out[..., 0], out[..., 2]
    assert (r[:32] > b[:32] + 100).all() and (b[32:] > r[32:] + 100).all()


def test_render_positive_drops_negatives():
    neg, img = -np.abs(_signed()), _image()
    heat = A.render(neg, img, "heat map", "positive", 32)
    assert (heat == A.INFERNO[0].astype(np.uint8)).all()
    assert (A.render(neg, img, "blend", "positive", 32) == img).all()
    assert (A.render(neg, img, "masked", "absolute", 32) == img).all()  # |a| = 1 everywhere


def test_render_masked_zero_is_black_and_pixels_stay_crisp():
    assert (A.render(np.zeros((32, 32, 3)), _image(), "masked", "all") == 0).all()
    out = A.render(_signed(), _image(), "blend", "absolute", 224)
    assert out.shape == (224, 224, 3)
    assert (out == np.repeat(np.repeat(out[::7, ::7], 7, 0), 7, 1)).all()


def test_render_robust_scale():
    """The 99th percentile, not the max, sets full scale: one hot pixel does not dim the rest."""
    a = np.ones((32, 32, 3), np.float32)
    a[0, 0] = 1000.0
    m = A.scale_map(a, "absolute")
    assert m.max() == 1.0 and (m == 1.0).all()


def test_render_rejects():
    with pytest.raises(A.AttributionError, match="display"):
        A.render(_signed(), _image(), "overlay")
    with pytest.raises(A.AttributionError, match="sign"):
        A.render(_signed(), _image(), sign="negative")
    with pytest.raises(A.AttributionError, match="H x W"):
        A.render(np.zeros((16, 16, 3)), _image())


@pytest.fixture(scope="module")
def deep(one_thread):
    """resnet110, BN-calibrated so an eval-mode forward normalises (a fresh one would not); one thread
    (steady on a shared CPU)."""
    return models.calibrated("resnet110", 0, 8)


@pytest.mark.parametrize("method, params", [("Saliency", {}), ("Integrated Gradients", {"ig_steps": 8}),
                                            ("SmoothGrad", {"nt_samples": 4}), ("Guided Backprop", {}),
                                            ("DeepLift", {}), ("Grad-CAM", {}),
                                            ("Occlusion", {"occlusion_window": 16, "occlusion_stride": 16})])
def test_resnet110_every_method_maps_its_target(deep, method, params):
    """Through 110 layers: a finite, non-zero 32 x 32 x 3 map per method, and another one for another
    target (a method that ignored `target` would give the same map twice)."""
    maps = [A.attribute(deep, _x(), method, t, **params)[0] for t in (3, 5)]
    for attr in maps:
        assert attr.shape == (32, 32, 3) and attr.dtype == np.float32
        assert np.isfinite(attr).all() and np.abs(attr).max() > 0
    assert not np.array_equal(*maps)


def test_resnet110_saliency_is_the_input_gradient(deep):
    x = _x().requires_grad_()
    grad, = torch.autograd.grad(deep(x)[0, 3], x)
    attr, _ = A.attribute(deep, _x(), "Saliency", 3)
    np.testing.assert_allclose(attr, grad[0].permute(1, 2, 0).numpy(), rtol=1e-5, atol=1e-7)


def test_resnet110_integrated_gradients_is_its_path_integral(deep):
    """IG = x * (weighted sum of the target's gradients at a * x), the baseline zeros and the nodes and
    weights of Gauss-Legendre on [0, 1] (Captum's default), computed here with autograd alone. 65 steps:
    more than IG_BATCH, so the internal batching is covered too.

    (Completeness itself is held on the trained resnet20 below: on a fresh resnet110 the path gradients
    are shattered and 50-200 steps leave the sum 2-70% off f(x) - f(0).)"""
    steps = A.IG_BATCH + 1
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, weights = torch.tensor((nodes + 1) / 2, dtype=torch.float32), torch.tensor(weights / 2)
    x = _x()
    path = (alphas[:, None, None, None] * x).requires_grad_()
    grads, = torch.autograd.grad(deep(path)[:, 3].sum(), path)
    want = (x[0] * (weights[:, None, None, None] * grads).sum(0)).permute(1, 2, 0).numpy()
    attr, _ = A.attribute(deep, x, "Integrated Gradients", 3, ig_steps=steps)
    np.testing.assert_allclose(attr, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_resnet110_deeplift_is_complete(deep):
    """Sum of attributions = f(x) - f(0) (rescale rule: exact by construction) through 54 blocks."""
    x = _x()
    attr, _ = A.attribute(deep, x, "DeepLift", 3)
    with torch.no_grad():
        diff = (deep(x) - deep(torch.zeros_like(x)))[0, 3].item()
    assert attr.sum() == pytest.approx(diff, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("example", ["cifar_cat.png", "cifar_ship.png", "photo_cat.jpg"])
def test_integrated_gradients_complete_on_the_shipped_resnet20(example):
    """The shipped resnet20's attributions (50 steps, the app's default) for its predicted class sum to
    the logit change from the mean-colour baseline within 3% (measured: 1.0-1.5%), in float64."""
    from core.engine import checkpoints, data
    from core.serving import images

    ck = checkpoints.load(ROOT / "checkpoints" / "resnet20")
    model = ck.model.double().eval()
    arr, _ = images.load(ROOT / "assets" / "examples" / example)
    x = data.normalize(torch.as_tensor(arr)[None], ck.normalization).double()
    with torch.no_grad():
        logits, base = model(x)[0], model(torch.zeros_like(x))[0]
    target = int(logits.argmax())
    attr, _ = A.attribute(model, x, "Integrated Gradients", target, ig_steps=50)
    diff = (logits - base)[target].item()
    assert diff > 1  # a confident prediction: the tolerance is relative to a real score change
    assert attr.sum() == pytest.approx(diff, rel=0.03)
