"""What ImageNet-size nets cost: VGG vs plain vs ResNet (He et al. 2016, Table 1 and Sec. 3.3/4.1),
and why 3x3 kernels. Counted on architectures only: no ImageNet data, no weights.

count(arch) builds torchvision's definition with no weights on the meta device (no memory, no
arithmetic) and counts one forward pass of a 1 x 3 x 224 x 224 image with
torch.utils.flop_counter.FlopCounterMode, which counts convolutions and matrix products only
(a multiply-add = 2 FLOPs; BN, ReLU, pooling and the shortcut additions are not counted; the number of
scalar shortcut additions is reported separately as "additions").

Two departures from a plain torchvision build, both toward the paper:
- "plainN": the same ResNet with no shortcut at all: every block's `out += identity` is skipped and
  its `downsample` projection (torchvision uses option B, a 1x1 conv + BN, wherever the shape
  changes) is removed. So plainN has exactly the FLOPs of resnetN minus those projections, and fewer
  parameters by exactly the projections' weights (plain34 vs resnet34: -19.3 M multiply-adds, 0.5%).
  The paper's 3.6 G for both plain-34 and ResNet-34 is option A (identity + zero padding, free).
- Bottleneck nets (50/101/152): the paper (and its released Caffe models) stride the first 1x1 conv of
  a downsampling block; torchvision ("ResNet v1.5") strides the 3x3 instead, which costs more:
  ResNet-50 4.09 G vs 3.86 G multiply-adds. count() uses the paper's placement unless
  paper_strides=False; parameters are the same either way.

Counted (multiply-adds per 224x224 image, paper strides; paper's Table 1 / Sec. 4.1 in brackets):
    vgg16 15.47 G, vgg19 19.63 G [19.6], resnet18 1.81 G [1.8], resnet34 3.66 G [3.6], plain34 3.64 G
    [3.6], resnet50 3.86 G [3.8], resnet101 7.57 G [7.6], resnet152 11.28 G [11.3]; torchvision's own
    strides: resnet50 4.09 G, resnet101 7.80 G, resnet152 11.51 G
(tests/test_imagenet_landscape.py holds these within 5%; the FC layer is included.)
"""
from __future__ import annotations

import functools

import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.resnet import BasicBlock, Bottleneck

ARCHS = {"vgg16": ("vgg", 16), "vgg19": ("vgg", 19)}  # arch: (family, depth)
ARCHS.update({f"{fam}{d}": (fam, d) for fam in ("plain", "resnet") for d in (18, 34, 50, 101, 152)})
# the paper's multiply-adds (Table 1; VGG-19 from Sec. 3.3), in G
PAPER_GMACS = {"vgg19": 19.6, "resnet18": 1.8, "resnet34": 3.6, "plain18": 1.8, "plain34": 3.6,
               "resnet50": 3.8, "resnet101": 7.6, "resnet152": 11.3}


class PlainBasicBlock(BasicBlock):
    """torchvision's BasicBlock without the shortcut: conv-BN-ReLU-conv-BN-ReLU."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


class PlainBottleneck(Bottleneck):
    """torchvision's Bottleneck without the shortcut: 1x1-3x3-1x1, each with BN and ReLU."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)))


def family(arch: str) -> str:
    """"vgg", "plain" or "resnet"."""
    return ARCHS[arch][0]


def depth(arch: str) -> int:
    return ARCHS[arch][1]


def build(arch: str, paper_strides: bool = True) -> nn.Module:
    """torchvision's net with no weights (on the current default device); plainN = resnetN, no shortcuts."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {list(ARCHS)}")
    if family(arch) == "vgg":
        return getattr(torchvision.models, arch)(weights=None)
    model = getattr(torchvision.models, f"resnet{depth(arch)}")(weights=None)
    for block in model.modules():
        if isinstance(block, Bottleneck) and paper_strides and block.conv2.stride != (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)  # paper: stride on the 1x1
        if family(arch) == "plain" and isinstance(block, (BasicBlock, Bottleneck)):
            block.downsample = None
            block.__class__ = PlainBottleneck if isinstance(block, Bottleneck) else PlainBasicBlock
    return model


def _blocks(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))
            and not isinstance(m, (PlainBasicBlock, PlainBottleneck))]


@functools.lru_cache(maxsize=None)
def _count(arch: str, paper_strides: bool) -> tuple:
    with torch.device("meta"):
        model = build(arch, paper_strides).eval()
        x = torch.empty(1, 3, 224, 224)
    adds = []
    hooks = [b.register_forward_hook(lambda m, i, o: adds.append(o.numel())) for b in _blocks(model)]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    proj = sum(sum(ops.values()) for name, ops in counter.get_flop_counts().items()
               if name.endswith("downsample") and name.count(".") == 3)  # e.g. ResNet.layer2.0.downsample
    params = sum(p.numel() for p in model.parameters())
    proj_params = sum(p.numel() for n, p in model.named_parameters() if ".downsample." in n)
    return int(params), int(counter.get_total_flops()), int(sum(adds)), int(proj), int(proj_params)


def count(arch: str, paper_strides: bool = True) -> dict:
    """{"arch", "family", "depth", "params", "flops" (forward per 224x224 image, multiply-add = 2),
    "macs" (= flops // 2), "gmacs", "paper_gmacs" (None where the paper gives none),
    "additions" (scalar shortcut additions, not in flops), "projection_flops", "projection_params"}."""
    params, flops, adds, proj, proj_params = _count(arch, paper_strides)
    return {"arch": arch, "family": family(arch), "depth": depth(arch), "params": params, "flops": flops,
            "macs": flops // 2, "gmacs": round(flops / 2e9, 3), "paper_gmacs": PAPER_GMACS.get(arch),
            "additions": adds, "projection_flops": proj, "projection_params": proj_params}


def table(paper_strides: bool = True) -> list[dict]:
    """count() of every arch in ARCHS, in that order."""
    return [count(a, paper_strides) for a in ARCHS]


def stack_vs_single(k: int, channels: int) -> dict:
    """k stacked 3x3 conv layers vs one (2k+1)x(2k+1) layer, C channels in and out, no bias (VGG's
    argument, Simonyan & Zisserman 2015, Sec. 2.3): same receptive field 2k+1, k*9*C^2 vs (2k+1)^2*C^2
    weights, k ReLUs vs 1."""
    if k < 1 or channels < 1:
        raise ValueError("k and channels must be >= 1")
    c2 = channels * channels
    stacked, single = 9 * k * c2, (2 * k + 1) ** 2 * c2
    return {"k": k, "channels": channels, "kernel": 2 * k + 1,
            "receptive_field_stacked": 2 * k + 1, "receptive_field_single": 2 * k + 1,
            "params_stacked": stacked, "params_single": single, "ratio": stacked / single,
            "nonlinearities_stacked": k, "nonlinearities_single": 1}


if __name__ == "__main__":
    for r in table():
        print(f"{r['arch']:10s} {r['params'] / 1e6:8.2f} M params {r['gmacs']:7.3f} G MACs "
              f"(paper {r['paper_gmacs']}) adds {r['additions']:,}  proj {r['projection_flops'] / 2e6:.1f} M MACs")
    print("torchvision strides (v1.5):", {a: count(a, False)["gmacs"] for a in ("resnet50", "resnet101", "resnet152")})
