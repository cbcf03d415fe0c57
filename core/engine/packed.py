"""K networks of one depth as one: stacked weights, one forward over all of them, per-member SGD.

The nets of Sec. 4.2 are narrow (16-64 channels), so on a GPU each kernel of a batch-128 step is
tiny and launch-bound. A pack trains K nets of the same depth with the kernels of one:

- state: `stack(models)` gives {state_dict key: tensor of shape (K, *shape)}, the layout of
  torch.func.stack_module_state, for parameters (leaves with requires_grad) and buffers (BN running
  statistics and num_batches_tracked, per member); `unstack(state, k)` is member k's state_dict.
- forward, two implementations of one function (N images per member, K members):
  "grouped": members side by side in the channels, (N, K*3, H, W); each conv is one grouped conv
  (groups=K), each BN one batch norm over K*C channels, the last layer one batched matmul.
  "vmap": torch.func.vmap over torch.func.functional_call of an ordinary CifarResNet, (K, N, 3, H, W);
  members must all be plain or all residual.
  Both return logits (K, N, 10). Plain-N and ResNet-N share every parameter shape (option A
  shortcuts have none), so a pack may mix them: the shortcut of member k is scaled by 1 (ResNet)
  or 0 (plain), which is exact (x*1 = x, y + 0 = y).
- `PackedSGD`: torch.optim.SGD's update (momentum 0.9, weight decay on every parameter, no
  dampening, no Nesterov) with a learning rate per member, as a few multi-tensor ops.

Claims held by tests/test_packed.py (CPU): in float64 a packed step equals K separate steps of
core.engine.models nets with torch.optim.SGD (logits, losses, gradients, BN running statistics, updated
weights and momentum to 1e-12) for a plain+residual pair, for seeds of one model, for a member in
warm-up beside one at lr 0.1 and for members at different iterations, with both implementations;
in float32 the forward (logits, losses, BN statistics) agrees to 1e-5 (grouped kernels round
differently, so gradients are compared in float64 only); and member k's numbers do not depend on
the other members' values at all (bit for bit, float32), which is what makes a resumed packed run
bit-identical to an unbroken one on CPU (core/engine/loop.py keeps K fixed for that reason).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from core.engine import models

IMPLS = ("grouped", "vmap")


def pack_key(spec: models.ModelSpec) -> tuple:
    """Nets can share a pack when these agree: same depth, and option B (extra parameters) or not."""
    return spec.depth, spec.shortcut == "B", spec.num_classes


def stack(nets: list[models.CifarResNet], device=None, channels_last: bool = False):
    """(params, buffers): {key: (K, *shape)} from K nets of one pack_key; params require grad.

    channels_last: store conv weights so that the grouped weight (K*Cout, Cin, kh, kw) is a
    channels_last view (cuDNN's fast layout for bf16), without a copy per step.
    """
    keys = {pack_key(n.spec) for n in nets}
    if len(keys) != 1:
        raise ValueError(f"these nets cannot share a pack (depth and shortcut option must agree): "
                         f"{[n.spec.name for n in nets]}")
    names = dict(nets[0].named_parameters())
    params, buffers = {}, {}
    for key in nets[0].state_dict():
        t = torch.stack([n.state_dict()[key].detach() for n in nets]).to(device)
        if key in names:
            if channels_last and t.dim() == 5:  # (K, Cout, Cin, kh, kw) stored as (K, Cout, kh, kw, Cin)
                t = t.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
            params[key] = t.requires_grad_()
        else:
            buffers[key] = t.contiguous()
    return params, buffers


def unstack(params: dict, buffers: dict, k: int) -> dict:
    """Member k's state_dict (detached copies)."""
    return {key: t[k].detach().clone() for key, t in {**params, **buffers}.items()}


def shortcut_scale(nets: list[models.CifarResNet]) -> torch.Tensor:
    """(K,) float: 1 for residual members, 0 for plain ones."""
    return torch.tensor([float(n.spec.residual) for n in nets])


class Packed:
    """The forward of a pack: `Packed(spec, scale, impl)(params, buffers, x) -> logits (K, N, 10)`.

    spec: any member's spec (depth, option); scale: shortcut_scale(members); x as `inputs()` makes it;
    device: where the activations are.
    Training-mode BN updates the running statistics in `buffers` in place, as nn.BatchNorm2d does.
    """

    def __init__(self, spec: models.ModelSpec, scale: torch.Tensor, impl: str = "grouped", device=None):
        if impl not in IMPLS:
            raise ValueError(f"unknown pack implementation {impl!r}; choose one of {IMPLS}")
        self.spec, self.impl, self.k = spec, impl, len(scale)
        self.mixed = bool(scale.min() != scale.max())
        self.residual = bool(scale.max() > 0)
        if impl == "vmap":
            if self.mixed:
                raise ValueError("the vmap pack needs members of one kind (all plain or all residual); "
                                 "use the grouped implementation for plain+residual packs")
            kind = spec.shortcut if spec.shortcut == "B" else ("A" if self.residual else None)
            self.base = models.CifarResNet(models.ModelSpec(spec.name, spec.depth, kind, spec.num_classes))
        # per-channel shortcut scales, made here on the device: none is created inside a compiled step
        self._scales = {(c, dt): scale.to(device, dt).repeat_interleave(c).view(1, -1, 1, 1)
                        for c in models.WIDTHS for dt in (torch.float32, torch.bfloat16, torch.float64)}
        self.training = True

    def inputs(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """Member batches (each N x 3 x H x W) as this implementation takes them."""
        if self.impl == "vmap":
            return torch.stack(xs)
        x = torch.cat(xs, 1)
        channels_last = xs[0].is_contiguous(memory_format=torch.channels_last) and not xs[0].is_contiguous()
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def __call__(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "vmap":
            def one(p, b, xi):
                return torch.func.functional_call(self.base, (p, b), (xi,))
            self.base.train(self.training)
            return torch.vmap(one, in_dims=(0, 0, 0))(params, buffers, x)
        return self._grouped(params, buffers, x)

    # ---- the grouped implementation -------------------------------------------------------------
    def _conv(self, P, key, h, stride, padding):
        return F.conv2d(h, P[key].flatten(0, 1), None, stride, padding, groups=self.k)

    def _bn(self, P, B, prefix, h):
        if self.training:
            B[f"{prefix}.num_batches_tracked"].add_(1)
        return F.batch_norm(h, B[f"{prefix}.running_mean"].view(-1), B[f"{prefix}.running_var"].view(-1),
                            P[f"{prefix}.weight"].view(-1), P[f"{prefix}.bias"].view(-1), self.training, 0.1, 1e-5)

    def _shortcut(self, P, B, prefix, h, cin, cout, stride):
        if stride == 1 and cin == cout:
            return h
        if self.spec.shortcut == "B":
            return self._bn(P, B, f"{prefix}.shortcut.1", self._conv(P, f"{prefix}.shortcut.0.weight", h, stride, 0))
        n, _, hh, ww = h.shape  # option A, per member: every other pixel, zero-padded channels
        sub = h[:, :, ::2, ::2].reshape(n, self.k, cin, (hh + 1) // 2, (ww + 1) // 2)
        extra = cout - cin
        return F.pad(sub, (0, 0, 0, 0, extra // 2, extra - extra // 2)).reshape(n, self.k * cout, *sub.shape[-2:])

    def _grouped(self, P, B, x):
        h = F.relu(self._bn(P, B, "bn1", self._conv(P, "conv1.weight", x, 1, 1)))
        cin = models.WIDTHS[0]
        for i, (stage, cout) in enumerate(zip(models.STAGES, models.WIDTHS)):
            for j in range(self.spec.blocks_per_stage):
                pre, stride = f"{stage}.{j}", 2 if (i > 0 and j == 0) else 1
                out = F.relu(self._bn(P, B, f"{pre}.bn1", self._conv(P, f"{pre}.conv1.weight", h, stride, 1)))
                out = self._bn(P, B, f"{pre}.bn2", self._conv(P, f"{pre}.conv2.weight", out, 1, 1))
                if self.residual:
                    sc = self._shortcut(P, B, pre, h, cin, cout, stride)
                    out = out + (sc * self._scales[cout, sc.dtype] if self.mixed else sc)
                h, cin = F.relu(out), cout
        pooled = h.mean((2, 3)).view(len(h), self.k, -1).transpose(0, 1)  # (K, N, 64)
        w, b = P["linear.weight"], P["linear.bias"]
        return torch.baddbmm(b.unsqueeze(1), pooled, w.transpose(1, 2))


def losses_and_errors(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per member (K,): mean cross-entropy and the count of wrong answers; y is (K, N)."""
    k, n, c = logits.shape
    loss = F.cross_entropy(logits.reshape(k * n, c), y.reshape(-1), reduction="none").view(k, n).mean(1)
    return loss, (logits.argmax(-1) != y).sum(1)


class PackedSGD:
    """torch.optim.SGD (momentum, weight decay, dampening 0, no Nesterov) with one lr per member.

    params: the stacked leaves, each (K, ...). Momentum buffers are (K, ...) too; `set_lr` takes K
    learning rates (rebuilt into per-element tensors only when one changes, so a step is four
    multi-tensor ops and no host-device copy).
    """

    def __init__(self, params: list[torch.Tensor], momentum: float, weight_decay: float,
                 buffers: list[torch.Tensor] | None = None):
        self.params, self.momentum, self.weight_decay = params, momentum, weight_decay
        self.bufs = buffers if buffers is not None else [torch.zeros_like(p) for p in params]
        self.lrs, self._lr_full = None, None

    def set_lr(self, lrs: list[float]):
        if lrs != self.lrs:
            lr = torch.tensor(lrs, dtype=self.params[0].dtype, device=self.params[0].device)
            self._lr_full = [torch.empty_like(p).copy_(lr.view(-1, *[1] * (p.dim() - 1)).expand_as(p))
                             for p in self.params]  # empty_like keeps each parameter's strides
            self.lrs = list(lrs)

    @torch.no_grad()
    def step(self):
        grads = [p.grad for p in self.params]
        grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        torch._foreach_mul_(self.bufs, self.momentum)
        torch._foreach_add_(self.bufs, grads)
        torch._foreach_addcmul_(self.params, self.bufs, self._lr_full, value=-1.0)

    def zero_grad(self):
        for p in self.params:
            p.grad = None
