"""Lesion study (core/research/lesion.py), shattered gradients (core/research/shattered.py) and their figures
(core/figures/probes.py), on small fresh models with BN calibrated (core.engine.models.calibrated).

Lesions: downsampling blocks are read from the modules (layer2.0, layer3.0 for every registered net
at depths 20 and 32); deleting one on an option-A resnet zeroes half its output channels; single
lesions cover every block; random lesions draw identity blocks only and record their subsets; the
figure draws downsampling blocks apart (own marker and legend entry)."""
import copy
import json

import numpy as np
import pytest
import torch

from core.engine import data, models
from core.figures.probes import lesion_figure, random_lesion_figure, shattered_figure
from core.research import lesion, shattered
from core.settings import Settings

NAMES = ("resnet20", "plain20", "resnet20b")


@pytest.fixture(scope="module")
def nets():
    return {n: models.calibrated(n, seed=0) for n in NAMES}


@pytest.fixture(scope="module")
def sample():
    return data.load_sample(Settings().sample)


def _x(sample, n=4):
    return data.normalize(torch.as_tensor(sample[0][:n]))


def test_blocks_in_forward_order(nets):
    expected = [f"layer{s}.{j}" for s in (1, 2, 3) for j in range(3)]
    for m in nets.values():
        assert lesion.blocks(m) == expected


def test_calibrated_deterministic_and_eval(nets):
    m = models.calibrated("resnet20", seed=0)
    assert not m.training
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(m(x), nets["resnet20"](x))
    state = torch.random.get_rng_state()
    other = models.calibrated("resnet20", seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    assert not torch.equal(other.conv1.weight, m.conv1.weight)
    bn = m.layer3[2].bn2  # running statistics set from the batch, not left at (0, 1)
    assert bn.running_var.min() > 0 and not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("block", ["layer1.1", "layer2.0", "layer3.0", "layer3.2"])
def test_deletion_acts_from_that_block_on(nets, sample, name, block):
    model = nets[name]
    x = _x(sample)
    with torch.no_grad():
        before = model.forward_stages(x, blocks=True)
        les = lesion.lesioned(model, [block])
        out = les.forward_stages(x, blocks=True)
        after = model.forward_stages(x, blocks=True)
    keys = list(before)
    i = keys.index(block)
    for k in keys[:i]:  # everything before the deleted block is untouched
        torch.testing.assert_close(out[k], before[k])
    assert out[block].shape == before[block].shape  # shape-changing blocks too (plain, A, B)
    assert not torch.allclose(out[block], before[block])
    assert not torch.allclose(out["logits"], before["logits"])
    for k in keys:  # the original model is unchanged afterwards
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=0)
    assert all(not isinstance(b, lesion.Lesioned) for s in ("layer1", "layer2", "layer3")
               for b in getattr(model, s))


def test_deleted_block_semantics(nets, sample):
    x = _x(sample)
    with torch.no_grad():
        for name in ("resnet20", "plain20"):  # identity shortcut / same-shape plain block: y = x
            st = lesion.lesioned(nets[name], "layer1.1").forward_stages(x, blocks=True)
            torch.testing.assert_close(st["layer1.1"], st["layer1.0"])
        # option A and plain at a stage change: subsample + zero-padded channels
        for name in ("resnet20", "plain20"):
            st = lesion.lesioned(nets[name], "layer2.0").forward_stages(x, blocks=True)
            h = st["layer1"][:, :, ::2, ::2]
            torch.testing.assert_close(st["layer2.0"][:, 8:24], h)
            assert st["layer2.0"][:, :8].abs().max() == 0 and st["layer2.0"][:, 24:].abs().max() == 0
        # option B: ReLU(BN(conv1x1(x)))
        m = nets["resnet20b"]
        st = lesion.lesioned(m, "layer3.0").forward_stages(x, blocks=True)
        torch.testing.assert_close(st["layer3.0"], torch.relu(m.layer3[0].shortcut(st["layer2"])))
    with pytest.raises(KeyError, match="unknown block"):
        lesion.lesioned(nets["resnet20"], ["layer4.0"])


