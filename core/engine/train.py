"""Train the paper's CIFAR-10 nets with the paper's recipe; resumable, logged, with provenance.

    python -m core.engine.train --model resnet20 [plain20 ...] [--iters N] [--device cuda] [--out checkpoints/]
    python -m core.engine.train --model resnet110 plain110 --seeds 0 1 2 --pack   # 6 runs in one packed step
    torchrun --standalone --nproc_per_node 2 -m core.engine.train --model resnet56 [--sync-bn]   # 2 x 64, DDP

Recipe "paper" (He et al. 2016, Sec. 4.2): SGD, momentum 0.9, weight decay 1e-4, batch 128, lr 0.1
divided by 10 at 32k and 48k iterations, stop at 64k; nets of 110+ layers warm up at lr 0.01 until
the training error is below 80%, then return to 0.1. With --iters N the lr steps stay at 50% and 75%.

Every --eval-every iterations (500) the history gains a row (iteration, mean train loss and error
over those iterations, test error, lr, wall time) and the whole checkpoint folder is rewritten
atomically, with the optimiser state, so a kill loses at most that many iterations and --resume
continues to the bit-identical result on CPU (tests/test_train.py checks both; on CUDA, cuDNN's
autotuned kernels are not bitwise deterministic, resumed or not).
On CUDA: bf16 autocast, channels_last, optional torch.compile ("reduce-overhead" replays each step as
CUDA graphs); evaluation stays fp32 with TF32 off, so CPU re-evaluation agrees. Needs only torch, numpy, safetensors
(tqdm if present). Several models: one after another, --jobs K processes side by side, or --pack:
runs of one depth in one packed step (core/engine/train_packed.py). --seeds S ...: each model once per seed.
Under torchrun, the ranks train each model together (core/engine/distributed.py: the batch split over
them, BN per rank or --sync-bn, rank 0 writes); --pack and --jobs are then refused.
Training speed on CPU and GPU: bench/train_throughput.py, tools/probe.py and the tables of docs/measurements.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from core.engine import checkpoints, distributed, models, packed
from core.engine.data import DataMissingError, TensorLoader, load_split
from core.engine.distributed import Dist
from core.engine.loop import Member, Options, compile_step, fit
from core.engine.recipe import RECIPES, Recipe
from core.engine.runs import Run, RunSpec, folder_for, optim_state, optim_tensors, run_meta
from core.engine.train_packed import plan, train_packed


class Single:
    """The stepper of one net (core.engine.loop.fit): its nn.Module, or DDP around it, with
    torch.optim.SGD. Under torchrun each rank steps on its share of the batch."""

    k = 1

    def __init__(self, model, net, opt, fn, graphs: bool, n_img: torch.Tensor):
        self.module, self.net, self.opt, self.fn, self.graphs, self.n_img = model, net, opt, fn, graphs, n_img
        self.ghost = None  # a single net never waits for others

    def set_lr(self, lrs: list[float]):
        for g in self.opt.param_groups:
            g["lr"] = lrs[0]

    def step(self, batches, weight):
        x, y = batches[0]
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
        loss, wrong = self.fn(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach().view(1), wrong.view(1)

    def model(self, j: int):
        return self.module

    def state(self, j: int, acc_j: torch.Tensor) -> tuple[dict, list]:
        tensors, groups = optim_tensors(self.opt.state_dict())
        return {**tensors, "acc": acc_j}, groups

    def lr(self, j: int) -> float:
        return self.opt.param_groups[0]["lr"]


def train(spec: RunSpec, recipe: Recipe, train_set, eval_sets: dict, out_dir, options: Options = Options(),
          dist: Dist | None = None) -> dict | None:
    """Train one run (spec: model, seed, folder, default out_dir/name) with `recipe`, as `options`
    say (core.engine.loop.Options); returns the metrics written to its folder's metrics.json (None
    on ranks but 0, and when options.stop_at ends the run before its first save).

    train_set: (uint8 images, labels); eval_sets: {"test": (images, labels), ["val": ...]}.
    dist: this rank of a torchrun launch (core.engine.distributed.from_env); default a single process.
    """
    name, seed, o = spec.name, spec.seed, options
    dtype, compile_model = o.dtype, o.compile_model
    dist = dist or Dist()
    device = torch.device(o.device)
    fast_cuda = device.type == "cuda" and o.fast
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: let cuDNN pick its kernels
    torch.manual_seed(seed)
    model = models.build(name).to(device, dtype)
    if dist.sync_bn:
        model = distributed.sync_batchnorm(model, device)
    if fast_cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay, fused=device.type == "cuda" or None)
    meta = run_meta(device, fast_cuda, compile_model, dist.record(recipe.batch_size))
    with distributed.main_first(dist):  # rank 0 may finish a save that a kill interrupted
        run = Run.open(name, Path(spec.folder or Path(out_dir) / name), recipe, seed, train_set, eval_sets, o.resume,
                       model.spec.depth >= recipe.warmup_min_depth, meta)
    distributed.agree(dist, "where the run stands", "finished" if run.done else run.it,
                      "every rank must read the same checkpoint folder (several machines: --out on a shared disk)")
    if run.done:
        return run.done
    acc = torch.zeros(1, 4, dtype=torch.float64, device=device)  # loss sum, errors, warmup errors, warmup n
    if run.saved is not None:
        run.resume_model(model)
        opt.load_state_dict(optim_state(run.saved, run.groups))
        for p in model.parameters():  # saved contiguous; fused CUDA SGD wants each buffer in its
            st = opt.state.get(p, {})  # parameter's layout (channels_last convs)
            if "momentum_buffer" in st:
                st["momentum_buffer"] = torch.empty_like(p).copy_(st["momentum_buffer"])
        run.note_pack([], None, 1)  # a run packed before now goes on alone: its "packed" record says so
        acc[0] = run.saved["acc"].to(device)
        if not dist.main:  # saved as sums over the ranks (gather_to_main): rank 0 holds them
            acc.zero_()
    loader = TensorLoader(*train_set, batch_size=recipe.batch_size, device=device, augment=recipe.augment,
                          seed=run.seed, memory_format=torch.channels_last if fast_cuda else torch.contiguous_format,
                          shard=dist.shard)
    net = distributed.wrap(model, dist)  # what trains: DDP around the model, or the model itself

    def loss_and_errors(x, y):  # one compiled graph: forward, loss, and the count of wrong answers
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast_cuda):
            logits = net(x.to(dtype))
            return F.cross_entropy(logits, y), (logits.argmax(1) != y).sum()

    fn, graphs = compile_step(loss_and_errors, compile_model, device)
    n_img = torch.tensor(float(recipe.batch_size // dist.world), dtype=torch.float64, device=device)  # this rank's
    model.train()
    stepper = Single(model, net, opt, fn, graphs, n_img)
    return fit([Member(run.folder.name, run, loader)], stepper, recipe, train_set, eval_sets, device, acc,
               o.train_eval, o.bar, dist, stop_at=o.stop_at)[0]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m core.engine.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", nargs="+", required=True, metavar="NAME", choices=models.list_models(),
                    help="one or more of: " + " ".join(models.list_models()))
    ap.add_argument("--recipe", default="paper", choices=list(RECIPES))
    ap.add_argument("--iters", type=int, help="SGD steps (default: the recipe's 64,000)")
    ap.add_argument("--batch-size", type=int, help="images per step (default 128)")
    ap.add_argument("--eval-every", type=int, help="steps between history rows and saves (default 500)")
    seeds = ap.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0, help="one seed; the run goes to OUT/NAME (default 0)")
    seeds.add_argument("--seeds", type=int, nargs="+", metavar="S",
                       help="several seeds per model: seed 0 goes to OUT/NAME, seed S to OUT/seeds/NAME-seedS")
    ap.add_argument("--data-dir", help="folder holding cifar-10-batches-bin/ (default $CIFAR10_DIR, data/)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--out", default=str(checkpoints.DEFAULT_ROOT), help="parent folder of the checkpoint folders")
    ap.add_argument("--resume", action="store_true", help="continue unfinished runs found in --out")
    ap.add_argument("--compile", nargs="?", const="default", default=False, metavar="MODE",
                    choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                    help="torch.compile the model; MODE reduce-overhead replays steps as CUDA graphs")
    ap.add_argument("--fp32", action="store_true", help="on CUDA: no bf16 autocast, no channels_last")
    ap.add_argument("--holdout", action="store_true", help="train on the first 45k images, log val error on the last 5k")
    ap.add_argument("--no-augment", action="store_true", help="train without the paper's augmentation")
    ap.add_argument("--no-train-eval", action="store_true", help="skip the final full training-set evaluation")
    ap.add_argument("--jobs", type=int, default=1, help="train this many models at once, in separate processes")
    ap.add_argument("--pack", action="store_true",
                    help="train runs of the same depth (and shortcut option) together, one packed step for all")
    ap.add_argument("--pack-impl", default="grouped", choices=list(packed.IMPLS),
                    help="grouped convolutions (any mix) or torch.func.vmap (one kind per pack)")
    ap.add_argument("--pack-size", type=int, help="at most this many runs per pack (default: all that fit)")
    ap.add_argument("--sync-bn", action="store_true",
                    help="under torchrun: BN statistics over the whole batch (SyncBatchNorm), not per rank")
    ap.add_argument("--dist-timeout", type=float, default=distributed.TIMEOUT_S, metavar="S",
                    help=f"under torchrun: how long a rank waits for the others, at the rendezvous and in every "
                         f"exchange (default {distributed.TIMEOUT_S} s)")
    return ap.parse_args(argv)


def make_recipe(args) -> Recipe:
    overrides = {"iters": args.iters, "batch_size": args.batch_size, "eval_every": args.eval_every}
    recipe = dataclasses.replace(RECIPES[args.recipe], **{k: v for k, v in overrides.items() if v is not None})
    return dataclasses.replace(recipe, augment=False) if args.no_augment else recipe


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.pack and args.jobs > 1:
        sys.exit("error: --pack trains in one process; use --pack or --jobs, not both")
    if distributed.launched() and (args.pack or args.jobs > 1):
        sys.exit("error: --pack and --jobs do not compose with several torchrun ranks: under torchrun "
                 "the ranks train one model at a time together")
    if args.jobs > 1 and len(args.model) > 1:
        from core.engine.jobs import run_jobs

        sys.exit(run_jobs(args, argv))
    recipe = make_recipe(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda, but torch sees no CUDA device")
    try:  # before anything is loaded: a bad launch fails at once, on every rank
        dist = distributed.from_env(batch_size=recipe.batch_size, device=args.device, sync_bn=args.sync_bn,
                                    timeout_s=args.dist_timeout)
    except distributed.SetupError as e:
        sys.exit(f"error: {e}")
    if not dist.main:
        sys.stdout = open(os.devnull, "w")  # rank 0 speaks for the run; errors still reach stderr
    finished = False
    try:
        train_all(args, recipe, dist)
        finished = True
    except (torch.distributed.DistError, RuntimeError) as e:  # gloo reports a lost peer as RuntimeError
        if dist.backend is None:
            raise
        traceback.print_exc()
        sys.exit(f"error: rank {dist.rank} of {dist.world} stopped ({type(e).__name__}: "
                 f"{str(e).splitlines()[0][:300] if str(e) else ''}). If another rank died (its log, or "
                 f"torchrun's list of failures, names it), every model's folder in {args.out} holds its last "
                 "complete save: the same command with --resume continues from there")
    finally:
        distributed.close(finished)


def train_all(args, recipe: Recipe, dist: Dist):
    """Every (model, seed) of the command line, one after another, or in packs with --pack."""
    try:
        train_set = load_split("train45k" if args.holdout else "train", args.data_dir)
        eval_sets = {"test": load_split("test", args.data_dir)}
        if args.holdout:
            eval_sets["val"] = load_split("val5k", args.data_dir)
    except DataMissingError as e:
        sys.exit(str(e))
    runs = [(name, seed) for name in args.model for seed in (args.seeds or [args.seed])]
    folder = lambda name, seed: folder_for(args.out, name, seed) if args.seeds else Path(args.out) / name  # noqa: E731
    options = Options(device=args.device, resume=args.resume, compile_model=args.compile,
                      train_eval=not args.no_train_eval, fast=not args.fp32, impl=args.pack_impl)
    for group in plan(runs, args.pack_impl, args.pack_size) if args.pack else [[r] for r in runs]:
        specs = [RunSpec(name, seed, folder(name, seed)) for name, seed in group]
        try:
            if len(group) > 1:
                print(f"packing {len(group)} runs ({args.pack_impl}): " + " ".join(s.folder.name for s in specs))
                train_packed(specs, recipe, train_set, eval_sets, args.out, options)
            else:
                train(specs[0], recipe, train_set, eval_sets, args.out,
                      dataclasses.replace(options, device=str(dist.device(args.device))), dist)
        except (ValueError, checkpoints.CheckpointError) as e:
            sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
