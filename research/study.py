"""The paper's CIFAR-10 study over the shipped checkpoints: Table 6, Fig. 6 and Fig. 7 as plain data.

    python -m research.study [--checkpoints DIR] [--data-dir DIR] [--limit N]

results_table(root)   one row per shipped checkpoint folder (paper Table 6): model, kind, layers,
                      params, flops (forward FLOPs per image, summed from introspection.architecture),
                      train_err / test_err (% from metrics.json; the mean over seeds/*.json too, if
                      any), *_std (sample std, NaN for one run), seeds, paper_err, diagnosis.
diagnosis             against the next shallower shipped model of the same kind (plain vs plain,
                      option A vs A, B vs B): "degradation" (train AND test error higher),
                      "overfitting" (train error lower or equal, test error higher), "better" (test
                      error lower), "same" (test error equal), "—" (no shallower model, or an error
                      is missing).
curves(root)          Fig. 6: {name: {"iter", "train_err", "test_err", "kind"}} from history.csv.
layer_responses(...)  Fig. 7: for every 3x3 conv in forward order ("bn1", "layer1.0.bn1",
                      "layer1.0.bn2", ...; 6n+1 of them, 19 for a 20-layer net) the std of the
                      output of the BN that follows it (after BN, before ReLU/addition, as in the
                      paper). Choice: per channel, the population std over all images and positions
                      (N, H, W), then the mean over channels. Sums and sums of squares accumulate in
                      float64 via forward hooks on the BN modules, so any batch size gives the same
                      numbers (held against a direct, hook-free computation by tests/test_study.py).

Measured on the shipped checkpoints, full 10,000-image CIFAR-10 test set, batch 500, 2-core CPU
shared with other jobs (`python -m research.study`): mean layer-response std over the 19 layers
    plain20  0.7927        resnet20  0.6871
i.e. residual responses are smaller than plain ones, the paper's observation. Both models took
~115-130 s of wall time together on that contended machine (~70 s CPU user time); hooks add ~80%
over a plain forward pass. tests/test_study.py: 7 tests, ~8 s.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from engine import checkpoints, models
from engine.evaluate import PAPER_TABLE6

COLUMNS = ["model", "kind", "layers", "params", "flops", "train_err", "test_err", "train_err_std",
           "test_err_std", "seeds", "paper_err", "diagnosis"]
NONE = "—"


def _root(root):
    if root is None:
        from serving import zoo
        return zoo.ROOT
    return Path(root)


def _kind(spec: models.ModelSpec) -> str:
    return "residual" if spec.residual else "plain"


@functools.lru_cache(maxsize=32)
def _size(name: str) -> tuple[int, int]:
    """(params, forward FLOPs per image) of an architecture; they do not depend on the weights."""
    from engine.introspection import architecture
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


def results_table(root=None):
    """Paper Table 6 for the shipped checkpoints (columns: COLUMNS); an empty frame if none."""
    import pandas as pd

    rows = []
    for folder in checkpoints.list_folders(_root(root)):
        src = checkpoints.readable(folder)
        try:
            config = checkpoints.read_json(src / checkpoints.CONFIG)
            metrics = checkpoints.read_json(src / checkpoints.METRICS)
            spec = models.get_spec(config["model"])
        except (checkpoints.CheckpointError, KeyError):
            continue  # a broken folder is zoo's problem to report, not a reason to lose the table
        runs = [metrics] + [json.loads(p.read_text()) for p in sorted((src / "seeds").glob("*.json"))]
        train, train_std = _stats([_num(m.get("train_error_pct")) for m in runs])
        test, test_std = _stats([_num(m.get("test_error_pct")) for m in runs])
        params, flops = _size(spec.name)
        rows.append({"model": spec.name, "kind": _kind(spec), "layers": spec.depth, "params": params,
                     "flops": flops, "train_err": train, "test_err": test, "train_err_std": train_std,
                     "test_err_std": test_std, "seeds": len(runs),
                     "paper_err": PAPER_TABLE6.get(spec.name, math.nan), "_shortcut": spec.shortcut})
    for row in rows:
        shallower = [r for r in rows if r["_shortcut"] == row["_shortcut"] and r["layers"] < row["layers"]]
        row["diagnosis"] = _verdict(row, max(shallower, key=lambda r: r["layers"]) if shallower else None)
    return pd.DataFrame([{c: r[c] for c in COLUMNS} for r in rows], columns=COLUMNS)


def diagnosis_text(df) -> str:
    """Markdown: what degradation and overfitting mean, and each row's verdict with its numbers."""
    lines = ["**Degradation vs overfitting.** Compare each net with the next shallower shipped net of "
             "the same kind. *Degradation* (the paper's problem): the deeper net has **higher training "
             "error** as well as higher test error, so it is not overfitting: it fits the training set "
             "worse, an optimisation difficulty. *Overfitting*: training error lower (or equal) but test "
             "error higher: the extra capacity memorises rather than generalises.", ""]
    if df is None or len(df) == 0:
        return "\n".join(lines + ["_No checkpoints shipped yet._"])
    by_key = {}
    for r in df.to_dict("records"):
        spec = models.get_spec(r["model"])
        prev = [p for p in by_key.get(spec.shortcut, []) if p["layers"] < r["layers"]]
        by_key.setdefault(spec.shortcut, []).append(r)
        ref = f" vs `{max(prev, key=lambda p: p['layers'])['model']}`" if prev else " (nothing shallower shipped)"
        lines.append(f"- `{r['model']}`{ref}: train {_fmt(r['train_err'])}, test {_fmt(r['test_err'])} "
                     f"→ **{r['diagnosis']}**")
    return "\n".join(lines)


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}%"