DEPTH_20_32 = [n for n in models.list_models() if models.get_spec(n).depth in (20, 32)]


@pytest.mark.parametrize("name", DEPTH_20_32)
def test_downsampling_blocks_read_from_the_modules(name):
    m = models.build(name)
    assert lesion.downsampling(m) == ["layer2.0", "layer3.0"]
    assert lesion.identity_blocks(m) == [b for b in lesion.blocks(m) if b not in ("layer2.0", "layer3.0")]
    m.layer1[1].conv1.stride = (2, 2)  # from the modules, not the names
    assert lesion.downsampling(m) == ["layer1.1", "layer2.0", "layer3.0"]


@pytest.mark.parametrize("name", ["resnet20", "plain20"])
def test_deleting_a_downsampling_block_zeroes_half_the_channels(nets, sample, name):
    x = _x(sample)
    with torch.no_grad():
        for block, prev in (("layer2.0", "layer1.2"), ("layer3.0", "layer2.2")):
            st = lesion.lesioned(nets[name], block).forward_stages(x, blocks=True)
            out = st[block]
            zero = (out.abs().amax(dim=(0, 2, 3)) == 0).sum().item()
            dead_in = (st[prev][:, :, ::2, ::2].abs().amax(dim=(0, 2, 3)) == 0).sum().item()  # zero already
            assert zero == out.shape[1] // 2 + dead_in
            assert (nets[name].forward_stages(x, blocks=True)[block].abs().amax(dim=(0, 2, 3)) == 0).sum() < zero
        st = lesion.lesioned(nets[name], "layer1.1").forward_stages(x, blocks=True)  # identity block: y = x
        torch.testing.assert_close(st["layer1.1"], st["layer1.0"])


def test_lesion_errors_and_random(nets, sample):
    x, y = sample
    model = nets["resnet20"]
    res = lesion.lesion_errors(model, x, y, data.NORMALIZATION, batch_size=80)
    assert [b for b, _ in res["single"]] == lesion.blocks(model)  # every block, its error each
    assert res["downsampling"] == ["layer2.0", "layer3.0"]
    for e in [res["baseline"]] + [e for _, e in res["single"]]:
        assert 0.0 <= e <= 100.0
        assert abs(e * len(y) / 100 - round(e * len(y) / 100)) < 1e-6  # a whole number of mistakes
    pool = lesion.identity_blocks(model)
    r = lesion.random_lesions(model, x[:20], y[:20], data.NORMALIZATION, ks=(1, 2, 7), draws=3, seed=0)
    assert r["pool"] == pool and len(pool) == 7
    assert r["k"] == [1, 2, 7] and len(r["mean"]) == len(r["std"]) == len(r["subsets"]) == 3
    assert all(s >= 0 for s in r["std"]) and all(0 <= m <= 100 for m in r["mean"])
    assert r["draws"] == [3, 3, 1] and r["std"][-1] == 0.0  # only one 7-subset of 7 identity blocks
    for k, n, subsets in zip(r["k"], r["draws"], r["subsets"]):
        assert len(subsets) == n and all(len(sub) == len(set(sub)) == k for sub in subsets)
        assert all(b in pool for sub in subsets for b in sub)  # never a downsampling block
    assert r["subsets"][-1] == [pool]
    r2 = lesion.random_lesions(model, x[:20], y[:20], data.NORMALIZATION, ks=(1, 2, 7), draws=3, seed=0)
    assert r2 == r
    exact = lesion.random_lesions(model, x[:10], y[:10], data.NORMALIZATION, ks=(1,), draws=7)
    assert exact["subsets"] == [[[b] for b in pool]]  # C(7, 1) <= draws: every 1-subset once
    assert lesion.default_ks(model) == list(range(1, 8))
    with pytest.raises(ValueError, match="identity blocks"):
        lesion.random_lesions(model, x[:10], y[:10], data.NORMALIZATION, ks=(8,))


