"""The CIFAR-10 networks of He et al. 2016, Section 4.2: plain-N and ResNet-N from one definition.

Architecture (paper, Sec. 4.2): a 3x3 conv with 16 filters, then three stages of n blocks with
16/32/64 filters on 32x32/16x16/8x8 maps (the first conv of stages 2 and 3 has stride 2: the map
halves, the filters double), global average pooling, a 10-way linear layer. Depth = 6n + 2.
Each block: conv3x3-BN-ReLU-conv3x3-BN, (+ shortcut), ReLU.

Shortcuts: none (plain), option A (identity; stride-2 subsampling and zero-padded channels where
the shape changes; no parameters) or option B (1x1 projection + BN where the shape changes).

Parameter counts, held by tests/test_models.py against the paper's Table 6:
    depth      20     32     44     56     110    1202
    paper      0.27M  0.46M  0.66M  0.85M  1.7M   19.4M
    ours (A)   269,722 / 464,154 / 658,586 / 853,018 / 1,727,962 / 19,421,274
A plain net has exactly the parameters and state_dict keys of its option-A twin; the layout is
that of the common CIFAR ResNet reference implementation (conv1, bn1, layer1..3 of blocks with
conv1/bn1/conv2/bn2, shortcut.0/shortcut.1 for option B, linear).

Captum-safe: every ReLU is its own nn.ReLU module, applied exactly once per forward, never in place.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (16, 32, 64)  # filters per stage
STAGES = ("layer1", "layer2", "layer3")
DEPTHS = (20, 32, 44, 56, 110)  # the paper's plain/residual pairs (Table 6, Fig. 6); resnet1202 has no twin


@dataclass(frozen=True)
class ModelSpec:
    name: str
    depth: int  # weighted layers: 6n + 2
    shortcut: str | None  # None = plain, "A" = identity + zero-pad, "B" = projection where shape changes
    num_classes: int = 10

    @property
    def blocks_per_stage(self) -> int:
        return (self.depth - 2) // 6

    @property
    def residual(self) -> bool:
        return self.shortcut is not None

    @property
    def kind(self) -> str:
        """"plain" or "residual": what every view colours and groups by."""
        return "residual" if self.residual else "plain"

    def to_dict(self) -> dict:
        return asdict(self)


class ShortcutA(nn.Module):
    """Option A: take every other pixel and zero-pad the new channels. No parameters."""

    def __init__(self, in_planes: int, planes: int):
        super().__init__()
        self.extra = planes - in_planes

    def forward(self, x):
        x = x[:, :, ::2, ::2]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN (+ shortcut) -ReLU. With shortcut=None it is the plain block."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str | None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.residual = shortcut is not None
        if not self.residual:
            self.shortcut = None
        elif stride == 1 and in_planes == planes:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = ShortcutA(in_planes, planes)
        elif shortcut == "B":
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        else:
            raise ValueError(f"unknown shortcut option {shortcut!r}; use None, 'A' or 'B'")

    def residual_branch(self, x):
        """F(x): the block's output before the addition and the final ReLU (the paper's Fig. 7)."""
        return self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))

    def forward(self, x):
        out = self.residual_branch(x)
        if self.residual:
            out = out + self.shortcut(x)
        return self.relu2(out)


class CifarResNet(nn.Module):
    """One network of Sec. 4.2, built from a ModelSpec."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        if spec.depth < 8 or (spec.depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2 with n >= 1, got {spec.depth}")
        self.spec = spec
        n = spec.blocks_per_stage
        self.conv1 = nn.Conv2d(3, WIDTHS[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.relu = nn.ReLU()
        in_planes = WIDTHS[0]
        for i, planes in enumerate(WIDTHS):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_planes, planes, stride, spec.shortcut))
                in_planes = planes
            setattr(self, STAGES[i], nn.Sequential(*blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(WIDTHS[-1], spec.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(self.flatten(self.pool(x)))

    def forward_stages(self, x, blocks: bool = False) -> dict[str, torch.Tensor]:
        """Run the net and return every stage's output (and every block's, if blocks=True).

        Keys in order: "stem" (after conv1-bn1-relu), ["layer1.0", ...], "layer1", "layer2",
        "layer3", "pool" (N x 64), "logits". Same numbers as forward(), no hooks involved.
        """
        out = {"stem": self.relu(self.bn1(self.conv1(x)))}
        h = out["stem"]
        for stage in STAGES:
            for j, block in enumerate(getattr(self, stage)):
                h = block(h)
                if blocks:
                    out[f"{stage}.{j}"] = h
            out[stage] = h
        out["pool"] = self.flatten(self.pool(h))
        out["logits"] = self.linear(out["pool"])
        return out


def _registry() -> dict[str, ModelSpec]:
    specs = {}
    for depth in DEPTHS:
        specs[f"plain{depth}"] = ModelSpec(f"plain{depth}", depth, None)
    for depth in DEPTHS + (1202,):
        specs[f"resnet{depth}"] = ModelSpec(f"resnet{depth}", depth, "A")
    for depth in DEPTHS:
        specs[f"resnet{depth}b"] = ModelSpec(f"resnet{depth}b", depth, "B")
    return specs


REGISTRY: dict[str, ModelSpec] = _registry()


def list_models() -> list[str]:
    """Every public model name: plain20..plain110, resnet20..resnet1202, resnet20b..resnet110b."""
    return list(REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)}") from None


def build(name: str) -> CifarResNet:
    """A freshly He-initialised network by public name, e.g. build("resnet56")."""
    return CifarResNet(get_spec(name))


def find(depth: int, shortcut: str | None) -> str | None:
    """The registered name with this depth and shortcut option (None = plain), or None."""
    return next((s.name for s in REGISTRY.values() if s.depth == depth and s.shortcut == shortcut), None)


def pair(depth: int) -> tuple[str, str]:
    """(plain, residual option A) names at one of DEPTHS, e.g. pair(56) = ("plain56", "resnet56")."""
    if depth not in DEPTHS:
        raise KeyError(f"no plain/residual pair at depth {depth!r}; the pairs are at {DEPTHS}")
    return find(depth, None), find(depth, "A")


def deepest_pair(names) -> tuple[str, str] | None:
    """The deepest pair(depth) with both members among `names` (e.g. the shipped ones), or None."""
    have = set(names)
    both = [d for d in DEPTHS if set(pair(d)) <= have]
    return pair(max(both)) if both else None


CHANCE_ERROR_PCT = 90.0  # the error of a guess among CIFAR-10's 10 classes


def trained(train_error_pct) -> bool:
    """Whether a net with this training error (%) trained at all: under half the error of chance. A net
    that failed to optimise (plain110 ends near 82%) is shown as such, not as one of the trained."""
    return train_error_pct is not None and float(train_error_pct) < CHANCE_ERROR_PCT / 2


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def calibrated(name: str, seed: int = 0, batch: int = 64, images: torch.Tensor | None = None) -> CifarResNet:
    """A fresh build(name) in eval mode whose BN running statistics are those of one batch: `images`
    (normalised, N x 3 x 32 x 32, e.g. real CIFAR images) if given, else `batch` random N(0, 1)
    images. So an eval-mode forward at init normalises (a fresh resnet1202 in eval mode overflows
    otherwise, and deep plain nets shrink to zero). The seed fixes the weights and the random batch;
    the global torch RNG is left as it was (torch.random.fork_rng)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(name)
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        saved = [m.momentum for m in bns]
        for m in bns:
            m.momentum = None  # cumulative average: one batch sets the statistics exactly
        model.train()
        with torch.no_grad():
            model(torch.randn(batch, 3, 32, 32) if images is None else images.float())
        for m, mom in zip(bns, saved):
            m.momentum = mom
    return model.eval()
