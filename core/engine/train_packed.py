"""Train K nets of one depth in one packed step (core/engine/packed.py), each exactly as core.engine.train would.

    python -m core.engine.train --model resnet110 plain110 --seeds 0 1 2 --pack [--pack-impl grouped|vmap]

Each member keeps the paper recipe on its own: its seed's initialisation, batch order and
augmentation (its own TensorLoader), its own momentum buffers and weight decay, its own lr
schedule and 110-layer warm-up (decided on its own running error), its own BN statistics, and its
own folder (core.engine.runs.folder_for), saved every eval_every of ITS iterations in the ordinary format,
so core.engine.train --resume, the evaluator and the app read it as any other. Members may start at
different iterations (each resumed from its folder). metrics.json records "packed": one entry per
stretch of iterations, with the implementation, K and the other members.

K stays fixed for the whole call: a member that finishes keeps its slot as a "ghost" (zero images,
loss weight 0, lr 0, never saved again) until the last one finishes, and a member found finished
on --resume joins as a ghost too. Kernels depend on K, so this is what makes a killed and resumed
packed run bit-identical to an unbroken one on CPU (tests/test_packed.py), whichever member saved
last before the kill. On a GPU a ghost costs little: packing exists because a narrow net leaves
most of the GPU idle.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from core.engine import checkpoints, models, packed
from core.engine.data import TensorLoader
from core.engine.distributed import Dist
from core.engine.progress import progress_bar
from core.engine.runs import Run, folder_for, optim_tensors, run_meta
from core.engine.train import compile_step, lr_at


@dataclass
class Slot:
    label: str  # folder name: NAME or NAME-seedS
    net: models.CifarResNet  # the member's weights are copied here to evaluate and save it
    run: Run | None  # None: found finished (a ghost from the start)
    loader: TensorLoader | None = None

    @property
    def live(self) -> bool:
        return self.run is not None and not self.run.finished


def train_packed(members: list[tuple[str, int]], recipe, train_set, eval_sets: dict, out_dir, device="cpu",
                 resume: bool = False, compile_model: bool | str = False, max_steps: int | None = None,
                 train_eval: bool = True, bar: bool = True, fast: bool = True, impl: str = "grouped",
                 dtype: torch.dtype = torch.float32, folders: list | None = None) -> list[dict]:
    """Train (name, seed) members as one pack; returns each member's metrics as last written.

    folders: one per member (default core.engine.runs.folder_for(out_dir, name, seed)).
    max_steps: stop after this many packed steps (as a kill right after the last saves would; for tests).
    Other arguments as core.engine.train.train.
    """
    device = torch.device(device)
    fast_cuda = device.type == "cuda" and fast
    torch.backends.cudnn.benchmark = device.type == "cuda"
    folders = [Path(f) for f in folders] if folders else [folder_for(out_dir, n, s) for n, s in members]
    labels = [f.name for f in folders]
    if len(set(labels)) != len(labels):
        raise ValueError(f"a pack lists the same run twice: {labels}")
    meta = run_meta(device, fast_cuda, compile_model, Dist().record(recipe.batch_size))
    fmt = torch.channels_last if fast_cuda else torch.contiguous_format
    slots, results = [], {}
    for (name, seed), folder in zip(members, folders):
        label = folder.name
        torch.manual_seed(seed)
        net = models.build(name).to(device, dtype)
        run = Run.open(name, folder, recipe, seed, train_set, eval_sets, resume,
                       net.spec.depth >= recipe.warmup_min_depth, meta)
        if isinstance(run, dict):  # finished earlier: keeps its slot, so K (and the kernels) stay the same
            net.load_state_dict(checkpoints.load(folder, dtype=dtype).model.state_dict())
            slots.append(Slot(label, net, None))
            results[label] = run
            continue
        run.resume_model(net)
        slots.append(Slot(label, net, run, TensorLoader(*train_set, batch_size=recipe.batch_size, device=device,
                                                        augment=recipe.augment, seed=run.seed, memory_format=fmt)))
    k = len(slots)
    for s in slots:
        if s.live:
            s.run.note_pack([o.label for o in slots if o is not s], impl, k)
    params, buffers = packed.stack([s.net for s in slots], device, channels_last=fast_cuda)
    assert list(params) == [n for n, _ in slots[0].net.named_parameters()], "stacking must keep parameter order"
    bufs = [torch.zeros_like(p) for p in params.values()]  # momentum: zeros are torch's first step
    acc = torch.zeros(k, 4, dtype=torch.float64, device=device)  # per member: loss sum, errors, warmup errors, n
    for j, s in enumerate(slots):
        saved = s.run.saved if s.run is not None else None
        if saved is not None:  # resumed: its momentum (torch.optim.SGD's layout) and running sums
            for i, b in enumerate(bufs):
                if f"optim.{i}.momentum_buffer" in saved:
                    b[j].copy_(saved[f"optim.{i}.momentum_buffer"])
            acc[j] = saved["acc"].to(device)
    opt = packed.PackedSGD(list(params.values()), recipe.momentum, recipe.weight_decay, bufs)
    scale = packed.shortcut_scale([s.net for s in slots])
    fwd = packed.Packed(slots[0].net.spec, scale, impl, device)

    def losses_and_errors(x, y):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast_cuda):
            return packed.losses_and_errors(fwd(params, buffers, x.to(dtype)), y)

    if compile_model:  # the stacked state lives as long as the run, like a module's parameters: no copies into
        for t in (*params.values(), *buffers.values()):  # CUDA graphs' static inputs each step
            torch._dynamo.mark_static_address(t)
    step, graphs = compile_step(losses_and_errors, compile_model, device)
    zeros_x = torch.zeros(recipe.batch_size, 3, 32, 32, device=device, dtype=dtype).contiguous(memory_format=fmt)
    zeros_y = torch.zeros(recipe.batch_size, dtype=torch.long, device=device)
    n_img = torch.tensor(float(recipe.batch_size), dtype=torch.float64, device=device)
    left = max((recipe.iters - s.run.it for s in slots if s.live), default=0)
    pbar = progress_bar(total=left, desc="pack " + "+".join(labels), disable=not bar, dynamic_ncols=True)
    tick, steps, done_steps, weight, live_was = time.perf_counter(), 0, 0, None, None
    results.update({s.label: None for s in slots if s.run is not None})
    while any(s.live for s in slots) and (max_steps is None or steps < max_steps):
        live = [s.live for s in slots]
        if live != live_was:  # a member finished: its loss no longer counts
            weight, live_was = torch.tensor([float(v) for v in live], device=device), live
        opt.set_lr([lr_at(recipe, s.run.it, s.run.warming) if s.live else 0.0 for s in slots])
        batches = [s.loader.batch(s.run.it) if s.live else (zeros_x, zeros_y) for s in slots]
        x, y = fwd.inputs([b[0] for b in batches]), torch.stack([b[1] for b in batches])
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        losses, wrong = step(x, y)
        opt.zero_grad()
        (losses * weight).sum().backward()
        opt.step()
        w = wrong.double()
        acc += torch.stack([losses.detach().double() * n_img, w, w, n_img.expand(k)], 1)
        steps += 1
        pbar.update(1)
        logs = []
        for j, s in enumerate(slots):
            if not live[j]:
                continue
            run = s.run
            run.it += 1
            if run.warming and run.it % recipe.warmup_check == 0:
                if 100 * acc[j, 2].item() / acc[j, 3].item() < recipe.warmup_until_err:
                    run.warming, run.warm_end = False, run.it
                    pbar.write(f"{s.label}: warmup done at iteration {run.it} "
                               f"(running train error below {recipe.warmup_until_err}%)")
                acc[j, 2:] = 0
            if run.it % recipe.eval_every == 0 or run.it == recipe.iters:
                logs.append(j)
        if steps % 50 == 0 or logs:
            if device.type == "cuda":  # the clock reads the GPU's progress, not the host's queue
                torch.cuda.synchronize(device)
            now = time.perf_counter()
            for j, s in enumerate(slots):
                if live[j]:
                    s.run.wall += now - tick
            pbar.set_postfix_str(f"{(steps - done_steps) * sum(live) * recipe.batch_size / max(now - tick, 1e-9):,.0f}"
                                 f" img/s in all")
            tick, done_steps = now, steps
        for j in logs:
            s = slots[j]
            s.net.load_state_dict(packed.unstack(params, buffers, j))
            s.run.log(s.net, acc[j, 0].item(), acc[j, 1].item(), eval_sets, device, opt.lrs[j])
            acc[j, :2] = 0
            results[s.label] = s.run.save(s.net, train_set, device, train_eval,
                                          state=lambda j=j, s=s: _member_state(opt, j, s.net, acc[j], recipe))
            if s.run.finished:
                pbar.write(s.run.summary(results[s.label]))
        if logs:
            tick = time.perf_counter()  # evaluation time is not training time
    pbar.close()
    return [results[s.label] for s in slots]


def plan(members: list[tuple[str, int]], impl: str = "grouped", max_k: int | None = None) -> list[list]:
    """Members grouped into packs, in the given order: same pack_key (and, for vmap, same kind),
    at most max_k per pack. A group of one is trained alone (core.engine.train.train) by the CLI."""
    groups: dict = {}
    for name, seed in members:
        spec = models.get_spec(name)
        groups.setdefault(packed.pack_key(spec) + ((spec.residual,) if impl == "vmap" else ()), []).append((name, seed))
    step = max_k or max(len(m) for m in groups.values())
    return [g[i:i + step] for g in groups.values() for i in range(0, len(g), step)]


def _member_state(opt: packed.PackedSGD, j: int, net, acc_j, recipe) -> tuple[dict, list]:
    """Member j's resume state in torch.optim.SGD's layout, as core.engine.train saves it."""
    sgd = torch.optim.SGD(net.parameters(), lr=opt.lrs[j], momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay, fused=net.linear.weight.is_cuda or None)
    tensors, groups = optim_tensors(sgd.state_dict())
    tensors.update({f"optim.{i}.momentum_buffer": b[j].detach() for i, b in enumerate(opt.bufs)})
    return {**tensors, "acc": acc_j.clone()}, groups