def test_study_of_one_model(nets, sample):
    x, y = sample
    for name in ("plain20", "resnet20"):
        out = lesion.study(nets[name], x[:10], y[:10], data.NORMALIZATION, ks=(2,), draws=1)
        assert out["kind"] == models.get_spec(name).kind
        assert [b for b, _ in out["single"]] == lesion.blocks(nets[name]) and out["random"]["k"] == [2]
        assert out["downsampling"] == ["layer2.0", "layer3.0"]
        back = json.loads(json.dumps(out))
        assert lesion.summary(back) == lesion.summary(out)


def test_summary():
    res = {"baseline": 8.0, "downsampling": ["layer2.0", "layer3.0"],
           "single": [["layer1.0", 20.0], ["layer1.1", 13.0], ["layer2.0", 64.0], ["layer2.1", 48.5],
                      ["layer3.0", 77.0], ["layer3.1", 30.0]]}
    s = lesion.summary(res)
    assert s["baseline"] == 8.0
    assert s["identity"] == {"min": ("layer1.1", 13.0), "max": ("layer2.1", 48.5)}
    assert s["downsampling"] == [("layer2.0", 64.0), ("layer3.0", 77.0)]
    only_down = lesion.summary({"baseline": 1.0, "downsampling": ["a"], "single": [("a", 5.0)]})
    assert only_down["identity"] == {"min": None, "max": None}


@pytest.mark.parametrize("name", ["resnet20", "plain20"])
def test_gradient_line_matches_finite_differences(nets, sample, name):
    m64 = copy.deepcopy(nets[name]).double()
    xa = _x(sample, 2).double()
    a, b = xa[0], xa[1]
    line = shattered.gradient_line(m64, a, b, points=9, batch_size=4)
    assert len(line["t"]) == len(line["g"]) == 9
    assert np.all(np.isfinite(line["g"]))
    with torch.no_grad():
        assert line["cls"] == int(m64(a[None]).argmax())
    # f is piecewise linear in t with many kinks (every ReLU), so the step must be tiny (float64);
    # at a kink autograd takes one side, hence the closest of central / forward / backward
    h = 1e-8
    for i in (2, 6):
        t = line["t"][i]
        with torch.no_grad():
            def f(s):
                return m64(((1 - s) * a + s * b)[None])[0, line["cls"]].item()
            f0, fp, fm = f(t), f(t + h), f(t - h)
        fds = [(fp - fm) / (2 * h), (fp - f0) / h, (f0 - fm) / h]
        err = min(abs(fd - line["g"][i]) for fd in fds)
        assert err <= 1e-4 * max(1.0, abs(fds[0])), (t, fds, line["g"][i])
    # float32 model, explicit class
    line32 = shattered.gradient_line(nets[name], xa[0].float(), xa[1].float(), points=20, cls=3)
    assert line32["cls"] == 3 and len(line32["g"]) == 20
    g64 = shattered.gradient_line(m64, a, b, 20, cls=3)["g"]
    close = np.isclose(line32["g"], g64, rtol=1e-2, atol=1e-3 * np.abs(g64).max())
    assert close.mean() >= 0.9  # float32 rounding may flip a ReLU at a point or two (plain nets)


