"""Shattered gradients (Balduzzi et al. 2017, "The shattered gradients problem").

Along the line of inputs x(t) = (1-t)·a + t·b between two normalised images a, b (3x32x32), for
`points` evenly spaced t in [0, 1], gradient_line computes

    g(t) = d/dt f_c(x(t)) = ∇f_c(x(t)) · (b - a)

where f_c is the logit (pre-softmax output) of class c; c defaults to the class the model predicts
at a. It is computed exactly with autograd (t is the leaf, one backward pass per batch), model in
eval mode (restored afterwards), in the model's dtype. autocorrelation(g) is the normalised
autocorrelation of the mean-removed series (lag 0 = 1). Balduzzi's point: in deep plain nets g
looks like white noise (autocorrelation ~0 from lag 1 on), residual nets' g stays correlated.

A PROXY for Balduzzi et al.'s measurement, not a replication. They fed a scalar input x (a grid of
points on a line) to fully connected nets at initialisation and took dy/dx of the scalar output:
white noise (flat spectrum, autocorrelation ~0 from lag 1) for deep feedforward nets, brown noise
for resnets. Here the nets are the paper's CIFAR convnets, the "input" is a path through image
space between two CIFAR images, the output is one class logit, and trained nets are shown beside
the nets at init; only the autocorrelation is computed (no spectrum). The contrast it shows at
init (plain110 decorrelated, resnet110 correlated) is theirs; the numbers are not comparable.

Fresh nets for the "init" view are init_pair(depth, images_u8): build(name) with seed 0 and BN
statistics from a batch of real CIFAR images (the CALIBRATION images after the line's two, via
core.engine.models.calibrated), so an eval-mode forward at init normalises, also in deep plain nets.
lines() builds the view's data for several nets at once, each entry with its autocorrelation and
kind; pair_lines is the view at one depth, for the stored view and the app's live fallback
alike. DEFAULT_POINTS = 128 is the view's resolution (callers may ask for more). The stored lines
for every depth, at init and trained, are assets/research/shattered.json; their lag-1 values are
quoted in docs/research.md.
"""
from __future__ import annotations

import numpy as np
import torch

from core.engine import models
from core.engine.data import NORMALIZATION, normalize

DEFAULT_POINTS = 128
CALIBRATION_IMAGES = 64  # BN statistics at init, from the images after the line's two ends
CALIBRATION = slice(2, 2 + CALIBRATION_IMAGES)


def init_pair(depth: int, images_u8) -> dict:
    """{name: (fresh model, NORMALIZATION)} for the plain/residual pair at `depth`: seed 0, BN
    statistics from images_u8[CALIBRATION] (real CIFAR images, uint8 N x 3 x 32 x 32; N >= 66)."""
    batch = normalize(torch.as_tensor(images_u8[CALIBRATION]), NORMALIZATION)
    if len(batch) != CALIBRATION_IMAGES:
        raise ValueError(f"BN statistics at init need {CALIBRATION.stop} images, got {len(images_u8)}")
    return {name: (models.calibrated(name, images=batch), NORMALIZATION) for name in models.pair(depth)}


def _as_tensor(x, dtype) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.shape != (3, 32, 32):
        raise ValueError(f"expected a normalised 3x32x32 image, got shape {tuple(x.shape)}")
    return x.to(dtype)


def gradient_line(model, a, b, points: int = DEFAULT_POINTS, cls: int | None = None,
                  batch_size: int = 64) -> dict:
    """{"t": [...], "g": [...], "cls": c}: g(t) = d/dt of logit c at x(t) = (1-t)a + tb, t in [0, 1]."""
    if points < 2:
        raise ValueError("points must be >= 2")
    dtype = next(model.parameters()).dtype
    a, b = _as_tensor(a, dtype), _as_tensor(b, dtype)
    d = b - a
    was_training = model.training
    model.eval()
    try:
        if cls is None:
            with torch.no_grad():
                cls = int(model(a[None]).argmax(1).item())
        ts = torch.linspace(0.0, 1.0, points, dtype=dtype)
        gs = []
        for i in range(0, points, batch_size):
            t = ts[i:i + batch_size].clone().requires_grad_(True)
            x = a[None] + t.view(-1, 1, 1, 1) * d[None]
            out = model(x)[:, cls]
            (g,) = torch.autograd.grad(out.sum(), t)  # samples are independent in eval mode
            gs.append(g.detach())
    finally:
        model.train(was_training)
    g = torch.cat(gs)
    return {"t": ts.tolist(), "g": g.tolist(), "cls": int(cls)}


def autocorrelation(g, max_lag: int = 50) -> list[float]:
    """Normalised autocorrelation r(k) = Σ_i h_i h_{i+k} / Σ_i h_i², h = g - mean(g), k = 0..max_lag.

    max_lag is clipped to len(g) - 1. A constant series gives [1, 0, 0, ...].
    """
    h = np.asarray(g, dtype=np.float64).ravel()
    h = h - h.mean()
    n = len(h)
    max_lag = max(0, min(int(max_lag), n - 1))
    denom = float(h @ h)
    if denom == 0.0 or not np.isfinite(denom):
        return [1.0] + [0.0] * max_lag
    return [float(h[: n - k] @ h[k:]) / denom for k in range(max_lag + 1)]


def pair_lines(nets: dict, images_u8, weights: str, points: int = DEFAULT_POINTS) -> dict:
    """The view at one depth: {f"{name} ({weights})": line} for nets = {name: (model, normalization)},
    between images 0 and 1 of images_u8 (uint8, N x 3 x 32 x 32), each normalised for its net."""
    x = torch.as_tensor(images_u8[:2])
    return lines({f"{name} ({weights})": (model, *normalize(x, norm)) for name, (model, norm) in nets.items()},
                 points)


def lines(nets: dict, points: int = DEFAULT_POINTS) -> dict:
    """{label: gradient_line(model, a, b) + "autocorr" + "kind"} for nets = {label: (model, a, b)},
    a and b being that net's normalised pair of images."""
    out = {}
    for label, (model, a, b) in nets.items():
        line = gradient_line(model, a, b, points=points)
        out[label] = {**line, "autocorr": autocorrelation(line["g"]), "kind": model.spec.kind}
    return out
