"""core/research/robustness.py, core/figures/robustness.py and core/serving/robustness_text.py: the study's errors
against core.engine.evaluate, a net that ignores its input, the summary's and comparison's arithmetic,
the official set's label check, and the figures' panels and traces."""
import numpy as np
import pytest
import torch

from core.engine import checkpoints, cifar10c, corruptions
from core.engine.data import load_sample
from core.engine.evaluate import error_rate
from core.figures import robustness as fig
from core.research import robustness as R
from core.serving import robustness_text as text
from core.settings import Settings


class Constant(torch.nn.Module):
    """Says class `k` whatever it sees."""

    def __init__(self, k=3):
        super().__init__()
        self.k, self.w = k, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.nn.functional.one_hot(torch.full((len(x),), self.k), 10).float() + 0 * self.w


@pytest.fixture(scope="module")
def sample():
    return load_sample(Settings().sample)


@pytest.fixture(scope="module")
def resnet20():
    ck = checkpoints.load(Settings().checkpoints / "resnet20")
    return ck.model.eval(), ck.normalization


def test_a_net_that_ignores_its_input_errs_the_same_everywhere(sample):
    x, y = sample
    res = R.study({"const": (Constant(3), None)}, x, y, R.generated(x, ["contrast", "gaussian_noise"]))
    want = 100 * np.mean(y != 3)
    assert res["clean"]["const"] == pytest.approx(want)
    assert res["errors"]["const"] == {"contrast": [pytest.approx(want)] * 5, "gaussian_noise": [pytest.approx(want)] * 5}
    assert np.array_equal(R.unpack(res["wrong"]["const"]["contrast"][2], len(y)), y != 3)


def test_study_errors_are_error_rate_on_the_same_corrupted_images(sample, resnet20):
    x, y = sample
    model, norm = resnet20
    res = R.study({"resnet20": resnet20}, x, y, R.generated(x, ["pixelate"], seed=4))
    assert res["clean"]["resnet20"] == pytest.approx(error_rate(model, x, y, norm))
    for s in corruptions.SEVERITIES:
        assert res["errors"]["resnet20"]["pixelate"][s - 1] == pytest.approx(
            error_rate(model, corruptions.corrupt(x, "pixelate", s, 4), y, norm))
    assert res["errors"]["resnet20"]["pixelate"][4] > res["clean"]["resnet20"]  # severity 5 hurts


def _result(clean: dict, per: dict) -> dict:
    """A study result from hand-made masks: clean {net: pattern}, per {net: {corruption: pattern}},
    each pattern the 4-image wrong mask of every severity, tiled to 400 images."""
    def mask(p):
        return np.tile(np.array(p, bool), 100)
    out = {"clean": {}, "errors": {}, "wrong": {}}
    for net in clean:
        out["clean"][net] = 100 * mask(clean[net]).mean()
        out["errors"][net] = {c: [100 * mask(p).mean()] * 5 for c, p in per[net].items()}
        out["wrong"][net] = {"clean": R.pack(mask(clean[net])), **{c: [R.pack(mask(p))] * 5 for c, p in per[net].items()}}
    return out


def test_summary_and_compare_arithmetic():
    errs = {"a": [10, 20, 30, 40, 50], "b": [5, 5, 5, 5, 5]}
    s = R.summary(4.0, errs)
    assert s == {"clean": 4.0, "mce": 17.5, "gap": 13.5, "per_corruption": {"a": 30.0, "b": 5.0}, "worst": "a"}
    res = _result({"p": [1, 0, 0, 0], "r": [0, 0, 0, 0]},
                  {"p": {"a": [1, 1, 0, 0], "b": [0, 1, 0, 0], "c": [0, 0, 0, 0]},
                   "r": {"a": [0, 0, 0, 0], "b": [0, 1, 0, 0], "c": [1, 0, 0, 0]}})
    cmp = R.compare(res, "p", "r", 400)
    a = cmp["rows"]["a"]  # per image: error -1, -1, 0, 0; less the clean difference (-1, 0, 0, 0): 0, -1, 0, 0
    assert a["error"]["diff"] == pytest.approx(-50) and a["degradation"]["diff"] == pytest.approx(-25)
    se = 100 * np.std(np.tile([0, -1, 0, 0], 100), ddof=1) / np.sqrt(400)
    assert a["degradation"]["high"] == pytest.approx(-25 + 1.959964 * se)
    assert cmp["rows"]["b"]["degradation"]["diff"] == pytest.approx(25)  # same errors, but r was better on clean
    assert cmp["rows"]["c"]["degradation"]["diff"] == pytest.approx(50) and cmp["clean_diff"] == -25
    assert cmp["better"] == ["a"] and cmp["worse"] == ["b", "c"]
    assert cmp["rows"]["all"]["error"]["diff"] == pytest.approx((-50 + 0 + 25) / 3)
    rows = text.robustness_rows(cmp, {"a": "A"}, {}, "p", "r")
    assert rows[0][:4] == ["A", "", 50.0, 0.0] and rows[0][5].startswith("-25.00 [")
    assert rows[-1] == ["clean (no corruption)", "", 25.0, 0.0, "-25.00", ""]
    sentence = text.robustness_reading(cmp, {"a": "A", "c": "C"}, "p", "r", 400, "generated")
    assert "less under **A**, more under **b, C**" in sentence and "`r` errs 16.7% against `p`'s 25.0%" in sentence


