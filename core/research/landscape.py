"""Loss landscapes along random filter-normalised directions (Li et al. 2018, "Visualizing the loss
landscape of neural nets"): plain nets are chaotic, residual nets convex-looking.

- direction(model, seed): Gaussian noise with each filter (output channel of a conv weight, output row
  of the linear weight) rescaled to the norm of the model's own filter; BN weights/biases and every
  bias get direction 0 (Li et al. ignore them), so only conv/linear weights move.
- line / surface: loss (mean cross-entropy) and error (percent) at theta + a*d1 (+ b*d2).
- Evaluation is in eval mode: BN uses the checkpoint's running statistics, fixed along the path.
  This is what Li et al.'s own code does (tomgoldstein/loss-landscape, evaluation.py: eval_loss
  calls net.eval()), and it is the network as served. Far from theta these fixed statistics no
  longer match the activations, so the loss grows faster than it would with recomputed statistics.
- Every call works on a deep copy of the model: the served model is never touched. no_grad, batch 500.
- LIVE_ALPHAS is the app's live 1-D grid; grid(span, steps) the precomputed 2-D one (the precompute
  driver's defaults are in docs/research.md, their runtimes in docs/measurements.md). The beta = 0 column of a surface is
  exactly line(seed=0): direction 1 of surface() is direction(model, 0) (held by the tests).
- Results carry the model's kind ("plain" / "residual", from its spec) for the figures.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

BATCH = 500


def direction(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """{parameter name: direction tensor}: filter-normalised Gaussian for conv/linear weights, 0 elsewhere."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, p in model.named_parameters():
        w = p.detach().float().cpu()
        if w.dim() <= 1:  # BN weight/bias, conv/linear bias
            out[name] = torch.zeros_like(w)
            continue
        d = torch.randn(w.shape, generator=gen)
        scale = w.flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1).clamp_min(1e-12)
        out[name] = d * scale.view(-1, *([1] * (w.dim() - 1)))
    return out


def _as_tensors(images_norm, labels) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(images_norm) if not torch.is_tensor(images_norm) else images_norm).float()
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels).long()
    return x, y


@torch.no_grad()
def _evaluate(model, x, y) -> tuple[float, float]:
    """(mean cross-entropy, error %) of model on (x, y), in batches of BATCH."""
    loss, wrong = 0.0, 0
    for i in range(0, len(x), BATCH):
        logits = model(x[i:i + BATCH])
        loss += float(F.cross_entropy(logits, y[i:i + BATCH], reduction="sum"))
        wrong += int((logits.argmax(1) != y[i:i + BATCH]).sum())
    return loss / len(x), 100.0 * wrong / len(x)


class _Perturbed:
    """A deep copy of `model` in eval mode whose moving weights can be set to theta + sum c_k d_k."""

    def __init__(self, model, dirs: list[dict[str, torch.Tensor]], device="cpu"):
        # channels_last: faster convs on CPUs with oneDNN (same numbers up to float rounding)
        self.model = copy.deepcopy(model).eval().to(device, memory_format=torch.channels_last)
        params = dict(self.model.named_parameters())
        self.moving = [(params[n], params[n].detach().clone(), [d[n].to(params[n]) for d in dirs])
                       for n in params if any(bool(d[n].any()) for d in dirs)]

    @torch.no_grad()
    def at(self, *coefs: float):
        for p, base, ds in self.moving:
            p.copy_(base)
            for c, d in zip(coefs, ds):
                p.add_(d, alpha=float(c))
        return self.model


def line(model, images_norm, labels, alphas, seed: int = 0, device="cpu") -> dict:
    """1-D slice: {"alpha": [...], "loss": [...], "err": [...] (percent)} at theta + alpha * d(seed)."""
    torch.set_flush_denormal(True)  # per thread: perturbed plain nets produce denormals
    x, y = (t.to(device) for t in _as_tensors(images_norm, labels))
    net = _Perturbed(model, [direction(model, seed)], device)
    out = {"alpha": [float(a) for a in alphas], "loss": [], "err": [], "kind": model.spec.kind}
    for a in out["alpha"]:
        loss, err = _evaluate(net.at(a), x, y)
        out["loss"].append(loss)
        out["err"].append(err)
    return out


def surface(model, images_norm, labels, alphas, betas, seeds=(0, 1), device="cpu") -> dict:
    """2-D slice: {"alpha", "beta", "loss": [[...]], "err": [[...]]}, loss[i][j] at theta + a_i d1 + b_j d2."""
    torch.set_flush_denormal(True)
    x, y = (t.to(device) for t in _as_tensors(images_norm, labels))
    net = _Perturbed(model, [direction(model, s) for s in seeds], device)
    al, be = [float(a) for a in alphas], [float(b) for b in betas]
    loss = [[0.0] * len(be) for _ in al]
    err = [[0.0] * len(be) for _ in al]
    for i, a in enumerate(al):
        for j, b in enumerate(be):
            loss[i][j], err[i][j] = _evaluate(net.at(a, b), x, y)
    return {"alpha": al, "beta": be, "loss": loss, "err": err, "seeds": list(seeds), "kind": model.spec.kind}


def grid(span: float = 1.0, steps: int = 11) -> list[float]:
    """`steps` evenly spaced points over [-span, span]: the axes of a precomputed surface."""
    return np.linspace(-span, span, steps).tolist()


LIVE_ALPHAS = grid(1.0, 13)  # the app's live 1-D line: 13 points over [-1, 1]
