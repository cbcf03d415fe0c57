"""The registry builds the paper's nets: shapes, parameter counts, twins, shortcuts, Captum safety."""
import pytest
import torch
from torch import nn

from core.engine import models
from tests.support import by_model

ALL = models.list_models()
PAPER_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}  # Table 6


def test_registry_names():
    for depth in (20, 32, 44, 56, 110):
        assert {f"plain{depth}", f"resnet{depth}", f"resnet{depth}b"} <= set(ALL)
    assert "resnet1202" in ALL
    with pytest.raises(KeyError, match="resnet56"):
        models.build("resnet57")


@pytest.mark.parametrize("name", by_model(ALL))
def test_shapes_and_stages(name, net):
    model = net(name)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model.forward_stages(x, blocks=True)
        logits = model(x)
    assert logits.shape == (2, 10)
    assert torch.allclose(out["logits"], logits)
    assert out["stem"].shape == (2, 16, 32, 32)
    assert out["layer1"].shape == (2, 16, 32, 32)
    assert out["layer2"].shape == (2, 32, 16, 16)
    assert out["layer3"].shape == (2, 64, 8, 8)
    n = (model.spec.depth - 2) // 6
    assert sum(k.startswith("layer3.") for k in out) == n
    assert torch.equal(out[f"layer3.{n - 1}"], out["layer3"])


@pytest.mark.parametrize("name", by_model(ALL))
def test_depth_is_6n_plus_2_weighted_layers(name, net):
    model = net(name)
    convs = [m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and "shortcut" not in n]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == model.spec.depth
    assert all(c.kernel_size == (3, 3) for c in convs)


@pytest.mark.parametrize("name", by_model(n for n in ALL if models.get_spec(n).shortcut != "B"))
def test_params_match_paper(name, net):
    spec = models.get_spec(name)
    p = models.count_params(net(name)) / 1e6
    digits = 2 if spec.depth < 100 else 1
    assert round(p, digits) == PAPER_PARAMS_M[spec.depth]


@pytest.mark.parametrize("name", [n for n in ALL if models.get_spec(n).shortcut == "B"])
def test_option_b_adds_two_projections(name, net):
    """1x1 conv + BN at the two shape changes: 16*32 + 2*32 + 32*64 + 2*64 = 2,752 parameters."""
    extra = models.count_params(net(name)) - models.count_params(net(name[:-1]))
    assert extra == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_twins_identical_state_dict(depth, net):
    plain, res = net(f"plain{depth}").state_dict(), net(f"resnet{depth}").state_dict()
    assert list(plain) == list(res)
    assert all(plain[k].shape == res[k].shape for k in plain)
    assert models.pair(depth) == (f"plain{depth}", f"resnet{depth}")


def test_reference_layout_keys(net):
    keys = set(net("resnet20").state_dict())
    for k in ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.bn2.bias",
              "layer3.2.conv2.weight", "linear.weight", "linear.bias"]:
        assert k in keys
    b = set(net("resnet20b").state_dict())
    assert {"layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.weight", "layer3.0.shortcut.0.weight"} <= b
    assert not any("shortcut" in k for k in keys)


@pytest.mark.parametrize("name", by_model(n for n in ALL if models.get_spec(n).shortcut == "A"))
def test_option_a_shortcuts_are_parameter_free(name, net):
    model = net(name)
    shortcuts = [b.shortcut for s in models.STAGES for b in getattr(model, s)]
    assert sum(isinstance(s, models.ShortcutA) for s in shortcuts) == 2
    assert sum(p.numel() for s in shortcuts for p in s.parameters()) == 0


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 32, 32)
    y = models.ShortcutA(16, 32)(x)
    assert y.shape == (2, 32, 16, 16)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0


def test_plain_has_no_addition():
    """Zeroing a plain block's residual branch zeroes its output; a residual block passes x on."""
    torch.manual_seed(0)
    for name, expect_zero in (("plain20", True), ("resnet20", False)):
        block = models.build(name).layer1[0].eval()
        nn.init.zeros_(block.bn2.weight)
        nn.init.zeros_(block.bn2.bias)
        x = torch.rand(1, 16, 8, 8)
        y = block(x)
        assert (y.abs().sum() == 0) == expect_zero
        if not expect_zero:
            assert torch.allclose(y, x)


@pytest.mark.parametrize("name", by_model(ALL))
def test_captum_safe_relus(name, net):
    """Every ReLU is its own module, not in place, and runs exactly once per forward."""
    model = net(name)
    all_mods = list(model.named_modules(remove_duplicate=False))
    assert len(all_mods) == len(dict(model.named_modules())), "a module object is used twice"
    relus = [m for _, m in all_mods if isinstance(m, nn.ReLU)]
    assert len(relus) == 1 + 2 * 3 * model.spec.blocks_per_stage
    assert not any(m.inplace for m in relus)
    calls = {id(m): 0 for m in relus}
    hooks = [m.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls[id(m)] + 1)) for m in relus]
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert set(calls.values()) == {1}


@pytest.mark.parametrize("name", by_model(models.list_models()))
def test_spec_is_the_truth(name):
    """Kind, depth and option come from the spec; pair and find agree with it for every model."""
    spec = models.get_spec(name)
    assert spec.kind == ("residual" if spec.shortcut else "plain")
    assert models.find(spec.depth, spec.shortcut) == name
    if spec.depth in models.DEPTHS and spec.shortcut != "B":
        plain, residual = models.pair(spec.depth)
        assert name in (plain, residual)
        assert models.get_spec(plain).kind == "plain" and models.get_spec(residual).shortcut == "A"
    else:  # option B, resnet1202: in no pair
        assert name not in [n for d in models.DEPTHS for n in models.pair(d)]


def test_deepest_pair():
    assert models.deepest_pair([]) is None
    assert models.deepest_pair(["plain20", "resnet56", "resnet20b"]) is None  # no complete pair
    assert models.deepest_pair(["resnet20", "plain20", "plain56", "resnet110"]) == ("plain20", "resnet20")
    assert models.deepest_pair(models.list_models()) == ("plain110", "resnet110")
    with pytest.raises(KeyError, match="no plain/residual pair at depth 1202"):
        models.pair(1202)
