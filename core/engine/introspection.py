"""Look inside the CIFAR-10 nets: per-unit architecture, feature maps and gradient flow.

Plain data in (a model from core.engine.models, tensors), plain data out (lists of dicts, dicts of numpy
arrays, floats); no plotting here (see core/figures/dashboard.py).

architecture(model) has one row per unit in forward order: the stem (conv1-bn1-relu), every block
("layer1.0", ...), the head ("linear": average pool + linear). Shapes: 16x32x32 (stem, layer1),
32x16x16 (layer2), 64x8x8 (layer3), (10,) (head). FLOPs are forward FLOPs per image counted by
torch.utils.flop_counter.FlopCounterMode on a 1-image input; it counts convolutions and matrix
products only (BN, ReLU, pooling, additions are free) and a multiply-add as 2 FLOPs. Measured, and
equal to the hand count sum(2*Cin*Cout*k*k*Hout*Wout) over convs + 2*64*10 for the linear (held by
tests/test_introspection.py):
    resnet20 / plain20    81,102,080 FLOPs (40.55M multiply-adds; option-A shortcuts are free)
    resnet20b             81,626,368 (+2 1x1 projection convs)
    resnet56             250,971,392 (125.5M multiply-adds)
    resnet110            505,775,360 (252.9M multiply-adds)
Parameters per unit sum to models.count_params(model).

gradient_flow(model, x, y) gives L2 norms of the gradient of the mean cross-entropy loss w.r.t.
every conv weight and every block output, ordered from the last layer to the first. Measured at
He initialisation (torch.manual_seed(0); models.build(name); 16 random-normal images and random
labels from torch.Generator().manual_seed(100)), L2 norm of the conv1 weight gradient:
    bn_mode   plain110   resnet110   resnet110 / plain110   loss (plain / res)
    "eval"    3.2e-3     3.7e+8      1.2e+11                2.30 / 7.1e+8
    "train"   5.6e+6     1.1e+1      1.9e-6                 2.27 / 3.92
"eval" with BN at its init statistics (mean 0, var 1) makes BN the identity: resnet110's residual
sums double the signal variance per block, its logits and loss blow up, and so do its gradients;
plain110's gradient is flat (earliest/last conv ratio ~0.95). With batch statistics ("train"; or
eval with running stats calibrated on one batch, which gives the same picture) plain110's early
gradients EXPLODE (earliest/last conv ratio ~8e6; plain56 ~6e3) while resnet110's stay O(10).
So "plain110 at init has orders of magnitude smaller early-layer gradients than resnet110" is
literally true only in "eval" at init statistics, and there for the wrong reason (resnet110
explodes; plain110 does not vanish); with batch statistics it is the reverse. (He et al., Sec. 4.1,
likewise find no vanishing gradients in their BN plain nets.) bn_mode="train" restores the model's
mode and all BN buffers exactly afterwards.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.engine.models import STAGES

FEATURE_STAGES = ("stem",) + STAGES


def _flops(fn, *args) -> tuple[torch.Tensor, int]:
    with FlopCounterMode(display=False) as counter:
        out = fn(*args)
    return out, int(counter.get_total_flops())


def _nparams(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _row(name: str, stage: str, out: torch.Tensor, params: int, flops: int) -> dict:
    shape = tuple(int(s) for s in out.shape[1:])
    c, h, w = (shape + (1, 1))[:3] if len(shape) == 1 else shape
    return {"name": name, "stage": stage, "shape": shape, "channels": c, "height": h, "width": w,
            "params": params, "flops": flops}


def _stem(model, x):
    return model.relu(model.bn1(model.conv1(x)))


def _head(model, h):
    return model.linear(model.flatten(model.pool(h)))


def architecture(model, input_size: int = 32) -> list[dict]:
    """One row per unit, in forward order: the stem ("stem": conv1+bn1+relu), every block
    ("layer1.0" ...), and the head ("linear": pool+linear). Keys: name, stage ("stem", "layer1",
    "layer2", "layer3", "head"), shape (C, H, W) of the unit's output as a tuple (head:
    (num_classes,)), channels, height, width, params (int, parameters inside the unit), flops (int,
    forward FLOPs per image counted with FlopCounterMode on a 1-image input; a multiply-add is 2)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = torch.zeros(1, 3, input_size, input_size, device=device)
        rows = []
        with torch.no_grad():
            h, f = _flops(_stem, model, x)
            rows.append(_row("stem", "stem", h, _nparams(model.conv1, model.bn1, model.relu), f))
            for stage in STAGES:
                for j, block in enumerate(getattr(model, stage)):
                    h, f = _flops(block, h)
                    rows.append(_row(f"{stage}.{j}", stage, h, _nparams(block), f))
            out, f = _flops(_head, model, h)
            rows.append(_row("linear", "head", out, _nparams(model.linear), f))
    finally:
        model.train(was_training)
    return rows


