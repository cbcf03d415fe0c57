"""core.engine.introspection: per-unit shapes/params/FLOPs against hand counts, feature maps, gradient flow."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.engine import introspection as I
from core.engine import models

SMALL = ["plain20", "resnet20", "resnet20b", "plain56", "resnet56"]
STAGE_SHAPES = {"stem": (16, 32, 32), "layer1": (16, 32, 32), "layer2": (32, 16, 16), "layer3": (64, 8, 8)}


pytestmark = pytest.mark.usefixtures("one_thread")

def fresh(name, seed=0):
    torch.manual_seed(seed)
    return models.build(name)


def hand_flops(name) -> int:
    """2 x multiply-adds of every conv and the linear, counted from the paper's layout."""
    spec = models.get_spec(name)
    n = spec.blocks_per_stage
    macs = 3 * 16 * 9 * 32 * 32                                    # conv1
    macs += 2 * n * 16 * 16 * 9 * 32 * 32                          # layer1
    macs += 16 * 32 * 9 * 16 * 16 + (2 * n - 1) * 32 * 32 * 9 * 16 * 16   # layer2
    macs += 32 * 64 * 9 * 8 * 8 + (2 * n - 1) * 64 * 64 * 9 * 8 * 8      # layer3
    macs += 64 * 10                                                # linear
    if spec.shortcut == "B":                                       # two 1x1 projections
        macs += 16 * 32 * 16 * 16 + 32 * 64 * 8 * 8
    return 2 * macs


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)


@pytest.mark.parametrize("name", SMALL)
def test_architecture_rows(name):
    model = fresh(name)
    rows = I.architecture(model)
    n = model.spec.blocks_per_stage
    assert [r["name"] for r in rows] == (["stem"] + [f"{s}.{j}" for s in models.STAGES for j in range(n)]
                                        + ["linear"])
    assert [r["stage"] for r in rows] == ["stem"] + [s for s in models.STAGES for _ in range(n)] + ["head"]
    for r in rows[:-1]:
        assert r["shape"] == STAGE_SHAPES[r["stage"]]
        assert (r["channels"], r["height"], r["width"]) == r["shape"]
    assert rows[-1]["shape"] == (10,) and rows[-1]["channels"] == 10
    assert sum(r["params"] for r in rows) == models.count_params(model)
    assert rows[0]["params"] == 3 * 16 * 9 + 2 * 16 and rows[-1]["params"] == 64 * 10 + 10
    assert all(isinstance(r["flops"], int) and r["flops"] > 0 for r in rows)
    assert rows[0]["flops"] == 2 * 3 * 16 * 9 * 32 * 32 and rows[-1]["flops"] == 2 * 64 * 10
    assert sum(r["flops"] for r in rows) == hand_flops(name)


def test_resnet20_flops_in_paper_range():
    total = sum(r["flops"] for r in I.architecture(fresh("resnet20")))
    assert total == 81_102_080  # ~40.6M multiply-adds
    assert 80e6 < total < 83e6


def test_architecture_leaves_model_alone():
    model = fresh("resnet20b").train()
    before = copy.deepcopy(model.state_dict())
    I.architecture(model)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats untouched (eval inside)


@pytest.mark.parametrize("channels", [8, 3])
def test_feature_maps(channels, net):
    model = net("resnet20")
    x = torch.randn(1, 3, 32, 32)
    maps = I.feature_maps(model, x, channels=channels)
    assert list(maps) == ["stem", "layer1", "layer2", "layer3"]
    for stage, arr in maps.items():
        c, h, w = STAGE_SHAPES[stage]
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float32
        assert arr.shape == (channels, h, w)
    with torch.no_grad():
        ref = model.forward_stages(x)
    np.testing.assert_allclose(maps["layer2"], ref["layer2"][0, :channels].numpy(), rtol=1e-5, atol=1e-6)
    assert (maps["layer3"] >= 0).all()  # after the final ReLU


def test_feature_maps_eval_mode_and_restores():
    model = fresh("plain20").train()
    before = model.bn1.running_mean.clone()
    maps = I.feature_maps(model, torch.randn(1, 3, 32, 32))
    assert model.training and torch.equal(model.bn1.running_mean, before)
    assert maps["stem"].shape == (8, 32, 32)


