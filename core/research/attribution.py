"""Attributions for the dashboard: seven Captum methods behind one call, and a renderer.

"Captum objects hold the model, calls take the data": attribute(model, x, method, target, **params)
builds the Captum object for (model, method) once, caches it (a WeakKeyDictionary keyed by the
model; the object holds it only through a weak reference, so a dropped model is freed), runs it on a
1x3x32x32 normalised input. It returns an H x W x 3 float32 map and the seconds it took.
`render` turns a map and the 32x32 image the net saw into a size x size RGB picture (numpy + PIL).
Only this module imports Captum, and lazily: `import core.research.attribution` loads numpy, not torch
or Captum (held by tests/test_attribution_api.py); captum.attr is imported on the first attribution,
or by `import_captum()`, which the app calls on its main thread before any worker job can run.

Server-side bounds (LIMITS) and defaults (check_params), held by tests/test_attribution_api.py:
    ig_steps 1..200 (50)      nt_samples 1..32 (16)     nt_stdev 0.0..1.0 (0.15, in normalised
    occlusion_window 2..16 (8), occlusion_stride 1..16, <= window (4 or window) pixel units)
    stage: layer1 | layer2 | layer3 (layer3)            target: int in range(num_classes)
Baselines: zeros in normalised space (the dataset mean colour) for IG, DeepLift and Occlusion.

Latency: bench/app_latency.py measures Grad-CAM, Saliency and Integrated Gradients on resnet110;
docs/measurements.md holds the results and the targets. The first call of a batch shape pays oneDNN's
set-up; Integrated Gradients runs its path inputs IG_BATCH at a time; Occlusion evaluates
OCCLUSION_BATCH occluded copies per forward pass.
"""
from __future__ import annotations

import functools
import importlib
import math
import numbers
import threading
import time
import warnings
import weakref
from dataclasses import dataclass

import numpy as np

# Captum's notices that it hooks the model's activations for one call and removes the hooks after it:
# true of every DeepLift and Guided Backprop call here, so they say nothing (the app logged them on every
# call). Only these two messages are silenced; any other warning from Captum still shows.
CAPTUM_NOTICES = ("Setting backward hooks on ReLU activations", "Setting forward, backward hooks and attributes on non-linear")
for _notice in CAPTUM_NOTICES:
    warnings.filterwarnings("ignore", message=_notice, category=UserWarning)


@dataclass(frozen=True)
class MethodInfo:
    summary: str  # one sentence for the UI
    params: tuple[str, ...]  # the check_params names this method uses


METHODS: dict[str, MethodInfo] = {
    "Saliency": MethodInfo("The gradient of the class score with respect to each input pixel: "
                           "where a small change moves the score most.", ()),
    "Integrated Gradients": MethodInfo("Gradients averaged along a straight path from the mean "
                                       "colour image to the input; they sum to the score change.",
                                       ("ig_steps",)),
    "SmoothGrad": MethodInfo("Saliency averaged over noisy copies of the input, which removes "
                             "much of the gradient's speckle.", ("nt_samples", "nt_stdev")),
    "Guided Backprop": MethodInfo("Gradients with every ReLU passing back only positive signal: "
                                  "sharp, edge-like maps.", ()),
    "DeepLift": MethodInfo("Each pixel's share of the score change from the mean colour image, "
                           "propagated layer by layer (rescale rule).", ()),
    "Grad-CAM": MethodInfo("A stage's feature maps weighted by their average gradient: a coarse "
                           "map of the regions the class relies on.", ("stage",)),
    "Occlusion": MethodInfo("How much the score drops when a square patch is greyed out (set to "
                            "the mean colour), slid over the image.",
                            ("occlusion_window", "occlusion_stride")),
}
STAGES = ("layer1", "layer2", "layer3")
LIMITS: dict[str, tuple] = {"ig_steps": (1, 200), "nt_samples": (1, 32), "nt_stdev": (0.0, 1.0),
                            "occlusion_window": (2, 16), "occlusion_stride": (1, 16)}
DEFAULTS = {"ig_steps": 50, "nt_samples": 16, "nt_stdev": 0.15, "occlusion_window": 8,
            "occlusion_stride": 4, "stage": "layer3"}
DISPLAYS = ("heat map", "blend", "masked")
SIGNS = ("positive", "absolute", "all")
IG_BATCH = 64  # internal_batch_size: IG's path inputs are run at most this many at a time
OCCLUSION_BATCH = 64  # perturbations_per_eval: occluded copies per forward pass


class AttributionError(ValueError):
    """User-caused: unknown method, parameter out of range (message names the parameter, its value
    and the allowed range)."""


def _choice(name, value, options):
    if not isinstance(value, str) or value not in options:
        raise AttributionError(f"{name}={value!r} is not allowed; choose one of: "
                               f"{', '.join(map(repr, options))}")
    return value


