"""Corruption robustness, plain vs residual: top-1 error of each net under each corruption and severity.

    study(nets, images, labels, sets) -> {"clean": {net: error %}, "errors": {net: {corruption: [5 errors %]}}}

`sets` yields (corruption, severity, uint8 images) in any order, the same images for every net (each
set is made once and shown to all): generated() makes them with engine.corruptions ("CIFAR-10-C-style,
generated here"), official() reads them from the official CIFAR-10-C files (engine.cifar10c).
Errors are in percent of the images, each net in eval mode with its own normalisation.

summary() gives per net the clean error, the mean corruption error (mCE: the plain mean of the error
over every corruption and severity studied; unnormalised, as CIFAR-10-C results usually are, since
Hendrycks & Dietterich's AlexNet normalisation exists for ImageNet only), the gap mCE - clean, and
each corruption's mean over its severities. compare() puts a plain/residual pair side by side.
Held by tests/test_robustness.py: a net that ignores its input has the same error everywhere; the
study's errors equal engine.evaluate.error_rate on the same corrupted images; the summary's
arithmetic, and the official sets are refused when their labels are not the test labels.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from engine import cifar10c, corruptions
from engine.evaluate import error_rate


def errors(model, images_u8, labels, norm) -> float:
    """Top-1 error (%) of `model` on uint8 images, under inference mode (no autograd graph)."""
    with torch.inference_mode():
        return error_rate(model, images_u8, labels, norm, batch_size=500)


def generated(images_u8: np.ndarray, names=None, seed: int = 0):
    """(corruption, severity, images) for each corruption of engine.corruptions (all, or `names`) at
    each severity, seeded with `seed` (the same draws at every severity: engine/corruptions.py)."""
    for name in names or corruptions.CORRUPTIONS:
        for s in corruptions.SEVERITIES:
            yield name, s, corruptions.corrupt(images_u8, name, s, seed)


def official(folder, labels: np.ndarray, names=None):
    """(corruption, severity, images) from the official CIFAR-10-C files in `folder`, the first
    len(labels) images of each; an OfficialSetError if a file's labels are not `labels`."""
    for name in names or cifar10c.available(folder):
        for s in cifar10c.SEVERITIES:
            x, y = cifar10c.load(folder, name, s, len(labels))
            if not np.array_equal(y, labels):
                raise cifar10c.OfficialSetError(f"{folder}/labels.npy: not the CIFAR-10 test labels in order")
            yield name, s, x


def study(nets: dict, images_u8, labels, sets, progress=None) -> dict:
    """nets {name: (model, normalization)}: each net's clean error and its error on every set."""
    out = {"clean": {n: errors(m, images_u8, labels, norm) for n, (m, norm) in nets.items()},
           "errors": {n: {} for n in nets}}
    for corruption, severity, x in sets:
        for n, (m, norm) in nets.items():
            out["errors"][n].setdefault(corruption, [None] * len(corruptions.SEVERITIES))[severity - 1] = \
                errors(m, x, labels, norm)
        if progress:
            progress(corruption, severity)
    return out


def summary(clean: float, errs: dict) -> dict:
    """{"clean", "mce", "gap", "per_corruption": {corruption: mean over severities}, "worst": its
    corruption with the highest mean} from one net's clean error and {corruption: [errors]}."""
    per = {c: float(np.mean(v)) for c, v in errs.items()}
    mce = float(np.mean([e for v in errs.values() for e in v]))
    return {"clean": clean, "mce": mce, "gap": mce - clean, "per_corruption": per, "worst": max(per, key=per.get)}


def compare(result: dict, plain: str, residual: str, n_images: int) -> dict:
    """The pair side by side: each net's summary, the corruptions where the residual net's mean error
    is lower / higher by more than `tolerance` (twice the binomial standard error of a difference
    of two errors near the pair's mCE on n_images each: a difference smaller than that is not read)."""
    s = {n: summary(result["clean"][n], result["errors"][n]) for n in (plain, residual)}
    p = (s[plain]["mce"] + s[residual]["mce"]) / 200
    tol = 200 * math.sqrt(2 * p * (1 - p) / n_images)
    diff = {c: s[residual]["per_corruption"][c] - s[plain]["per_corruption"][c] for c in s[plain]["per_corruption"]}
    return {"summaries": s, "tolerance": tol, "diff": diff,
            "better": [c for c, d in diff.items() if d < -tol], "worse": [c for c, d in diff.items() if d > tol]}
