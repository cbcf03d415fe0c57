"""core/research/arch_cost.py (counts vs the paper, on the meta device), core/research/landscape.py (small fresh
CIFAR nets, few images), core/figures/cost.py and core/figures/landscape.py."""
import numpy as np
import pytest
import torch

from core.engine import models
from core.figures import cost as figures_cost
from core.figures import landscape as figures_landscape
from core.research import arch_cost, landscape, precompute
from core.settings import Settings

# the paper's multiply-adds per 224x224 image (Table 1; VGG-19 from Sec. 3.3), in G
PAPER = {"vgg19": 19.6, "resnet18": 1.8, "resnet34": 3.6, "plain34": 3.6, "resnet50": 3.8,
         "resnet101": 7.6, "resnet152": 11.3}


@pytest.mark.parametrize("arch,gmacs", sorted(PAPER.items()))
def test_flops_match_paper(arch, gmacs):
    r = arch_cost.count(arch)
    assert r["macs"] == r["flops"] // 2 and r["arch"] == arch
    assert abs(r["macs"] / 1e9 - gmacs) / gmacs < 0.05, r


def test_params_match_torchvision_reference():
    # well-known parameter counts of torchvision's nets
    assert arch_cost.count("resnet50")["params"] == 25_557_032
    assert arch_cost.count("resnet34")["params"] == 21_797_672
    assert arch_cost.count("vgg16")["params"] == 138_357_544
    # torchvision's own stride placement (v1.5) costs more; parameters unchanged
    tv = arch_cost.count("resnet50", paper_strides=False)
    assert tv["params"] == 25_557_032 and tv["macs"] > arch_cost.count("resnet50")["macs"]


@pytest.mark.parametrize("depth", [34, 50])
def test_plain_is_resnet_minus_shortcuts(depth):
    """FlopCounterMode counts convs and matmuls only, so the additions cost nothing in "flops":
    plainN = resnetN minus exactly its projection shortcuts, in FLOPs and in parameters."""
    res, plain = arch_cost.count(f"resnet{depth}"), arch_cost.count(f"plain{depth}")
    assert res["projection_flops"] > 0 and plain["projection_flops"] == 0
    assert plain["flops"] == res["flops"] - res["projection_flops"]
    assert plain["params"] == res["params"] - res["projection_params"]
    assert plain["additions"] == 0 and res["additions"] > 0


def test_plain_net_runs_without_shortcut():
    with torch.device("meta"):
        net = arch_cost.build("plain18")
        out = net(torch.empty(2, 3, 224, 224))
    assert out.shape == (2, 1000)
    assert not any("downsample" in n for n, _ in net.named_parameters())


def test_table_and_stored_view_are_json():
    import json

    data, names = precompute.costs(Settings())
    rows = data["table"]
    assert names == [] and rows == arch_cost.table()
    assert [r["arch"] for r in rows] == list(arch_cost.ARCHS)
    json.dumps(rows)
    by = {r["arch"]: r for r in rows}
    assert by["vgg19"]["macs"] > 5 * by["resnet34"]["macs"]  # the paper: 19.6 G vs 3.6 G


def test_stack_vs_single():
    c = 64
    r = arch_cost.stack_vs_single(2, c)
    assert r["params_stacked"] == 18 * c * c and r["params_single"] == 25 * c * c
    assert r["receptive_field_stacked"] == r["receptive_field_single"] == 5
    assert r["nonlinearities_stacked"] == 2 and r["nonlinearities_single"] == 1
    assert r["ratio"] == pytest.approx(18 / 25)
    r3 = arch_cost.stack_vs_single(3, c)
    assert r3["params_stacked"] == 27 * c * c and r3["params_single"] == 49 * c * c


# ---------------------------------------------------------------- landscape

@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    net = models.build("resnet20").eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(24, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (24,), generator=g)
    return net, x, y


def _snapshot(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_direction_filter_normalised(small):
    net = small[0]
    d = landscape.direction(net, 0)
    params = dict(net.named_parameters())
    assert set(d) == set(params)
    for name, p in params.items():
        assert d[name].shape == p.shape
        if p.dim() <= 1:  # BN weights/biases, linear bias
            assert not d[name].any(), name
        else:
            torch.testing.assert_close(d[name].flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
    assert torch.equal(landscape.direction(net, 0)["conv1.weight"], d["conv1.weight"])
    assert not torch.equal(landscape.direction(net, 1)["conv1.weight"], d["conv1.weight"])


def test_line_at_zero_is_model_loss(small):
    net, x, y = small
    before = _snapshot(net)
    res = landscape.line(net, x, y, [-0.5, 0.0, 0.5], seed=0)
    assert res["alpha"] == [-0.5, 0.0, 0.5] and len(res["loss"]) == len(res["err"]) == 3
    with torch.no_grad():
        logits = net(x)
    assert res["loss"][1] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-4)
    assert res["err"][1] == pytest.approx(100.0 * float((logits.argmax(1) != y).float().mean()))
    assert res["loss"][0] != pytest.approx(res["loss"][1])
    after = _snapshot(net)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not net.training


def test_line_accepts_numpy(small):
    net, x, y = small
    res = landscape.line(net, x.numpy(), y.numpy(), np.array([0.0]))
    assert len(res["loss"]) == 1


def test_surface_shape_and_centre(small):
    net, x, y = small
    before = _snapshot(net)
    plain = models.build("plain20").eval()
    res = landscape.surface(net, x, y, [-0.2, 0.0, 0.2], [0.0, 0.3])
    assert res["alpha"] == [-0.2, 0.0, 0.2] and res["beta"] == [0.0, 0.3]
    assert np.array(res["loss"]).shape == (3, 2) and np.array(res["err"]).shape == (3, 2)
    col = landscape.line(net, x, y, [-0.2, 0.0, 0.2], seed=0)["loss"]  # beta = 0 column = line(seed 0)
    assert [r[0] for r in res["loss"]] == pytest.approx(col, rel=1e-4)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert np.isfinite(landscape.surface(plain, x[:8], y[:8], [0.0, 1.0], [0.0])["loss"]).all()


def test_grids():
    assert landscape.grid(1.0, 5) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert len(landscape.LIVE_ALPHAS) == 13 and landscape.LIVE_ALPHAS[6] == 0.0


# ---------------------------------------------------------------- figures

def test_figures():
    rows = arch_cost.table()
    fig = figures_cost.imagenet_figure(rows)
    assert len(fig.data) >= 3
    fig.to_json()
    fig = figures_cost.stack_figure([arch_cost.stack_vs_single(k, 64) for k in (1, 2, 3)])
    assert len(fig.data) == 2
    fig.to_json()
    lines = {"plain20": {"alpha": [-1, 0, 1], "loss": [5.0, 0.1, 4.0], "err": [90, 5, 80], "kind": "plain"},
             "resnet20": {"alpha": [-1, 0, 1], "loss": [2.0, 0.1, 2.0], "err": [60, 5, 60], "kind": "residual"}}
    fig = figures_landscape.landscape_line_figure(lines)
    assert len(fig.data) == 2
    fig.to_json()
    surf = {n: {"alpha": [-1, 0, 1], "beta": [-1, 0, 1],
                "loss": [[3, 2, 3], [2, 0.1, 2], [3, 2, float("inf")]]} for n in ("plain20", "resnet20")}
    for kind in ("contour", "surface"):
        fig = figures_landscape.landscape_surface_figure(surf, kind)
        assert len(fig.data) == 2
        fig.to_json()
    with pytest.raises(ValueError):
        figures_landscape.landscape_surface_figure(surf, "bars")