def test_masks_round_trip():
    m = np.random.default_rng(0).random(10_001) < 0.3
    assert np.array_equal(R.unpack(R.pack(m), len(m)), m)


def test_official_sets_must_carry_the_test_labels(monkeypatch, sample):
    x, y = sample
    monkeypatch.setattr(cifar10c, "available", lambda folder: ["fog"])
    monkeypatch.setattr(cifar10c, "load", lambda folder, c, s, n: (x[:n], (y[:n] + (s == 4)) % 10))
    sets = R.official("somewhere", y)
    assert [(c, s) for c, s, _ in [next(sets) for _ in range(3)]] == [("fog", 1), ("fog", 2), ("fog", 3)]
    with pytest.raises(cifar10c.OfficialSetError, match="not the CIFAR-10 test labels"):
        next(sets)


def test_severity_figure_one_line_per_net():
    data = {"plain20": {"kind": "plain", "cls": "cat", "p": [0.9, 0.8, 0.5, 0.3, 0.2, 0.1]},
            "resnet20": {"kind": "residual", "cls": "dog", "p": [0.9] * 6}}
    f = fig.severity_figure(data, "t")
    assert [t.name for t in f.data] == ["plain20: p(cat)", "resnet20: p(dog)"] and list(f.data[0].x) == list(range(6))
    assert fig.severity_figure({}, "t").layout.annotations[0].text == "no model available"


def test_heatmap_panels_share_one_scale_and_show_the_difference():
    e = {"plain20": {"a": [10, 20, 30, 40, 50], "b": [1, 2, 3, 4, 5]}, "resnet20": {"a": [5, 10, 15, 20, 60], "b": [1] * 5}}
    f = fig.heatmap_figure(e, {"a": "A"}, ("plain20", "resnet20"), "t")
    assert len(f.data) == 3 and [t.zmax for t in f.data[:2]] == [60, 60]
    assert list(f.data[0].y) == ["b", "A"]  # the first corruption on top
    assert list(f.data[2].z[1]) == [-5, -10, -15, -20, 10] and f.data[2].zmid == 0 and f.data[2].zmax == 20
    small = {n: {"a": [v + 1 for v in e["plain20"]["a"]]} if n == "resnet20" else {"a": e["plain20"]["a"]} for n in e}
    assert fig.heatmap_figure(small, {}, ("plain20", "resnet20"), "t").data[2].zmax == fig.MIN_SPAN
    assert len(fig.heatmap_figure({"resnet20": e["resnet20"]}, {}, ("plain20", "resnet20"), "t").data) == 1
    assert not fig.heatmap_figure({}, {}, ("plain20", "resnet20"), "t").data


def test_depth_figure_bars_per_kind_and_panel():
    rows = [{"net": "plain20", "kind": "plain", "depth": 20, "clean": 9.7, "mce": 30.0, "gap": 20.3},
            {"net": "resnet20", "kind": "residual", "depth": 20, "clean": 8.4, "mce": 28.0, "gap": 19.6},
            {"net": "resnet56", "kind": "residual", "depth": 56, "clean": 7.0, "mce": 26.0, "gap": 19.0}]
    f = fig.depth_figure(rows, "t")
    assert [(t.name, list(t.x), list(t.y)) for t in f.data] == [
        ("plain", ["20"], [9.7]), ("plain", ["20"], [30.0]), ("plain", ["20"], [20.3]),
        ("residual", ["20", "56"], [8.4, 7.0]), ("residual", ["20", "56"], [28.0, 26.0]),
        ("residual", ["20", "56"], [19.6, 19.0])]


def test_levels_markdown_lists_every_corruption_and_the_source():
    md = text.levels_markdown()
    assert all(c.title in md for c in corruptions.CORRUPTIONS.values()) and "hendrycks/robustness" in md
    assert md.count("\n|") == len(corruptions.CORRUPTIONS) + 1
