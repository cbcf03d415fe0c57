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

from pathlib import Path

import torch

from core.engine import checkpoints, models, packed
from core.engine.data import TensorLoader
from core.engine.distributed import Dist
from core.engine.loop import Member, Options, compile_step, fit
from core.engine.runs import Run, RunSpec, folder_for, optim_tensors, run_meta


class Pack:
    """The stepper of a pack (core.engine.loop.fit): K members' stacked weights, one forward
    (core.engine.packed.Packed), PackedSGD with an lr per member."""

    def __init__(self, fwd, params: dict, buffers: dict, opt: packed.PackedSGD, fn, graphs: bool, nets: list,
                 recipe, ghost, n_img: torch.Tensor):
        self.fwd, self.params, self.buffers, self.opt, self.fn, self.graphs = fwd, params, buffers, opt, fn, graphs
        self.nets, self.recipe, self.ghost, self.n_img, self.k = nets, recipe, ghost, n_img, len(nets)

    def set_lr(self, lrs: list[float]):
        self.opt.set_lr(lrs)

    def step(self, batches, weight):
        x, y = self.fwd.inputs([b[0] for b in batches]), torch.stack([b[1] for b in batches])
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
        losses, wrong = self.fn(x, y)
        self.opt.zero_grad()
        (losses * weight).sum().backward()
        self.opt.step()
        return losses.detach(), wrong

    def model(self, j: int):
        """Member j's weights copied into its own net, to evaluate and save it."""
        self.nets[j].load_state_dict(packed.unstack(self.params, self.buffers, j))
        return self.nets[j]

    def state(self, j: int, acc_j: torch.Tensor) -> tuple[dict, list]:
        """Member j's resume state in torch.optim.SGD's layout, as core.engine.train saves it."""
        net, recipe = self.nets[j], self.recipe
        sgd = torch.optim.SGD(net.parameters(), lr=self.opt.lrs[j], momentum=recipe.momentum,
                              weight_decay=recipe.weight_decay, fused=net.linear.weight.is_cuda or None)
        tensors, groups = optim_tensors(sgd.state_dict())
        tensors.update({f"optim.{i}.momentum_buffer": b[j].detach() for i, b in enumerate(self.opt.bufs)})
        return {**tensors, "acc": acc_j}, groups

    def lr(self, j: int) -> float:
        return self.opt.lrs[j]


def train_packed(specs: list[RunSpec], recipe, train_set, eval_sets: dict, out_dir,
                 options: Options = Options()) -> list[dict | None]:
    """Train runs (each spec's folder: default core.engine.runs.folder_for(out_dir, name, seed)) as
    one pack, as `options` say (core.engine.loop.Options; options.impl: the pack's forward,
    options.max_steps: stop after this many packed steps, as a kill right after the last saves
    would); returns each member's metrics as last written (a member found finished: its metrics;
    None for one that max_steps stopped before a save). Other arguments as core.engine.train.train.
    """
    o = options
    dtype, compile_model, impl = o.dtype, o.compile_model, o.impl
    members = [(s.name, s.seed) for s in specs]
    device = torch.device(o.device)
    fast_cuda = device.type == "cuda" and o.fast
    torch.backends.cudnn.benchmark = device.type == "cuda"
    folders = [Path(s.folder) if s.folder else folder_for(out_dir, s.name, s.seed) for s in specs]
    labels = [f.name for f in folders]
    if len(set(labels)) != len(labels):
        raise ValueError(f"a pack lists the same run twice: {labels}")
    meta = run_meta(device, fast_cuda, compile_model, Dist().record(recipe.batch_size))
    fmt = torch.channels_last if fast_cuda else torch.contiguous_format
    slots, nets, done = [], [], {}
    for (name, seed), folder in zip(members, folders):
        torch.manual_seed(seed)
        net = models.build(name).to(device, dtype)
        run = Run.open(name, folder, recipe, seed, train_set, eval_sets, o.resume,
                       net.spec.depth >= recipe.warmup_min_depth, meta)
        nets.append(net)
        if run.done:  # finished earlier: keeps its slot, so K (and the kernels) stay the same
            net.load_state_dict(checkpoints.load(folder, dtype=dtype).model.state_dict())
            slots.append(Member(folder.name, None))
            done[folder.name] = run.done
            continue
        run.resume_model(net)
        slots.append(Member(folder.name, run, TensorLoader(*train_set, batch_size=recipe.batch_size, device=device,
                                                           augment=recipe.augment, seed=run.seed, memory_format=fmt)))
    k = len(slots)
    for s in slots:
        if s.live:
            s.run.note_pack([o.label for o in slots if o is not s], impl, k)
    params, buffers = packed.stack(nets, device, channels_last=fast_cuda)
    assert list(params) == [n for n, _ in nets[0].named_parameters()], "stacking must keep parameter order"
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
    fwd = packed.Packed(nets[0].spec, packed.shortcut_scale(nets), impl, device)

    def losses_and_errors(x, y):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast_cuda):
            return packed.losses_and_errors(fwd(params, buffers, x.to(dtype)), y)

    if compile_model:  # the stacked state lives as long as the run, like a module's parameters: no copies into
        for t in (*params.values(), *buffers.values()):  # CUDA graphs' static inputs each step
            torch._dynamo.mark_static_address(t)
    fn, graphs = compile_step(losses_and_errors, compile_model, device)
    ghost = (torch.zeros(recipe.batch_size, 3, 32, 32, device=device, dtype=dtype).contiguous(memory_format=fmt),
             torch.zeros(recipe.batch_size, dtype=torch.long, device=device))
    n_img = torch.tensor(float(recipe.batch_size), dtype=torch.float64, device=device)
    stepper = Pack(fwd, params, buffers, opt, fn, graphs, nets, recipe, ghost, n_img)
    got = fit(slots, stepper, recipe, train_set, eval_sets, device, acc, o.train_eval, o.bar, max_steps=o.max_steps)
    return [done.get(s.label, m) for s, m in zip(slots, got)]


def plan(members: list[tuple[str, int]], impl: str = "grouped", max_k: int | None = None) -> list[list]:
    """Members grouped into packs, in the given order: same pack_key (and, for vmap, same kind),
    at most max_k per pack. A group of one is trained alone (core.engine.train.train) by the CLI."""
    groups: dict = {}
    for name, seed in members:
        spec = models.get_spec(name)
        groups.setdefault(packed.pack_key(spec) + ((spec.residual,) if impl == "vmap" else ()), []).append((name, seed))
    step = max_k or max(len(m) for m in groups.values())
    return [g[i:i + step] for g in groups.values() for i in range(0, len(g), step)]
