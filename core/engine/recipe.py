"""The paper's recipe (He et al. 2016, Sec. 4.2): every hyperparameter of a run in one dataclass, and
its learning-rate schedule.

SGD, momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 32k and 48k iterations,
stop at 64k; nets of 110+ layers warm up at lr 0.01 until the training error is below 80%, then
return to 0.1. With other `iters` the lr steps stay at 50% and 75%.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    name: str = "paper"
    iters: int = 64_000  # SGD steps; 64k steps x 128 images = about 164 epochs of 50k images
    batch_size: int = 128  # images per step
    lr: float = 0.1  # initial learning rate
    lr_steps: tuple = (0.5, 0.75)  # fractions of iters where lr is divided by 10 (32k, 48k of 64k)
    lr_decay: float = 0.1  # factor at each step
    momentum: float = 0.9
    weight_decay: float = 1e-4  # the paper's 1e-4, here on every parameter (BN and biases too; the paper doesn't say)
    warmup_min_depth: int = 110  # nets this deep warm up...
    warmup_lr: float = 0.01  # ...at this lr...
    warmup_until_err: float = 80.0  # ...until the running train error (%, over warmup_check steps) is below this
    warmup_check: int = 20  # steps between warmup checks
    augment: bool = True  # 4-pixel pad, random 32x32 crop, horizontal flip
    eval_every: int = 500  # steps between history rows and checkpoint saves


RECIPES = {"paper": Recipe()}


def lr_at(recipe: Recipe, it: int, warming_up: bool) -> float:
    """The lr of step `it`. A warmup that never reaches its error target ends at the first lr step."""
    passed = sum(it >= round(f * recipe.iters) for f in recipe.lr_steps)
    if warming_up and passed == 0:
        return recipe.warmup_lr
    return round(recipe.lr * recipe.lr_decay ** passed, 12)
