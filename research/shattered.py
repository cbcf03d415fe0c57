"""Shattered gradients (Balduzzi et al. 2017, "The shattered gradients problem").

Along the line of inputs x(t) = (1-t)·a + t·b between two normalised images a, b (3x32x32), for
`points` evenly spaced t in [0, 1], gradient_line computes

    g(t) = d/dt f_c(x(t)) = ∇f_c(x(t)) · (b - a)

where f_c is the logit (pre-softmax output) of class c; c defaults to the class the model predicts
at a. It is computed exactly with autograd (t is the leaf, one backward pass per batch), model in
eval mode (restored afterwards), in the model's dtype. autocorrelation(g) is the normalised
autocorrelation of the mean-removed series (lag 0 = 1). Balduzzi's point: in deep plain nets g
looks like white noise (autocorrelation ~0 from lag 1 on), residual nets' g stays correlated.

at_init(name, seed) builds fresh He-initialised weights with BN running statistics calibrated on
one random N(0,1) batch of 64, so eval-mode forward at init is sane (also deep plain nets).

Measured here (2-core CPU shared with other jobs; a, b = images 0 and 1 of serving.zoo.test_sample();
256 points; c = predicted class at a):
    model                lag-1    lag-5
    plain20 (trained)    0.985    0.897
    resnet20 (trained)   0.982    0.903
    plain110 (init)      0.067   -0.071   <- white noise: shattered
    resnet110 (init)     0.967    0.879
gradient_line time for resnet110 at init (torch threads = 2, CPU otherwise idle): 256 points
1.9 s, 128 points 0.96 s, 64 points 0.58 s (plain110: 1.8 / 0.91 / 0.46 s); on the same CPU loaded
by other jobs, 5-15x slower. 256 points miss the 1 s UI budget, so DEFAULT_POINTS = 128; callers
may ask for more (the numbers in the table above used 256).
"""
from __future__ import annotations

import numpy as np
import torch

from engine import models

DEFAULT_POINTS = 128


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


def at_init(name: str, seed: int = 0) -> models.CifarResNet:
    """A fresh models.build(name) in eval mode, BN running stats set from one random batch of 64.

    The global torch RNG is left as it was (the seed is applied inside torch.random.fork_rng).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = models.build(name)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        saved = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics exactly
        model.train()
        with torch.no_grad():
            model(torch.randn(64, 3, 32, 32))
        for m, mom in zip(bns, saved):
            m.momentum = mom
    return model.eval()


def pair(depth: int, weights: str, points: int = DEFAULT_POINTS) -> tuple[dict, list[str]]:
    """The dashboard's view: lines (with autocorrelation) of plain{depth} and resnet{depth} between
    test-sample images 0 and 1, trained (shipped checkpoints) or at init; plus notes on what is missing."""
    from engine import data
    from serving import zoo

    x, _ = zoo.test_sample()
    lines, notes = {}, []
    for name in (f"plain{depth}", f"resnet{depth}"):
        if weights == "trained":
            try:
                served = zoo.get(name)
            except zoo.ModelUnavailable as e:
                notes.append(f"`{name}`: unavailable. {e}")
                continue
            model, norm = served.model, served.normalization
        else:
            model, norm = at_init(name), data.NORMALIZATION
        a, b = data.normalize(torch.as_tensor(x[:2]), norm)
        line = gradient_line(model, a, b, points=points)
        lines[f"{name} ({weights})"] = {**line, "autocorr": autocorrelation(line["g"])}
    return lines, notes


def precompute(depths=(20, 32, 44, 56, 110)) -> dict:
    """{f"{weights}{depth}": {"lines": ..., "notes": ...}} for every depth, at init and trained."""
    return {f"{w}{d}": dict(zip(("lines", "notes"), pair(d, w))) for d in depths for w in ("init", "trained")}


def measure(points: int = 256):  # the numbers in the docstring: python -m research.shattered
    import time

    from engine import checkpoints, data
    from serving import zoo

    zoo.set_threads()
    x, _ = zoo.test_sample()
    xa = data.normalize(torch.as_tensor(x[:2]))
    nets = {n: checkpoints.load(zoo.ROOT / n).model for n in ("plain20", "resnet20") if n in zoo.shipped()}
    nets.update({f"{n} (init)": at_init(n) for n in ("plain110", "resnet110")})
    for name, m in nets.items():
        for p in (points, 128, 64):
            t0 = time.perf_counter()
            line = gradient_line(m, xa[0], xa[1], points=p)
            dt = time.perf_counter() - t0
            if p == points:
                r = autocorrelation(line["g"], 5)
                print(f"{name}: cls {line['cls']} lag1 {r[1]:.3f} lag5 {r[5]:.3f}", end="")
            print(f"  {p} pts {dt:.2f} s", end="")
        print()


if __name__ == "__main__":
    measure()
