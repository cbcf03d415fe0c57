"""What tests/test_distributed.py starts under torchrun: core.engine.train.train on seeded synthetic data
(no CIFAR-10 needed, the same on every rank), with this rank's Dist from the environment, as the
CLI makes it (core.engine.distributed.from_env).

    torchrun --standalone --nproc_per_node 2 tests/ddp_job.py OUT ITERS BATCH EVAL_EVERY [--sync-bn] [--resume]
        [--float64] [--out-per-rank]
"""
import argparse
from pathlib import Path

import torch

from core.engine import distributed
from core.engine.train import Options, Recipe, RunSpec, train


def synthetic(n: int = 1280, seed: int = 0):
    """n uint8 32x32 images and labels, the same for a given seed in every process."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def main():
    ap = argparse.ArgumentParser()
    for name in ("out", "iters", "batch", "eval_every"):
        ap.add_argument(name)
    ap.add_argument("--sync-bn", action="store_true")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--out-per-rank", action="store_true", help="OUT/RANK: as if the ranks shared no disk")
    args = ap.parse_args()
    recipe = Recipe(iters=int(args.iters), batch_size=int(args.batch), eval_every=int(args.eval_every))
    d = distributed.from_env(batch_size=recipe.batch_size, sync_bn=args.sync_bn, timeout_s=60)
    x, y = synthetic()
    out = Path(args.out) / str(d.rank) if args.out_per_rank else args.out
    finished = False
    try:
        train(RunSpec("resnet20", seed=1), recipe, (x, y), {"test": (x[:64], y[:64])}, out,
              Options(resume=args.resume, train_eval=False, bar=False, dtype=torch.float64 if args.float64 else torch.float32), d)
        finished = True
    finally:
        distributed.close(finished)


if __name__ == "__main__":
    main()
