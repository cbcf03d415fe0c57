"""research/robustness.py, figures/robustness.py and ui/robustness_text.py: the study's errors
against engine.evaluate, a net that ignores its input, the summary's and comparison's arithmetic,
the official set's label check, and the figures' panels and traces."""
import numpy as np
import pytest
import torch

from engine import checkpoints, cifar10c, corruptions
from engine.data import load_sample
from engine.evaluate import error_rate
from engine.settings import Settings
from figures import robustness as fig
from research import robustness as R
from ui import robustness_text as text


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


def test_study_errors_are_error_rate_on_the_same_corrupted_images(sample, resnet20):
    x, y = sample
    model, norm = resnet20
    res = R.study({"resnet20": resnet20}, x, y, R.generated(x, ["pixelate"], seed=4))
    assert res["clean"]["resnet20"] == pytest.approx(error_rate(model, x, y, norm))
    for s in corruptions.SEVERITIES:
        assert res["errors"]["resnet20"]["pixelate"][s - 1] == pytest.approx(
            error_rate(model, corruptions.corrupt(x, "pixelate", s, 4), y, norm))
    assert res["errors"]["resnet20"]["pixelate"][4] > res["clean"]["resnet20"]  # severity 5 hurts


def test_summary_and_compare_arithmetic():
    errs = {"a": [10, 20, 30, 40, 50], "b": [5, 5, 5, 5, 5]}
    s = R.summary(4.0, errs)
    assert s == {"clean": 4.0, "mce": 17.5, "gap": 13.5, "per_corruption": {"a": 30.0, "b": 5.0}, "worst": "a"}
    result = {"clean": {"p": 10.0, "r": 8.0},
              "errors": {"p": {"a": [30] * 5, "b": [20] * 5, "c": [40] * 5}, "r": {"a": [20] * 5, "b": [20] * 5, "c": [50] * 5}}}
    cmp = R.compare(result, "p", "r", 10_000)
    p = (30 + 30) / 200  # both mCEs are 30%
    assert cmp["tolerance"] == pytest.approx(200 * np.sqrt(2 * p * (1 - p) / 10_000))  # about 1.3 points
    assert cmp["diff"] == {"a": -10, "b": 0, "c": 10} and cmp["better"] == ["a"] and cmp["worse"] == ["c"]
    rows = text.robustness_rows(cmp, {"a": "A"}, {}, "p", "r")
    assert rows[0] == ["A", "", 30.0, 20.0, -10.0] and rows[-2][2:] == [30.0, 30.0, 0.0] and rows[-1][2:] == [10.0, 8.0, -2.0]
    sentence = text.robustness_reading(cmp, {"a": "A", "c": "C"}, "p", "r", 10_000, "generated")
    assert "errs less under **A** and more under **C**" in sentence and "mean corruption error of 30.0%" in sentence


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
    assert len(fig.heatmap_figure({"resnet20": e["resnet20"]}, {}, ("plain20", "resnet20"), "t").data) == 1
    assert not fig.heatmap_figure({}, {}, ("plain20", "resnet20"), "t").data


def test_depth_figure_bars_per_kind_and_panel():
    rows = [{"net": "plain20", "kind": "plain", "depth": 20, "clean": 9.7, "mce": 30.0},
            {"net": "resnet20", "kind": "residual", "depth": 20, "clean": 8.4, "mce": 28.0},
            {"net": "resnet56", "kind": "residual", "depth": 56, "clean": 7.0, "mce": 26.0}]
    f = fig.depth_figure(rows, "t")
    assert [(t.name, list(t.x), list(t.y)) for t in f.data] == [
        ("plain", ["20"], [9.7]), ("plain", ["20"], [30.0]), ("residual", ["20", "56"], [8.4, 7.0]),
        ("residual", ["20", "56"], [28.0, 26.0])]


def test_levels_markdown_lists_every_corruption_and_the_source():
    md = text.levels_markdown()
    assert all(c.title in md for c in corruptions.CORRUPTIONS.values()) and "hendrycks/robustness" in md
    assert md.count("\n|") == len(corruptions.CORRUPTIONS) + 1