def _conv_names(model):
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("name", ["plain20", "resnet20", "resnet20b"])
@pytest.mark.parametrize("training", [False, True])
def test_gradient_flow_structure(name, training, batch):
    model = fresh(name).train(training)
    before = copy.deepcopy(model.state_dict())
    x, y = batch
    flow = I.gradient_flow(model, x, y)
    n = model.spec.blocks_per_stage
    convs = _conv_names(model)
    assert len(flow["conv"]) == len(convs) == 6 * n + 1 + (2 if name.endswith("b") else 0)
    assert [c for c, _ in flow["conv"]] == convs[::-1]
    assert flow["conv"][0][0] == f"layer3.{n - 1}.conv2" and flow["conv"][-1][0] == "conv1"
    assert [b for b, _ in flow["blocks"]] == [f"{s}.{j}" for s in models.STAGES[::-1] for j in
                                              reversed(range(n))] + ["stem"]
    norms = [v for _, v in flow["conv"] + flow["blocks"]]
    assert all(math.isfinite(v) and v > 0 for v in norms)
    # nothing left behind: mode, .grad, parameters and buffers
    assert model.training is training
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():
        loss = F.cross_entropy(model.eval()(x), y).item()
    assert flow["loss"] == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_gradient_flow_restores_mode(training, batch):
    model = fresh("resnet20").train(training)
    I.gradient_flow(model, *batch)
    assert model.training is training
    I.gradient_flow(model, *batch, bn_mode="train")
    assert model.training is training


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_gradient_flow_matches_backward(bn_mode, batch):
    model = fresh("resnet20b")
    x, y = batch
    ref = copy.deepcopy(model).train(bn_mode == "train")
    F.cross_entropy(ref(x), y).backward()
    flow = dict(I.gradient_flow(model, x, y, bn_mode=bn_mode)["conv"])
    for name in ("conv1", "layer2.0.shortcut.0", "layer3.2.conv2"):
        expected = ref.get_submodule(name).weight.grad.norm().item()
        assert flow[name] == pytest.approx(expected, rel=1e-4)


def test_gradient_flow_train_mode_restores_bn_buffers(net, batch):
    model = copy.deepcopy(net("plain20"))  # calibrated running stats, not the init ones
    before = {k: v.clone() for k, v in model.state_dict().items()}
    eval_flow = I.gradient_flow(model, *batch, bn_mode="eval")
    train_flow = I.gradient_flow(model, *batch, bn_mode="train")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. num_batches_tracked
    assert not model.training
    assert train_flow["loss"] != eval_flow["loss"]  # batch statistics were really used
    with pytest.raises(ValueError, match="bn_mode"):
        I.gradient_flow(model, *batch, bn_mode="batch")


def test_gradient_flow_without_requires_grad(batch):
    model = fresh("plain20")
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():  # e.g. called from inside an inference context
        flow = I.gradient_flow(model, *batch)
    assert all(v > 0 for _, v in flow["conv"])
    assert not any(p.requires_grad for p in model.parameters())


def test_plain_vs_residual_at_init(batch):
    """The measured picture (see the module docstring) on the 56-layer pair, cheaply: with batch
    statistics plain56's early gradients explode, resnet56's stay moderate; with BN at its init
    statistics resnet56's forward pass blows up instead."""
    x, y = batch
    plain_t = I.gradient_flow(fresh("plain56"), x, y, bn_mode="train")
    res_t = I.gradient_flow(fresh("resnet56"), x, y, bn_mode="train")
    assert I.early_late_ratio(plain_t) > 100 * I.early_late_ratio(res_t)
    assert dict(plain_t["conv"])["conv1"] > 100 * dict(res_t["conv"])["conv1"]
    res_e = I.gradient_flow(fresh("resnet56"), x, y, bn_mode="eval")
    plain_e = I.gradient_flow(fresh("plain56"), x, y, bn_mode="eval")
    assert res_e["loss"] > 100 * plain_e["loss"]
    assert 0.01 < I.early_late_ratio(plain_e) < 100


def test_early_late_ratio():
    flow = {"conv": [("c3", 2.0), ("c2", 1.0), ("c1", 0.5)], "blocks": [("b2", 4.0), ("stem", 8.0)]}
    assert I.early_late_ratio(flow) == 0.25
    assert I.early_late_ratio(flow, "blocks") == 2.0
