"""Lesion study (Veit et al. 2016, "Residual networks behave like ensembles of relatively shallow
networks"): delete blocks of a trained net at test time and measure the test error.

    blocks(model)           -> ["layer1.0", ..., "layer3.2"] in forward order
    downsampling(model)     -> the blocks whose output shape differs from their input (stride != 1
                               or in_channels != out_channels, read from block.conv1, never from a
                               name): ["layer2.0", "layer3.0"] for the 3-stage CIFAR nets
    identity_blocks(model)  -> the other blocks, forward order (same shape in and out)
    lesioned(model, drop)   -> a deep copy with the blocks in `drop` deleted (see Lesioned);
                               the model passed in is never touched
    lesion_errors(model, x, y, norm) -> {"baseline": err %, "single": [(block, err %), ...] for every
                               block in forward order, "downsampling": [block, ...]}
    random_lesions(model, x, y, norm, ks, draws, seed) -> {"pool": [block, ...], "k": [int],
                               "mean": [%], "std": [%], "draws": [int], "subsets": [[[block, ...], ...] per k]}
    study(model, x, y, norm, ...) -> lesion_errors + {"random": random_lesions, "kind"}: the Lesions view
    summary(res)            -> {"baseline", "identity": {"min": (block, err), "max": (block, err)},
                               "downsampling": [(block, err), ...]} of a study (also after JSON)

Identity vs downsampling blocks. Veit et al.'s reading (deleting a block removes only the paths
through its branch, so the net degrades smoothly) is about identity blocks: delete one and y = x.
A downsampling block (the first of stages 2 and 3) has no identity path to fall back on. With
option A, deleting it on a residual net leaves y = ReLU(shortcut(x)): stride-2 subsampling and
zero-padded channels, so half the output channels are zero (16 of 32 at layer2.0, 32 of 64 at
layer3.0); with option B it leaves y = ReLU(BN(conv1x1(x))), the learned projection; a plain net's
stand-in is the option-A map there too. So single lesions report every block (with its error),
and list the downsampling blocks apart ("downsampling") for the views to show separately;
random lesions draw from the identity blocks only ("pool"), and record each subset drawn.

Random lesions: for each k, `draws` random k-subsets of the identity blocks (numpy
default_rng(seed)); where there are no more than `draws` distinct k-subsets, all of them are used
once (exact mean). std is the population std (ddof=0) over the subsets.

tests/test_probes.py holds: downsampling() is ["layer2.0", "layer3.0"] for every registered model
at depths 20 and 32; deleting layer2.0 of an option-A resnet zeroes exactly half its output
channels; single covers every block in order; random lesions never draw a downsampling block and
record subsets of size k; results are reproducible (seed) and serialise to JSON.

What "deleting" a block means is Lesioned's docstring (and the Lesions tab's text, core/ui/text.py).
The results for the shipped nets are in assets/research/lesion.json and docs/research.md.
"""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np
from torch import nn

from core.engine import models
from core.engine.evaluate import error_rate


def changes_shape(block: models.BasicBlock) -> bool:
    """True for a downsampling block: stride != 1 or in_channels != out_channels (from block.conv1)."""
    conv = block.conv1
    return tuple(conv.stride) != (1, 1) or conv.in_channels != conv.out_channels


class Lesioned(nn.Module):
    """A deleted block (Veit et al. 2016), at test time, no retraining.

    Residual block y = ReLU(F(x) + shortcut(x)): the branch F goes and the shortcut stays,
    y = ReLU(shortcut(x)); with an identity shortcut that is y = x (x >= 0 comes out of a ReLU).
    Plain block (nothing is left once F goes): the identity where the shape is unchanged, the
    parameter-free option-A map (stride-2 subsampling, zero-padded channels) where it changes."""

    def __init__(self, block: models.BasicBlock):
        super().__init__()
        self.residual = block.shortcut is not None
        if self.residual:
            self.shortcut = block.shortcut
        else:
            cin, cout = block.conv1.in_channels, block.conv1.out_channels
            stride = block.conv1.stride[0]
            if not changes_shape(block):
                self.shortcut = nn.Identity()
            elif stride == 2 and cout >= cin:
                self.shortcut = models.ShortcutA(cin, cout)
            else:
                raise ValueError(f"no parameter-free stand-in for a plain block {cin}->{cout}, stride {stride}")
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.shortcut(x)
        return self.relu(out) if self.residual else out


