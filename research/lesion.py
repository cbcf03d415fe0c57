"""Lesion study (Veit et al. 2016, "Residual networks behave like ensembles of relatively shallow
networks"): delete blocks of a trained net at test time and measure the test error.

    blocks(model)                  -> ["layer1.0", ..., "layer3.2"] in forward order
    lesioned(model, drop)          -> a deep copy with the blocks in `drop` deleted (see Lesioned);
                                      the model passed in is never touched
    lesion_errors(model, x, y, norm)  -> {"baseline": err %, "single": [(block, err %), ...]}
    random_lesions(model, x, y, norm, ks, draws, seed) -> {"k", "mean", "std", "draws"}
    study(model, x, y, norm, ...)  -> both of the above, and the model's kind, for the Lesions view

Random lesions: for each k, `draws` random k-subsets of blocks (numpy default_rng(seed)); where
there are no more than `draws` distinct k-subsets, all of them are used once (exact mean). std is
the population std (ddof=0) over the subsets.

What "deleting" a block means is Lesioned's docstring (and the Lesions tab's text, ui/text.py).
The results for the shipped nets are in assets/research/lesion.json and the README.
"""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np
from torch import nn

from engine import models
from engine.evaluate import error_rate


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
            if cin == cout and stride == 1:
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
    """Test error (%) of the intact model and after deleting each single block in turn."""
    single = [(b, error_rate(lesioned(model, [b]), images_u8, labels, norm, batch_size=batch_size))
              for b in blocks(model)]
    return {"baseline": error_rate(model, images_u8, labels, norm, batch_size=batch_size), "single": single}


def default_ks(model) -> list[int]:
    return list(range(1, min(10, len(blocks(model))) + 1))


def random_lesions(model, images_u8, labels, norm, ks=None, draws: int = 10, seed: int = 0,
                   batch_size: int = 500) -> dict:
    """Error (%) after deleting k random blocks: mean and std over `draws` subsets per k.

    ks None means 1..min(10, number of blocks). Where C(n, k) <= draws every k-subset is used once.
    """
    names = blocks(model)
    ks = default_ks(model) if ks is None else [int(k) for k in ks]
    rng = np.random.default_rng(seed)
    out = {"k": [], "mean": [], "std": [], "draws": []}
    for k in ks:
        if not 0 <= k <= len(names):
            raise ValueError(f"k={k} outside 0..{len(names)}")
        if math.comb(len(names), k) <= draws:
            subsets = [list(c) for c in itertools.combinations(names, k)]
        else:
            subsets = [[names[i] for i in sorted(rng.choice(len(names), size=k, replace=False))]
                       for _ in range(draws)]
        errs = [error_rate(lesioned(model, s), images_u8, labels, norm, batch_size=batch_size) for s in subsets]
        out["k"].append(k)
        out["mean"].append(float(np.mean(errs)))
        out["std"].append(float(np.std(errs)))
        out["draws"].append(len(subsets))
    return out


def study(model, images_u8, labels, norm, ks=None, draws: int = 10, seed: int = 0) -> dict:
    """{"kind", "baseline", "single", "random"}: lesion_errors and random_lesions of one model."""
    res = lesion_errors(model, images_u8, labels, norm)
    res["random"] = random_lesions(model, images_u8, labels, norm, ks=ks, draws=draws, seed=seed)
    res["kind"] = model.spec.kind
    return res