def curves(root=None) -> dict[str, dict]:
    """Fig. 6: {name: {"iter", "train_err", "test_err" (lists, None where not logged), "kind"}}
    for every shipped folder with a history.csv."""
    out = {}
    for folder in checkpoints.list_folders(_root(root)):
        src = checkpoints.readable(folder)
        try:
            spec = models.get_spec(checkpoints.read_json(src / checkpoints.CONFIG)["model"])
        except (checkpoints.CheckpointError, KeyError):
            continue
        rows = checkpoints.read_history(src)
        if not rows:
            continue
        out[spec.name] = {"iter": [r.get("iter") for r in rows],
                          "train_err": [r.get("train_err") for r in rows],
                          "test_err": [r.get("test_err") for r in rows], "kind": _kind(spec)}
    return out


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


def precompute_layer_responses(root=None, data_dir=None, limit: int | None = None) -> dict:
    """{name: {"layers": [...], "std": [...]}} for every shipped model over the CIFAR-10 test set
    (the first `limit` images if given), each normalised with its checkpoint's own normalisation."""
    from engine.data import load_split, normalize

    folders = checkpoints.list_folders(_root(root))
    if not folders:
        return {}
    images, _ = load_split("test", data_dir)
    x = torch.from_numpy(images[:limit] if limit else images)
    out = {}
    for folder in folders:
        try:
            ck = checkpoints.load(folder)
        except checkpoints.CheckpointError:
            continue
        res = layer_responses(ck.model, normalize(x, ck.normalization))
        out[ck.name] = {"layers": [n for n, _ in res], "std": [s for _, s in res]}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m research.study", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    from serving import zoo
    zoo.set_threads()
    df = results_table(args.checkpoints)
    print(df.to_string(index=False))
    print(diagnosis_text(df))
    t = time.time()
    resp = precompute_layer_responses(args.checkpoints, args.data_dir, args.limit)
    for name, d in resp.items():
        print(f"{name:12s} mean layer-response std {sum(d['std']) / len(d['std']):.4f} over {len(d['std'])} layers")
    print(f"layer responses: {time.time() - t:.1f} s")


if __name__ == "__main__":
    main()
