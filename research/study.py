"""The paper's CIFAR-10 study as plain data: Table 6, Fig. 6 and Fig. 7.

Pure functions: records (engine.checkpoints.records: each folder's spec, metrics, seeds, history)
or a model and images in, rows and lists out; the I/O is research/precompute.py's and the app's.

results_table(records)  one row per record (paper Table 6), columns COLUMNS: model, kind, layers,
                        params, flops (forward FLOPs per image, from engine.introspection), train_err /
                        test_err (% from metrics.json; the mean over seeds if there are several),
                        *_std (sample std, NaN for one run), seeds, setup (engine.evaluate.setup:
                        ranks × images per rank, BN scope), paper_err, diagnosis.
diagnosis               against the next shallower record with the same shortcut option (plain vs
                        plain, A vs A, B vs B): "degradation" (train AND test error higher),
                        "overfitting" (train error lower or equal, test error higher), "better" (test
                        error lower), "same" (test error equal), "—" (no shallower model, or an error
                        is missing). Held case by case by tests/test_study.py.
curves(records)         Fig. 6: {name: {"iter", "train_err", "test_err", "kind", "depth"}} from the
                        histories.
layer_responses(...)    Fig. 7: for every 3x3 conv in forward order ("bn1", "layer1.0.bn1",
                        "layer1.0.bn2", ...; 6n+1 of them, 19 for a 20-layer net) the std of the
                        output of the BN that follows it (after BN, before ReLU/addition, as in the
                        paper): per channel, the population std over all images and positions
                        (N, H, W), then the mean over channels. Sums and sums of squares accumulate
                        in float64 via forward hooks on the BN modules, so any batch size gives the
                        same numbers (held against a direct, hook-free computation by the tests).
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from engine import models
from engine.evaluate import results_df, setup
from engine.introspection import architecture

COLUMNS = ["model", "kind", "layers", "params", "flops", "train_err", "test_err", "train_err_std",
           "test_err_std", "seeds", "setup", "paper_err", "reference", "diagnosis"]
NONE = "—"


@functools.lru_cache(maxsize=32)
def _size(name: str) -> tuple[int, int]:
    """(params, forward FLOPs per image) of an architecture; they do not depend on the weights."""
    model = models.build(name)
    return models.count_params(model), sum(r["flops"] for r in architecture(model))


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _stats(values: list[float]) -> tuple[float, float]:
    """(mean, sample std) ignoring NaNs; std is NaN with fewer than two values."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return math.nan, math.nan
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def _verdict(row: dict, prev: dict | None) -> str:
    if prev is None:
        return NONE
    tr, te, ptr, pte = row["train_err"], row["test_err"], prev["train_err"], prev["test_err"]
    if any(math.isnan(v) for v in (te, pte)):
        return NONE
    if te < pte:
        return "better"
    if te == pte:
        return "same"
    if math.isnan(tr) or math.isnan(ptr):
        return NONE
    return "degradation" if tr > ptr else "overfitting"


def results_table(records):
    """Paper Table 6 for engine.checkpoints.records(...) (columns: COLUMNS); an empty frame if none."""
    rows = []
    for rec in records:
        spec = rec.spec
        train, train_std = _stats([_num(m.get("train_error_pct")) for m in rec.runs])
        test, test_std = _stats([_num(m.get("test_error_pct")) for m in rec.runs])
        params, flops = _size(spec.name)
        rows.append({"model": spec.name, "kind": spec.kind, "layers": spec.depth, "params": params,
                     "flops": flops, "train_err": train, "test_err": test, "train_err_std": train_std,
                     "test_err_std": test_std, "seeds": len(rec.runs), "setup": setup(rec.metrics),
                     "_shortcut": spec.shortcut})
    for row in rows:
        shallower = [r for r in rows if r["_shortcut"] == row["_shortcut"] and r["layers"] < row["layers"]]
        row["reference"] = max(shallower, key=lambda r: r["layers"])["model"] if shallower else None
        row["diagnosis"] = _verdict(row, max(shallower, key=lambda r: r["layers"]) if shallower else None)
    return results_df(rows, COLUMNS)


def curves(records) -> dict[str, dict]:
    """Fig. 6: {name: {"iter", "train_err", "test_err" (lists, None where not logged), "kind", "depth"}}
    for every record with a history."""
    return {r.spec.name: {"iter": [h.get("iter") for h in r.history],
                          "train_err": [h.get("train_err") for h in r.history],
                          "test_err": [h.get("test_err") for h in r.history], "kind": r.spec.kind,
                          "depth": r.spec.depth}
            for r in records if r.history}


def response_modules(model) -> list[tuple[str, nn.Module]]:
    """(name, BN module) after every 3x3 conv in forward order: "bn1", "layerS.j.bn1", "layerS.j.bn2"."""
    out = [("bn1", model.bn1)]
    for stage in models.STAGES:
        for j, block in enumerate(getattr(model, stage)):
            out += [(f"{stage}.{j}.bn1", block.bn1), (f"{stage}.{j}.bn2", block.bn2)]
    return out


def layer_responses(model, images_normalised: torch.Tensor, batch_size: int = 500) -> list[tuple[str, float]]:
    """[(layer, std)] for each 3x3 conv's BN output: per-channel population std over (N, H, W),
    averaged over channels. Eval mode, no grad; the model's mode is restored and hooks removed."""
    mods = response_modules(model)
    acc = {name: [0.0, 0.0, 0] for name, _ in mods}  # per-channel sum, sum of squares, count

    def hook(name):
        def fn(_m, _inp, out):
            y = out.detach()
            a = acc[name]
            a[0] = a[0] + y.sum(dim=(0, 2, 3), dtype=torch.float64)
            a[1] = a[1] + y.square().sum(dim=(0, 2, 3), dtype=torch.float64)
            a[2] += y.shape[0] * y.shape[2] * y.shape[3]
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in mods]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(images_normalised), batch_size):
                model(images_normalised[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = []
    for name, _ in mods:
        s, ss, n = acc[name]
        if n == 0:
            raise ValueError("layer_responses needs at least one image")
        mean = s / n
        var = (ss / n - mean * mean).clamp_min(0)
        out.append((name, float(var.sqrt().mean())))
    return out
