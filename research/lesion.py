"""Lesion study (Veit et al. 2016, "Residual networks behave like ensembles of relatively shallow
networks"): delete blocks of a trained net at test time and measure the test error.

    blocks(model)                  -> ["layer1.0", ..., "layer3.2"] in forward order
    lesioned(model, drop)          -> a deep copy with the blocks in `drop` deleted (see DEFINITION);
                                      the model passed in is never touched
    lesion_errors(model, x, y, norm)  -> {"baseline": err %, "single": [(block, err %), ...]}
    random_lesions(model, x, y, norm, ks, draws, seed) -> {"k", "mean", "std", "draws"}
    precompute(root, data_dir, n_images=2000) -> {name: {...}} for every checkpoint under root

Random lesions: for each k, `draws` random k-subsets of blocks (numpy default_rng(seed)); where
there are no more than `draws` distinct k-subsets, all of them are used once (exact mean). std is
the population std (ddof=0) over the subsets.

Measured here (2-core CPU shared with other jobs, load 3-7; first 2000 CIFAR-10 test images;
shipped checkpoints; `python -m research.lesion`):
    resnet20: baseline 7.60 %, single deletions 13.25 - 77.30 %   (296 s incl. random lesions)
    plain20:  baseline 10.00 %, single deletions 79.20 - 94.95 %  (494 s incl. random lesions)
i.e. plain20 falls to near chance (90 %) whichever block goes; resnet20 degrades far less (which
blocks hurt most was not recorded here: see precompute()'s "single"). precompute() is offline work
(about 13 min for both models on the loaded CPU; roughly 5x faster when the CPU is idle).
"""
from __future__ import annotations

import copy
import itertools
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine import models
from engine.evaluate import error_rate

DEFINITION = """**Deleting block b** (Veit et al. 2016), applied to a copy of the net at test time, no retraining:

* **Residual block** y = ReLU(F(x) + shortcut(x)): drop the residual branch F and keep the shortcut,
  **y = ReLU(shortcut(x))**. With an identity shortcut this is **y = x** (x ≥ 0, it comes out of a
  ReLU); at a stage change with option A it is the stride-2 subsampled, zero-padded x; with
  option B it is y = ReLU(BN(conv1×1(x))).
* **Plain block** (no shortcut, nothing left once F is gone): replaced by the identity when the
  shape is unchanged, and by the option-A map (stride-2 subsampling + zero-padded channels) where it
  changes, so a plain net can be lesioned at all. This is a parameter-free stand-in, not a path the
  plain net ever learned.
"""


class Lesioned(nn.Module):
    """A deleted block: ReLU(shortcut(x)) for a residual block, identity / option-A map for a plain one."""

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


def _err(model, images_u8, labels, norm, batch_size) -> float:
    return error_rate(model, images_u8, labels, norm, batch_size=batch_size)


def lesion_errors(model, images_u8, labels, norm, batch_size: int = 500) -> dict:
    """Test error (%) of the intact model and after deleting each single block in turn."""
    single = [(b, _err(lesioned(model, [b]), images_u8, labels, norm, batch_size)) for b in blocks(model)]
    return {"baseline": _err(model, images_u8, labels, norm, batch_size), "single": single}


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
        errs = [_err(lesioned(model, s), images_u8, labels, norm, batch_size) for s in subsets]
        out["k"].append(k)
        out["mean"].append(float(np.mean(errs)))
        out["std"].append(float(np.std(errs)))
        out["draws"].append(len(subsets))
    return out


def _images(data_dir, n_images: int):
    from engine import data
    from serving import zoo

    try:
        x, y = data.load_split("test", data_dir)
        n = min(n_images, len(y))
        return x[:n], y[:n], f"first {n} of the CIFAR-10 test set"
    except (FileNotFoundError, OSError, data.DataMissingError):
        x, y = zoo.test_sample()
        return x, y, f"the {len(y)} test images of assets/cifar_test_sample.npz (test set not found)"


def precompute(root=None, data_dir=None, n_images: int = 2000, seed: int = 0, draws: int = 10,
               ks=None, log=print) -> dict:
    """{name: {"residual", "baseline", "single", "random", "images", "seconds"}} for each checkpoint
    folder under root (None: serving.zoo.ROOT). Images: the first n_images of the test set.
    ks None: 1..min(10, blocks) per model (see random_lesions)."""
    from engine import checkpoints
    from serving import zoo

    root = Path(zoo.ROOT if root is None else root)
    x, y, which = _images(data_dir, n_images)
    result = {}
    for folder in checkpoints.list_folders(root):
        t0 = time.perf_counter()
        ck = checkpoints.load(folder)
        model, norm = ck.model.eval(), ck.normalization
        res = lesion_errors(model, x, y, norm)
        res["random"] = random_lesions(model, x, y, norm, ks=ks, draws=draws, seed=seed)
        res.update(residual=models.get_spec(ck.name).residual, images=which, n_images=int(len(y)),
                   seconds=round(time.perf_counter() - t0, 1))
        result[ck.name] = res
        if log:
            errs = [e for _, e in res["single"]]
            log(f"{ck.name}: baseline {res['baseline']:.2f} %, single deletions {min(errs):.2f}-{max(errs):.2f} %, "
                f"{res['seconds']} s")
    return result


if __name__ == "__main__":
    from serving import zoo

    zoo.set_threads()
    precompute()
