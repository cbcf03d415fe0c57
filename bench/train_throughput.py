"""Training throughput (img/s) of the project's training path, per model and mode.

    python -m bench.train_throughput [--models resnet20 resnet56 resnet110] [--iters 60] [--device cuda]
    torchrun --standalone --nproc_per_node N -m bench.train_throughput ... [--sync-bn]   # the same, DDP

Runs core.engine.train.train() itself (same loader, augmentation, optimiser and step) on random uint8
images, and reports steady-state img/s: the rate between the middle and the last history rows,
so start-up and torch.compile warm-up are left out. Modes: "eager-fp32" everywhere; on CUDA also
"bf16+channels_last" and, with --compile, "bf16+channels_last+compile". Needs only torch and numpy,
so it runs on the GPU machines. Results are printed as a Markdown table for docs/measurements.md. Under
torchrun every rank trains (core.engine.distributed: batch split over the ranks) and rank 0 reports the
rate of the whole global batch.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from core.engine import distributed
from core.engine.checkpoints import read_history
from core.engine.runs import provenance
from core.engine.train import Options, Recipe, RunSpec, train


def steady_img_s(history, batch_size):
    a, b = history[len(history) // 2 - 1], history[-1]
    return (b["iter"] - a["iter"]) * batch_size / (b["wall_s"] - a["wall_s"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["resnet20", "resnet56", "resnet110"])
    ap.add_argument("--iters", type=int, default=60, help="steps per measurement (even)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (CUDA)")
    ap.add_argument("--sync-bn", action="store_true", help="under torchrun: SyncBatchNorm")
    args = ap.parse_args()
    dist = distributed.from_env(batch_size=args.batch_size, device=args.device, sync_bn=args.sync_bn)
    device = dist.device(args.device)
    if not dist.main:
        sys.stdout = open(os.devnull, "w")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50 * args.batch_size, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, len(x))
    modes = [("eager-fp32", False, False)]
    if args.device == "cuda":
        modes += [("bf16+channels_last", True, False)] + ([("bf16+channels_last+compile", True, True)]
                                                          if args.compile else [])
    recipe = Recipe(iters=args.iters, batch_size=args.batch_size, eval_every=args.iters // 4)
    print(f"device: {provenance(device)['device']}, torch {torch.__version__}, batch {args.batch_size}, "
          f"{args.iters} steps per run, setup {distributed.describe(dist.record(args.batch_size), args.batch_size)}\n")
    print("| model | " + " | ".join(m[0] + " img/s" for m in modes) + " |")
    print("|---|" + "---|" * len(modes))
    for name in args.models:
        cells = []
        for _, fast, comp in modes:
            with tempfile.TemporaryDirectory() as tmp:
                train(RunSpec(name), recipe, (x, y), {"test": (x[:256], y[:256])}, tmp,
                      Options(device=device, train_eval=False, bar=False, fast=fast, compile_model=comp), dist)
                if dist.main:  # the writer: the other ranks' temporary folders stay empty
                    cells.append(f"{steady_img_s(read_history(Path(tmp) / name), args.batch_size):,.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    distributed.close(finished=True)


if __name__ == "__main__":
    main()
