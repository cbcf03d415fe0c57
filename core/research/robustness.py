"""Corruption robustness, plain vs residual: which images each net gets wrong under each corruption and severity.

    study(nets, images, labels, sets) -> {"clean": {net: error %}, "errors": {net: {corruption: [5 errors %]}},
                                          "wrong": {net: {"clean": mask, corruption: [5 masks]}}}

`sets` yields (corruption, severity, uint8 images) in any order, the same images for every net (each
set is made once and shown to all): generated() makes them with core.engine.corruptions ("CIFAR-10-C-style,
generated here"), official() reads them from the official CIFAR-10-C files (core.engine.cifar10c).
Errors are in percent, each net in eval mode with its own normalisation; a mask (pack/unpack:
np.packbits, base64) says which images the net got wrong, so that two nets compare image by image.

summary() gives one net's clean error, its mean corruption error (mCE: the plain mean of the error
over every corruption and severity studied; unnormalised, as CIFAR-10-C results usually are, since
Hendrycks & Dietterich's AlexNet normalisation exists for ImageNet only), the gap mCE - clean, and
each corruption's mean over its severities. compare() puts a plain/residual pair side by side, per
corruption and over all: the residual net's error minus the plain net's (both see the same images:
a paired difference) and its degradation minus the plain net's (each net's error under the
corruption less its own clean error: robustness apart from clean accuracy), each with a 95%
interval from the per-image differences (normal approximation; one interval per row, uncorrected).
Held by tests/test_robustness.py: a net that ignores its input has the same error everywhere; the
study's errors equal core.engine.evaluate.error_rate on the same corrupted images; masks round-trip; the
summary's and comparison's arithmetic on hand-made masks; the official sets are refused when their
labels are not the test labels.
"""
from __future__ import annotations

import base64

import numpy as np
import torch

from core.engine import cifar10c, corruptions
from core.engine.evaluate import wrong_mask

Z95 = 1.959964


def wrong(model, images_u8, labels, norm) -> np.ndarray:
    """Boolean per image: does `model` (switched to eval mode, then restored) get it wrong."""
    with torch.inference_mode():
        return wrong_mask(model, images_u8, labels, norm, batch_size=500).numpy()


def pack(mask: np.ndarray) -> str:
    return base64.b64encode(np.packbits(mask.astype(bool)).tobytes()).decode()


def unpack(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), np.uint8), count=n).astype(bool)


def generated(images_u8: np.ndarray, names=None, seed: int = 0):
    """(corruption, severity, images) for each corruption of core.engine.corruptions (all, or `names`) at
    each severity, seeded with `seed` (the same draws at every severity: core/engine/corruptions.py)."""
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
    """nets {name: (model, normalization)}: each net's clean error and its error on every set, with
    the masks of the images it got wrong."""
    out = {"clean": {}, "errors": {n: {} for n in nets}, "wrong": {n: {} for n in nets}}
    for n, (m, norm) in nets.items():
        w = wrong(m, images_u8, labels, norm)
        out["clean"][n], out["wrong"][n]["clean"] = 100 * float(w.mean()), pack(w)
    blank = [None] * len(corruptions.SEVERITIES)
    for corruption, severity, x in sets:
        for n, (m, norm) in nets.items():
            w = wrong(m, x, labels, norm)
            out["errors"][n].setdefault(corruption, list(blank))[severity - 1] = 100 * float(w.mean())
            out["wrong"][n].setdefault(corruption, list(blank))[severity - 1] = pack(w)
        if progress:
            progress(corruption, severity)
    return out


def summary(clean: float, errs: dict) -> dict:
    """{"clean", "mce", "gap", "per_corruption": {corruption: mean over severities}, "worst": its
    corruption with the highest mean} from one net's clean error and {corruption: [errors]}."""
    per = {c: float(np.mean(v)) for c, v in errs.items()}
    mce = float(np.mean([e for v in errs.values() for e in v]))
    return {"clean": clean, "mce": mce, "gap": mce - clean, "per_corruption": per, "worst": max(per, key=per.get)}


def _interval(d: np.ndarray) -> dict:
    """Mean of per-image differences (in points) with its 95% interval."""
    mean, se = 100 * d.mean(), 100 * d.std(ddof=1) / np.sqrt(len(d))
    return {"diff": float(mean), "low": float(mean - Z95 * se), "high": float(mean + Z95 * se)}


def compare(result: dict, plain: str, residual: str, n_images: int) -> dict:
    """The pair side by side: each net's summary; per corruption (and "all": every corruption and
    severity) the paired differences residual - plain of the error ("error") and of the degradation
    ("degradation": the error less the net's clean error); the corruptions where the residual net
    degrades less / more (interval excluding 0)."""
    s = {n: summary(result["clean"][n], result["errors"][n]) for n in (plain, residual)}

    def wrong_of(net, key):  # the clean mask, or a corruption's 5 masks stacked
        v = result["wrong"][net][key]
        return unpack(v, n_images) if key == "clean" else np.array([unpack(t, n_images) for t in v])
    clean = wrong_of(residual, "clean").astype(float) - wrong_of(plain, "clean")
    per = {c: (wrong_of(residual, c).astype(float) - wrong_of(plain, c)).mean(0)  # per image, over the severities
           for c in s[plain]["per_corruption"]}
    per["all"] = np.mean(list(per.values()), 0)
    rows = {c: {"error": _interval(d), "degradation": _interval(d - clean)} for c, d in per.items()}
    named = [c for c in rows if c != "all"]
    return {"summaries": s, "rows": rows, "clean_diff": s[residual]["clean"] - s[plain]["clean"],
            "better": [c for c in named if rows[c]["degradation"]["high"] < 0],
            "worse": [c for c in named if rows[c]["degradation"]["low"] > 0]}