def test_autocorrelation():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(2000)
    r = shattered.autocorrelation(noise, 10)
    assert len(r) == 11 and r[0] == pytest.approx(1.0)
    assert abs(r[1]) < 0.1
    sine = np.sin(np.linspace(0, 4 * np.pi, 256)) + 5.0
    r = shattered.autocorrelation(sine, 50)
    assert r[0] == pytest.approx(1.0) and r[1] > 0.95
    assert shattered.autocorrelation([2.0] * 5, 10) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_figures(nets, sample):
    fake = {"plain20": {"baseline": 9.8, "single": [["layer1.0", 50.0], ["layer1.1", 60.0], ["layer2.0", 85.0],
                                                    ["layer2.1", 70.0]], "kind": "plain", "downsampling": ["layer2.0"],
                        "random": {"k": [1, 2], "mean": [55.0, 80.0], "std": [5.0, 3.0]}},
            "resnet20": {"baseline": 8.1, "single": [("layer1.0", 12.0), ("layer1.1", 9.0), ("layer2.0", 64.0),
                                                     ("layer2.1", 20.0)], "kind": "residual",
                         "downsampling": ["layer2.0"],
                         "random": {"k": [1, 2], "mean": [10.0, 14.0], "std": [1.0, 2.0]}}}
    for fig in (lesion_figure(fake), random_lesion_figure(fake), lesion_figure({}), random_lesion_figure({})):
        fig.to_json()
    fig = lesion_figure(json.loads(json.dumps(fake)))
    assert len(fig.data) == 6 and len(random_lesion_figure(fake).data) == 2
    assert [t.name for t in fig.data[:3]] == ["plain20", "plain20: downsampling block deleted",
                                              "plain20: intact (9.80 %)"]
    ident, down = fig.data[3], fig.data[4]  # resnet20
    assert list(ident.x) == ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]  # forward order, a gap at layer2.0
    assert list(ident.y) == [12.0, 9.0, None, 20.0] and not ident.connectgaps
    assert list(down.x) == ["layer2.0"] and list(down.y) == [64.0] and down.mode == "markers"
    assert down.marker.symbol != (ident.marker.symbol or "circle") and down.marker.color == ident.line.color
    assert "downsampling" in down.hovertemplate and "%{x}" in down.hovertemplate and "%{y" in down.hovertemplate
    assert list(fig.layout.xaxis.categoryarray) == ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]
    assert "identity" in random_lesion_figure(fake).layout.xaxis.title.text
    assert "no lesion data" in lesion_figure({}).layout.annotations[0].text
    xa = _x(sample, 2)
    lines = shattered.lines({n: (nets[n], xa[0], xa[1]) for n in ("plain20", "resnet20")}, points=16)
    assert [v["kind"] for v in lines.values()] == ["plain", "residual"]
    assert lines["plain20"]["autocorr"] == shattered.autocorrelation(lines["plain20"]["g"])
    fig = shattered_figure(lines, max_lag=10)
    assert len(fig.data) == 4 and len(fig.data[1].y) == 11  # the stored autocorrelation, lags 0..10
    assert fig.data[0].line.color != fig.data[2].line.color  # plain warm, residual cool
    json.loads(fig.to_json())
    assert fig.data[0].line.color != fig.data[2].line.color
    shattered_figure({}).to_json()


def test_init_pair_takes_bn_statistics_from_real_images(sample):
    """The shattered view's nets at init: seed-0 weights, BN statistics of 64 real CIFAR images
    (not of noise), apart from the line's two ends."""
    x_u8 = sample[0]
    pair = shattered.init_pair(20, x_u8)
    assert list(pair) == list(models.pair(20))
    model, norm = pair["plain20"]
    assert norm == data.NORMALIZATION and not model.training
    batch = data.normalize(torch.as_tensor(x_u8[shattered.CALIBRATION]))
    assert len(batch) == shattered.CALIBRATION_IMAGES == 64 and shattered.CALIBRATION.start == 2
    with pytest.raises(ValueError, match="need 66 images, got 40"):
        shattered.init_pair(20, x_u8[:40])
    with torch.no_grad():
        y = model.conv1(batch)
    torch.testing.assert_close(model.bn1.running_mean, y.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(model.bn1.running_var, y.var(dim=(0, 2, 3), unbiased=True))
    noise = models.calibrated("plain20")  # the same weights, statistics of N(0, 1) images
    assert torch.equal(noise.conv1.weight, model.conv1.weight)
    assert not torch.allclose(noise.bn1.running_mean, model.bn1.running_mean, atol=1e-2)