def _number(name, value, lo, hi):
    """A number in [lo, hi], an int where lo is one. Whole floats (50.0, as UI sliders send)
    count as ints; bools, strings and NaN do not count as numbers."""
    whole = isinstance(lo, int)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
            and math.isfinite(value) and (not whole or float(value).is_integer()):
        value = int(value) if whole else float(value)
        if lo <= value <= hi:
            return value
        raise AttributionError(f"{name}={value} is out of range; allowed: {lo} to {hi}")
    kind = "a whole number" if whole else "a number"
    raise AttributionError(f"{name}={value!r} must be {kind} from {lo} to {hi}")


def check_params(method: str, **params) -> dict:
    """The validated parameters `method` uses, defaults filled in (a None value means default).

    Parameters that other methods use are accepted and dropped (the UI may send every slider);
    unknown names, wrong types and out-of-range values raise AttributionError.
    """
    _choice("method", method, tuple(METHODS))
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise AttributionError(f"unknown parameter(s) {', '.join(unknown)}; "
                               f"known: {', '.join(DEFAULTS)}")
    out = {}
    for name in METHODS[method].params:
        value = params.get(name)
        if value is None and name == "occlusion_stride":  # default 4, or the window if smaller
            value = min(DEFAULTS[name], out["occlusion_window"])
        value = DEFAULTS[name] if value is None else value
        out[name] = _choice(name, value, STAGES) if name == "stage" else \
            _number(name, value, *LIMITS[name])
    if method == "Occlusion" and out["occlusion_stride"] > out["occlusion_window"]:
        raise AttributionError(f"occlusion_stride={out['occlusion_stride']} is out of range; "
                               f"allowed: 1 to occlusion_window={out['occlusion_window']} "
                               "(a larger stride leaves pixels never occluded)")
    return out


def _num_classes(model) -> int:
    spec = getattr(model, "spec", None)
    if spec is not None:
        return spec.num_classes
    return model.linear.out_features


def _check_target(model, target) -> int:
    return _number("target", target, 0, _num_classes(model) - 1)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> _entry(model)
_CACHE_LOCK = threading.Lock()


@functools.cache
def _weak_model_class():
    import torch

    class WeakModel(torch.nn.Module):
        """What the cached Captum objects hold: the model by weak reference (a WeakKeyDictionary
        value that held its key strongly would keep it alive forever). Captum calls it, hooks
        it (DeepLift) and walks the model's modules through apply (DeepLift, Guided Backprop)."""

        def __init__(self, model):
            super().__init__()
            self.ref = weakref.ref(model)

        def forward(self, x):
            return self.ref()(x)

        def apply(self, fn):
            self.ref().apply(fn)
            return self
    return WeakModel


def _entry(model) -> dict:
    """The model's cache entry: {"lock": a lock, method or ("Grad-CAM", stage): Captum object}."""
    with _CACHE_LOCK:
        if model not in _CACHE:
            _CACHE[model] = {"lock": threading.Lock()}
        return _CACHE[model]


def import_captum():
    """Import captum.attr (and with it matplotlib) now, on the calling thread. Left to the first
    attribution, that import runs on the worker thread while Gradio imports matplotlib on its own
    thread around every event (gradio.utils.MatplotlibBackendMananger); two threads importing
    matplotlib at once can each find the other's module half-initialised ("cannot import name
    'Colormap' from partially initialized module 'matplotlib.colors'"), which failed a CI run and
    every attribution after it. Paid once at app start (the cost: docs/measurements.md)."""
    importlib.import_module("captum.attr")


def _captum(per_model: dict, model, method: str, stage: str):
    """The cached Captum object for (model, method[, stage])."""
    key = (method, stage) if method == "Grad-CAM" else method
    if key not in per_model:
        from captum import attr as ca  # slow to import: only when the first map is asked for

        m = _weak_model_class()(model)
        per_model[key] = {
            "Saliency": lambda: ca.Saliency(m),
            "Integrated Gradients": lambda: ca.IntegratedGradients(m),
            "SmoothGrad": lambda: ca.NoiseTunnel(ca.Saliency(m)),
            "Guided Backprop": lambda: ca.GuidedBackprop(m),
            "DeepLift": lambda: ca.DeepLift(m),
            "Grad-CAM": lambda: ca.LayerGradCam(m, getattr(model, stage)),
            "Occlusion": lambda: ca.Occlusion(m),
        }[method]()
    return per_model[key]


def _run(obj, method: str, x, target: int, p: dict):
    if method == "Saliency":  # signed gradients: render's `sign` chooses what to show
        return obj.attribute(x, target=target, abs=False)
    if method == "Guided Backprop":
        return obj.attribute(x, target=target)
    if method == "Integrated Gradients":
        return obj.attribute(x, baselines=0.0, target=target, n_steps=p["ig_steps"],
                             internal_batch_size=IG_BATCH)
    if method == "SmoothGrad":
        return obj.attribute(x, nt_type="smoothgrad", nt_samples=p["nt_samples"],
                             nt_samples_batch_size=p["nt_samples"], stdevs=p["nt_stdev"],
                             target=target, abs=False)  # mean of signed gradients (Smilkov)
    if method == "DeepLift":
        return obj.attribute(x, baselines=0.0, target=target)
    if method == "Occlusion":
        w, s = p["occlusion_window"], p["occlusion_stride"]
        return obj.attribute(x, sliding_window_shapes=(3, w, w), strides=(3, s, s), baselines=0.0,
                             target=target, perturbations_per_eval=OCCLUSION_BATCH)
    from captum.attr import LayerAttribution  # Grad-CAM: 1 x 1 x h x w -> 1 x 3 x H x W

    cam = obj.attribute(x, target=target, relu_attributions=True)
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return cam.expand(-1, 3, -1, -1)