def feature_maps(model, x, channels: int = 8) -> dict[str, np.ndarray]:
    """x: 1x3x32x32 normalised input. For "stem", "layer1", "layer2", "layer3": the first `channels`
    channels of that stage's output as float32 arrays (channels x H x W), in eval mode, no grad."""
    if x.dim() == 3:
        x = x.unsqueeze(0)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model.forward_stages(x[:1])
    finally:
        model.train(was_training)
    return {k: out[k][0, :channels].detach().float().cpu().numpy() for k in FEATURE_STAGES}


def _bn_buffers(model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(b, b.detach().clone()) for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) for b in m.buffers()]


def gradient_flow(model, x, y, bn_mode: str = "eval") -> dict:
    """Gradient norms of the mean cross-entropy loss of (x: N x 3 x 32 x 32 normalised, y: N labels).

    bn_mode "eval": BN uses its running statistics (one image works). "train": BN uses the batch's
    statistics (as in training; needs N >= 1 with spatial maps, N >= 2 advised); the model's mode and
    every BN buffer (running mean/var, num_batches_tracked) are restored exactly afterwards.
    Parameters are never modified and no .grad is set (torch.autograd.grad, not backward).

    Returns {"conv": [(name, norm), ...] for every Conv2d weight (conv1, block convs, option-B
    shortcut convs), "blocks": [(name, norm), ...] for the output of the stem and of every block,
    "loss": float}, each list ordered from the LAST layer to the FIRST (the way the gradient
    travels). Norm = L2 norm of the gradient (for block outputs: of the whole N x C x H x W tensor)."""
    if bn_mode not in ("eval", "train"):
        raise ValueError(f"bn_mode must be 'eval' or 'train', got {bn_mode!r}")
    was_training = model.training
    saved = _bn_buffers(model) if bn_mode == "train" else []
    convs = [(n, m.weight) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    flags = [w.requires_grad for _, w in convs]
    try:
        model.train(bn_mode == "train")
        for _, w in convs:
            w.requires_grad_(True)
        with torch.enable_grad():
            out = model.forward_stages(x, blocks=True)
            blocks = [(k, v) for k, v in out.items() if k == "stem" or "." in k]
            loss = F.cross_entropy(out["logits"], y)
            grads = torch.autograd.grad(loss, [w for _, w in convs] + [v for _, v in blocks])
    finally:
        for (_, w), flag in zip(convs, flags):
            w.requires_grad_(flag)
        with torch.no_grad():
            for buf, copy in saved:
                buf.copy_(copy)
        model.train(was_training)
    norms = [float(g.detach().norm()) for g in grads]
    conv = [(n, v) for (n, _), v in zip(convs, norms[:len(convs)])]
    blk = [(n, v) for (n, _), v in zip(blocks, norms[len(convs):])]
    return {"conv": conv[::-1], "blocks": blk[::-1], "loss": float(loss.detach())}


def early_late_ratio(flow: dict, key: str = "conv") -> float:
    """Norm of the first (earliest) layer's gradient / norm of the last layer's."""
    seq = flow[key]
    return seq[-1][1] / seq[0][1]
