"""The one training loop, for a single net and for a pack of K nets alike.

core.engine.train sets up a single net (a pack of one member, whose step is its nn.Module's own, so
that DDP can wrap it) and core.engine.train_packed a pack (core.engine.packed: stacked weights, one
grouped forward, PackedSGD); both hand fit() their members and a stepper, and fit() does the rest.

Each step, every live member gets its own lr (lr_at: its own iteration and warm-up) and its own
batch, and the stepper takes one SGD step for all of them; each member's running sums grow (loss,
errors, warm-up errors, images: `acc`, one row per member). Every warmup_check of its iterations a
member in warm-up compares its running error (over all ranks) with the recipe's target; every
eval_every of its iterations, and at its last, it logs a history row and rewrites its folder (rank
0 alone, after the ranks' sums are gathered). A member that finishes keeps its slot as a ghost
(zero images, loss weight 0, lr 0, never saved again) until the last one finishes: K, and with it
the kernels, stay fixed for the whole call, which is what makes a killed and resumed pack
bit-identical to an unbroken one on CPU.

Hooks for the tests: stop_at ends the run after that iteration of the first member (as a kill right
after a save would), max_steps after that many steps; the dtype is the stepper's (float64 lets the
tests compare the two setups beyond fp32 rounding).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from core.engine import distributed
from core.engine.data import TensorLoader
from core.engine.distributed import Dist
from core.engine.progress import progress_bar
from core.engine.recipe import Recipe, lr_at
from core.engine.runs import Run


@dataclass(frozen=True)
class Options:
    """How runs train (what they train is a RunSpec and a Recipe).

    device: "cpu" or "cuda"; resume: continue unfinished runs found in their folders;
    compile_model: False, True (torch.compile's default mode) or a mode name such as
    "reduce-overhead"; train_eval: a final pass over the training set in eval mode; bar: a
    progress bar; fast: on CUDA, bf16 autocast and channels_last (False: the eager fp32 baseline);
    impl: a pack's forward ("grouped" or "vmap").
    The hooks the bit-exact tests need: dtype (float64 compares the trainers beyond fp32 rounding),
    stop_at (a single run ends after this iteration, as a kill right after a save would) and
    max_steps (a pack ends after this many steps)."""
    device: str = "cpu"
    resume: bool = False
    compile_model: bool | str = False
    train_eval: bool = True
    bar: bool = True
    fast: bool = True
    impl: str = "grouped"
    dtype: torch.dtype = torch.float32
    stop_at: int | None = None
    max_steps: int | None = None


@dataclass
class Member:
    label: str  # folder name: NAME or NAME-seedS
    run: Run | None  # None: found finished (a ghost from the start)
    loader: TensorLoader | None = None

    @property
    def live(self) -> bool:
        return self.run is not None and not self.run.finished


def compile_step(fn, compile_model, device: torch.device):
    """(fn, torch.compile'd as asked; whether each call must mark a CUDA-graph step first)."""
    mode = compile_model if isinstance(compile_model, str) and compile_model != "default" else None
    step = torch.compile(fn, mode=mode) if compile_model else fn
    return step, mode is not None and "cudagraphs" not in mode and device.type == "cuda"


def fit(members: list[Member], stepper, recipe: Recipe, train_set, eval_sets: dict, device: torch.device,
        acc: torch.Tensor, train_eval: bool = True, bar: bool = True, dist: Dist | None = None,
        stop_at: int | None = None, max_steps: int | None = None) -> list[dict | None]:
    """Train the members to recipe.iters (or a hook's stop); each member's metrics as last written
    (None where nothing was written in this call, and on every rank but 0).

    stepper: k (= len(members)), n_img (images per member per step on this rank), ghost (a batch
    for a finished member), set_lr(lrs), step(batches, weight) -> (losses, wrong) per member,
    model(j) (member j as a module, to evaluate and save), state(j, acc_j) (its resume tensors and
    param_groups, torch.optim.SGD's layout) and lr(j). acc: (K, 4) float64 running sums, resumed.
    """
    dist = dist or Dist()
    k = len(members)
    single = k == 1
    results = {m.label: None for m in members}
    live = [m.live for m in members]
    left = max((recipe.iters - m.run.it for m in members if m.live), default=0)
    first = members[0].run.it if single and members[0].run else 0
    pbar = progress_bar(total=first + left, initial=first, disable=not (bar and dist.main), dynamic_ncols=True,
                        desc=members[0].label if single else "pack " + "+".join(m.label for m in members))
    tick, steps, done_steps, weight, live_was = time.perf_counter(), 0, 0, None, None
    while any(live) and (max_steps is None or steps < max_steps) and \
            (stop_at is None or members[0].run.it < stop_at):
        if live != live_was:  # a member finished: its loss no longer counts
            weight, live_was = torch.tensor([float(v) for v in live], device=device), live
        stepper.set_lr([lr_at(recipe, m.run.it, m.run.warming) if m.live else 0.0 for m in members])
        batches = [m.loader.batch(m.run.it) if m.live else stepper.ghost for m in members]
        losses, wrong = stepper.step(batches, weight)
        w = wrong.double()
        acc += torch.stack([losses.double() * stepper.n_img, w, w, stepper.n_img.expand(k)], 1)
        steps += 1
        pbar.update(1)
        logs = []
        for j, m in enumerate(members):
            if not live[j]:
                continue
            run = m.run
            run.it += 1
            if run.warming and run.it % recipe.warmup_check == 0:
                warm = distributed.total(acc[j, 2:], dist)  # every rank decides on the same, global, error
                if 100 * warm[0].item() / warm[1].item() < recipe.warmup_until_err:
                    run.warming, run.warm_end = False, run.it
                    pbar.write(f"{m.label}: warmup done at iteration {run.it} "
                               f"(running train error below {recipe.warmup_until_err}%)")
                acc[j, 2:] = 0
            if run.it % recipe.eval_every == 0 or run.it == recipe.iters:
                logs.append(j)
        if steps % 50 == 0 or logs:
            if device.type == "cuda":  # the clock reads the GPU's progress, not the host's queue
                torch.cuda.synchronize(device)
            now = time.perf_counter()
            for j, m in enumerate(members):
                if live[j]:
                    m.run.wall += now - tick
            img_s = (steps - done_steps) * sum(live) * recipe.batch_size / max(now - tick, 1e-9)
            pbar.set_postfix_str(f"loss {losses[0].item():.3f} err {100 * wrong[0].item() / len(batches[0][1]):.1f}% "
                                 f"{img_s:,.0f} img/s" if single else f"{img_s:,.0f} img/s in all")
            tick, done_steps = now, steps
        if logs:
            acc = distributed.gather_to_main(acc, dist)
            for j in logs if dist.main else []:  # rank 0 alone evaluates and writes; the others wait
                m, model = members[j], stepper.model(j)
                m.run.log(model, acc[j, 0].item(), acc[j, 1].item(), eval_sets, device, stepper.lr(j))
                acc[j, :2] = 0
                results[m.label] = m.run.save(model, train_set, device, train_eval, bar=pbar if single else None,
                                              state=lambda j=j: stepper.state(j, acc[j].clone()))
                if m.run.finished:
                    (print if single else pbar.write)(m.run.summary(results[m.label]))
            tick = time.perf_counter()  # evaluation time is not training time
        live = [m.live for m in members]
    pbar.close()
    return [results[m.label] for m in members]