def blocks(model: nn.Module) -> list[str]:
    """Names of the BasicBlocks in forward order: "layer1.0", ..., "layer3.{n-1}"."""
    return [f"{stage}.{j}" for stage in models.STAGES for j in range(len(getattr(model, stage)))]


def downsampling(model: nn.Module) -> list[str]:
    """The blocks whose output shape differs from their input, forward order (read from the modules)."""
    return [f"{stage}.{j}" for stage in models.STAGES for j, b in enumerate(getattr(model, stage))
            if changes_shape(b)]


def identity_blocks(model: nn.Module) -> list[str]:
    """The blocks that keep their input's shape (blocks minus downsampling), forward order."""
    down = set(downsampling(model))
    return [b for b in blocks(model) if b not in down]


def lesioned(model: nn.Module, drop) -> nn.Module:
    """A deep copy of `model` (eval mode) with the blocks named in `drop` deleted; `model` is unchanged."""
    drop = [drop] if isinstance(drop, str) else list(drop)
    known = set(blocks(model))
    bad = [b for b in drop if b not in known]
    if bad:
        raise KeyError(f"unknown block(s) {bad}; the model has {sorted(known)}")
    out = copy.deepcopy(model).eval()
    for name in drop:
        stage, j = name.split(".")
        seq = getattr(out, stage)
        if not isinstance(seq[int(j)], Lesioned):
            seq[int(j)] = Lesioned(seq[int(j)])
    return out


def lesion_errors(model, images_u8, labels, norm, batch_size: int = 500) -> dict:
    """Test error (%) of the intact model and after deleting each single block in turn (every block,
    forward order), and which of them are downsampling blocks."""
    single = [(b, error_rate(lesioned(model, [b]), images_u8, labels, norm, batch_size=batch_size))
              for b in blocks(model)]
    return {"baseline": error_rate(model, images_u8, labels, norm, batch_size=batch_size), "single": single,
            "downsampling": downsampling(model)}


def default_ks(model) -> list[int]:
    """1..min(10, number of identity blocks)."""
    return list(range(1, min(10, len(identity_blocks(model))) + 1))


def random_lesions(model, images_u8, labels, norm, ks=None, draws: int = 10, seed: int = 0,
                   batch_size: int = 500) -> dict:
    """Error (%) after deleting k random identity blocks: mean and std over `draws` subsets per k.

    ks None means default_ks(model). Where C(n, k) <= draws every k-subset is used once. The pool
    (the identity blocks) and every subset drawn are recorded."""
    pool = identity_blocks(model)
    ks = default_ks(model) if ks is None else [int(k) for k in ks]
    rng = np.random.default_rng(seed)
    out = {"pool": pool, "k": [], "mean": [], "std": [], "draws": [], "subsets": []}
    for k in ks:
        if not 0 <= k <= len(pool):
            raise ValueError(f"k={k} outside 0..{len(pool)} (the number of identity blocks)")
        if math.comb(len(pool), k) <= draws:
            subsets = [list(c) for c in itertools.combinations(pool, k)]
        else:
            subsets = [[pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False))]
                       for _ in range(draws)]
        errs = [error_rate(lesioned(model, s), images_u8, labels, norm, batch_size=batch_size) for s in subsets]
        out["k"].append(k)
        out["mean"].append(float(np.mean(errs)))
        out["std"].append(float(np.std(errs)))
        out["draws"].append(len(subsets))
        out["subsets"].append(subsets)
    return out


def study(model, images_u8, labels, norm, ks=None, draws: int = 10, seed: int = 0) -> dict:
    """{"kind", "baseline", "single", "downsampling", "random"}: lesion_errors and random_lesions."""
    res = lesion_errors(model, images_u8, labels, norm)
    res["random"] = random_lesions(model, images_u8, labels, norm, ks=ks, draws=draws, seed=seed)
    res["kind"] = model.spec.kind
    return res


def summary(res: dict) -> dict:
    """Pure, on a study (or lesion_errors) result, also after a JSON round trip: the best and worst
    identity-block deletions and every downsampling block's error, as (block, err %) pairs;
    identity min/max are None where a net has no identity block."""
    down = set(res.get("downsampling", ()))
    single = [(str(b), float(e)) for b, e in res["single"]]
    ident = [p for p in single if p[0] not in down]
    return {"baseline": float(res["baseline"]),
            "identity": {"min": min(ident, key=lambda p: p[1]) if ident else None,
                         "max": max(ident, key=lambda p: p[1]) if ident else None},
            "downsampling": [p for p in single if p[0] in down]}
