"""The paper's CIFAR-10 study as plain data: Table 6, Fig. 6 and Fig. 7.

Pure functions: records (core.engine.checkpoints.records: each folder's spec, metrics, seeds, history)
or a model and images in, rows and lists out; the I/O is core/research/precompute.py's and the app's.

results_table(records)  one row per record (paper Table 6), columns COLUMNS: model, kind, layers,
                        params, flops (forward FLOPs per image, from core.engine.introspection), and, in %
                        from metrics.json (the mean over seeds if there are several):
                        train_err_running ("train error (running, augmented, as in Fig. 6)": the
                        running error over the last eval interval's augmented train-mode batches),
                        train_err_eval ("train error (eval pass, clean)": an eval-mode pass over
                        the un-augmented training set), test_err; *_std (sample std over seeds, NaN
                        for one run), seeds (the runs counted: the main one, and every seed run
                        that finished with its recipe, iterations, data and setup), iterations,
                        setup (core.engine.evaluate.setup: ranks × images per rank, BN scope),
                        paper_err, reference (the next shallower record with the same shortcut
                        option: plain vs plain, A vs A, B vs B),
                        diagnosis and basis (core/research/verdict.py: training error first, a
                        tolerance from seeds or the binomial, comparable runs only). HEADERS names
                        the columns for display (core.engine.evaluate.MEASURES for the errors).
curves(records)         Fig. 6: {name: {"iter", "train_err", "test_err", "kind", "depth"}} from the
                        histories (train_err there is the running error, as in Fig. 6).
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

from core.engine import models
from core.engine.data import TEST_IMAGES
from core.engine.evaluate import MEASURES, results_df, setup
from core.engine.introspection import architecture
from core.research import verdict

COLUMNS = ["model", "kind", "layers", "params", "flops", "train_err_running", "train_err_eval", "test_err",
           "train_err_eval_std", "test_err_std", "seeds", "iterations", "setup", "paper_err", "reference",
           "diagnosis", "basis"]
HEADERS = {**MEASURES, "train_err_eval_std": "train error (eval pass, clean): std over seeds",
           "test_err_std": "test error: std over seeds", "paper_err": "paper test error (Table 6)"}


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


def _stats(values: list[float]) -> tuple[float, float, int]:
    """(mean, sample std, count) ignoring NaNs; std is NaN with fewer than two values."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return math.nan, math.nan, 0
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, math.nan, 1
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)), len(vals)


def _matches(main: dict, seed: dict) -> bool:
    """A seed run counts only if finished (where recorded) and trained as the main run was: the same
    recipe, iterations and data, and the same setup (core.engine.evaluate.setup, so a run from before the
    "parallel" record and a one-process run that records it are both 1×128). A key the seed does not
    record is taken to be the main run's."""
    return seed.get("finished", True) is True and setup({**main, **seed}) == setup(main) and all(
        seed.get(k, main.get(k)) == main.get(k) for k in ("recipe", "iterations", "data"))


def _row(rec) -> dict:
    """One results row, and under "_compare" what core/research/verdict.py reads about the run."""
    spec, m = rec.spec, rec.metrics
    runs = [m] + [s for s in rec.seeds if _matches(m, s)]
    running, _, _ = _stats([_num(r.get("train_error_running_pct")) for r in runs])
    train, train_std, train_n = _stats([_num(r.get("train_error_pct")) for r in runs])
    test, test_std, test_n = _stats([_num(r.get("test_error_pct")) for r in runs])
    params, flops = _size(spec.name)
    run = {"model": spec.name, "iterations": m.get("iterations"), "setup": setup(m)}
    return {**run, "kind": spec.kind, "layers": spec.depth, "params": params, "flops": flops,
            "train_err_running": running, "train_err_eval": train, "test_err": test,
            "train_err_eval_std": train_std, "test_err_std": test_std, "seeds": len(runs),
            "_shortcut": spec.shortcut,
            "_compare": {**run, "train": train, "test": test, "train_std": train_std, "test_std": test_std,
                         "train_runs": train_n, "test_runs": test_n, "n_test": TEST_IMAGES,
                         "n_train": (m.get("data") or {}).get("train_images", 50_000),
                         "finished": m.get("finished"), "recipe": m.get("recipe")}}


def results_table(records):
    """Paper Table 6 for core.engine.checkpoints.records(...) (columns: COLUMNS); an empty frame if none."""
    rows = [_row(rec) for rec in records]
    for row in rows:
        shallower = [r for r in rows if r["_shortcut"] == row["_shortcut"] and r["layers"] < row["layers"]]
        ref = max(shallower, key=lambda r: r["layers"]) if shallower else None
        row["reference"] = ref["model"] if ref else None
        row.update(verdict.compare(row["_compare"], ref["_compare"] if ref else None))
    return results_df(rows, COLUMNS)


def curves(records) -> dict[str, dict]:
    """Fig. 6: {name: {"iter", "train_err", "test_err" (lists, None where not logged), "kind", "depth"}}
    for every record with a history; train_err is the history's: the running error over the augmented
    train-mode batches since the previous log (the train error (running, augmented, as in Fig. 6))."""
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