def attribute(model, x, method: str, target: int, **params) -> tuple[np.ndarray, float]:
    """(H x W x 3 float32 attribution, seconds) of class `target` for x, 1x3x32x32 normalised.

    Runs in eval mode and restores every module's training flag; parameter .grad is left as found.
    Calls on one model are serialised (DeepLift and Guided Backprop hook it while they run); do
    not run other forwards on the same model from another thread meanwhile.
    """
    import torch

    p = check_params(method, **params)
    target = _check_target(model, target)
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[:2] != (1, 3):
        raise AttributionError(f"x must be a 1x3xHxW tensor, got {getattr(x, 'shape', type(x))}")
    param = next(model.parameters())
    x = x.detach().to(param.device, param.dtype).clone()
    if method != "Occlusion":  # gradient methods: saves Captum a warning per call
        x.requires_grad_()
    entry = _entry(model)
    with entry["lock"]:
        obj = _captum(entry, model, method, p.get("stage", DEFAULTS["stage"]))
        flags = [(m, m.training) for m in model.modules()]
        no_grad = [q for q in model.parameters() if q.grad is None]
        model.eval()
        try:
            with torch.enable_grad():
                t0 = time.perf_counter()
                attr = _run(obj, method, x, target, p)
                out = attr[0].detach().permute(1, 2, 0).float().cpu().numpy()
                seconds = time.perf_counter() - t0
        finally:
            for m, flag in flags:
                m.training = flag
            for q in no_grad:
                q.grad = None
    return np.ascontiguousarray(out, dtype=np.float32), seconds


# Colour maps: anchors at even steps over [0, 1], linearly interpolated in RGB.
INFERNO = np.array([[0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
                    [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164]], np.float32)
DIVERGING = np.array([[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130],
                      [178, 24, 43]], np.float32)  # blue (-1), white (0), red (+1)
BLEND_ALPHA = 0.75  # colour opacity at full magnitude; it scales with |map|, so 0 shows the image


def colormap(v: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """v in [0, 1] (any shape) -> float RGB in [0, 255], shape v.shape + (3,)."""
    pos = np.clip(v, 0.0, 1.0) * (len(anchors) - 1)
    i = np.minimum(pos.astype(int), len(anchors) - 2)
    f = (pos - i)[..., None]
    return anchors[i] * (1 - f) + anchors[i + 1] * f


def channel_map(attr: np.ndarray, sign: str) -> np.ndarray:
    """H x W x C -> H x W float64, unscaled: the channel sum ("all"), clipped at 0 ("positive"), or the
    sum of magnitudes ("absolute"). What the pictures show, and the order faithfulness ranks pixels in."""
    _choice("sign", sign, SIGNS)
    a = np.nan_to_num(np.asarray(attr, np.float64))
    a = a[..., None] if a.ndim == 2 else a
    m = np.abs(a).sum(-1) if sign == "absolute" else a.sum(-1)
    return np.maximum(m, 0.0) if sign == "positive" else m


def scale_map(attr: np.ndarray, sign: str) -> np.ndarray:
    """H x W x C -> H x W in [-1, 1] (in [0, 1] unless sign="all"): channel_map, robust scale."""
    m = channel_map(attr, sign)
    mag = np.abs(m)
    scale = np.percentile(mag, 99)
    scale = scale if scale > 0 else mag.max()  # sparse maps: fewer than 1% non-zero pixels
    return np.clip(m / scale, -1.0, 1.0) if scale > 0 else np.zeros_like(m)


def render(attr: np.ndarray, image: np.ndarray, display: str = "blend", sign: str = "absolute",
           size: int = 224) -> np.ndarray:
    """size x size x 3 uint8 picture of `attr` (H x W x C, from attribute) over `image` (H x W x 3
    uint8, what the net saw); composed at H x W, then upscaled nearest-neighbour (crisp pixels)."""
    from PIL import Image

    _choice("display", display, DISPLAYS)
    size = _number("size", size, 32, 2048)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or np.asarray(attr).shape[:2] != img.shape[:2]:
        raise AttributionError(f"image must be H x W x 3 and attr H x W (x C) of the same H, W; "
                               f"got {img.shape} and {np.asarray(attr).shape}")
    img = img.astype(np.float32)
    m = scale_map(attr, sign)
    colours = colormap((m + 1) / 2, DIVERGING) if sign == "all" else colormap(m, INFERNO)
    if display == "heat map":
        out = colours
    elif display == "blend":
        alpha = BLEND_ALPHA * np.abs(m)[..., None]
        out = (1 - alpha) * img + alpha * colours
    else:  # masked
        out = img * np.abs(m)[..., None]
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(out).resize((size, size), Image.NEAREST))
