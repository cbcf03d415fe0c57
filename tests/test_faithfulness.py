"""core/research/faithfulness.py against cases with a known answer.

A model whose class score is linear in the pixels (logit_0 = w . x, logit_1 = b, so p_0 = sigmoid(w . x - b))
has exact attributions, the contributions x * w (Integrated Gradients from the zero baseline), and an
ideal deletion order: the pixels' summed contributions, largest first (each step then takes the most
score away, and the probability is monotone in the logit). Integrated Gradients' order must reach that
ideal AUC, on deletion and insertion, and a random or reversed order must score worse.
"""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from core.research import attribution
from core.research import faithfulness as F


class LinearScore(nn.Module):
    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(w.numel(), 2)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.weight[0] = w.flatten()
            self.linear.bias.copy_(torch.tensor([0.0, b]))

    def forward(self, x):
        return self.linear(self.flatten(x))


def _case(positive: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, 32, 32, generator=g) * 0.03
    x = torch.randn(1, 3, 32, 32, generator=g)
    if positive:  # every contribution positive: the magnitude order is the ideal one too
        w, x = w.abs() * 0.05, x.abs()
    contribution = (x[0] * w).sum(0)
    # b: half the input's logit, so the probability runs from sigmoid(-s/2) to sigmoid(s/2), unsaturated
    return LinearScore(w, float(contribution.sum()) / 2), x, contribution.numpy()


def _aucs(model, x, orders):
    res = F.curves(model, x, orders, target=0)
    return {k: (c["deletion_auc"], c["insertion_auc"]) for k, c in res["curves"].items()}


@pytest.mark.parametrize("sign, positive", [("all", False), ("absolute", True), ("positive", True)])
def test_integrated_gradients_reaches_the_ideal_auc_and_random_scores_worse(sign, positive):
    model, x, contribution = _case(positive)
    ig, _ = attribution.attribute(model, x, "Integrated Gradients", 0, ig_steps=20)
    np.testing.assert_allclose(ig.sum(-1), contribution, rtol=1e-4, atol=1e-6)  # exact on a linear score
    ideal = np.argsort(-contribution.ravel(), kind="stable")
    orders = {"ideal": ideal, "ig": F.ranking(ig, sign), "random": F.random_ranking(1024),
              "reversed": ideal[::-1]}
    res = F.curves(model, x, orders, target=0)
    a = {k: (c["deletion_auc"], c["insertion_auc"]) for k, c in res["curves"].items()}
    assert a["ig"] == pytest.approx(a["ideal"], abs=1e-6)
    # the ideal curves, computed independently: the logit less (deletion) or made of (insertion) the
    # k largest contributions, against logit_1 = b
    c, b = np.sort(contribution.ravel())[::-1].astype(np.float64), float(model.linear.bias[1].detach())
    taken = np.r_[0.0, np.cumsum(c)][np.rint(np.asarray(res["fraction"]) * 1024).astype(int)]
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    np.testing.assert_allclose(res["curves"]["ideal"]["deletion"], sigmoid(c.sum() - taken - b), atol=1e-5)
    np.testing.assert_allclose(res["curves"]["ideal"]["insertion"], sigmoid(taken - b), atol=1e-5)
    for worse in ("random", "reversed"):
        assert a[worse][0] > a["ideal"][0] + 0.02, (worse, a)  # deletion: lower is better
        assert a[worse][1] < a["ideal"][1] - 0.02, (worse, a)  # insertion: higher is better


def test_no_order_beats_the_ideal_one():
    model, x, contribution = _case(False, seed=3)
    ideal = np.argsort(-contribution.ravel(), kind="stable")
    orders = {"ideal": ideal, **{f"random{s}": F.random_ranking(1024, s) for s in range(8)}}
    a = _aucs(model, x, orders)
    assert all(d >= a["ideal"][0] and i <= a["ideal"][1] for d, i in a.values())


def test_curve_endpoints_are_the_input_and_the_baseline():
    model, x, _ = _case(False)
    res = F.curves(model, x, {"r": F.random_ranking(1024)}, target=0)
    c = res["curves"]["r"]
    p, p0 = (torch.softmax(model(v), 1)[0, 0].item() for v in (x, torch.zeros_like(x)))
    assert res["fraction"][0] == 0 and res["fraction"][-1] == 1 and len(res["fraction"]) == 1024 // F.STEP + 1
    assert c["deletion"][0] == pytest.approx(p, abs=1e-6) and c["insertion"][-1] == pytest.approx(p, abs=1e-6)
    assert c["deletion"][-1] == pytest.approx(p0, abs=1e-6) and c["insertion"][0] == pytest.approx(p0, abs=1e-6)
    assert abs(p - p0) > 0.1


def test_ties_fall_in_a_fixed_random_order_not_by_position():
    flat = np.zeros((32, 32, 3), np.float32)
    flat[5, 7] = 1.0
    order = F.ranking(flat, "absolute")
    assert order[0] == 5 * 32 + 7
    assert np.array_equal(order, F.ranking(flat, "absolute"))  # fixed
    assert not np.array_equal(order[1:50], np.arange(50)[np.arange(50) != 5 * 32 + 7][:49])  # not row-major
    assert sorted(order) == list(range(1024))


def test_every_method_is_scored_and_training_flags_are_restored(net):
    model = copy.deepcopy(net("resnet20"))  # the shared net stays in eval mode for the other tests
    model.train()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    maps, seconds = F.attribute_all(model, x, 3, ["Saliency", "Grad-CAM"])
    res = F.score(model, x, 3, maps)
    assert set(res["curves"]) == {"Saliency", "Grad-CAM", F.RANDOM} and set(seconds) == {"Saliency", "Grad-CAM"}
    assert all(m.training for m in model.modules())
    for c in res["curves"].values():
        assert 0 <= c["deletion_auc"] <= 1 and 0 <= c["insertion_auc"] <= 1


@pytest.mark.parametrize("method", ["Integrated Gradients", "Saliency"])  # a map from the baseline; a gradient
def test_captum_infidelity_is_zero_for_the_exact_map_and_near_one_for_noise(method):
    model, x, _ = _case(False)
    exact, _ = attribution.attribute(model, x, method, 0, ig_steps=20)
    noise = np.random.default_rng(0).normal(size=exact.shape).astype(np.float32)
    good = F.captum_metrics(model, x, 0, method, exact, {"ig_steps": 20})
    bad = F.captum_metrics(model, x, 0, method, noise, {"ig_steps": 20})
    assert good["infidelity"] < 1e-6 and 0.5 < bad["infidelity"] <= 1.0 + 1e-6  # relative: 0 exact, 1 nothing
    # a linear score's gradient never moves; x * w moves with x, by about the radius over |x|
    assert good["sensitivity"] < (1e-5 if method == "Saliency" else 0.05) and good["seconds"] > 0


def test_bootstrap_interval_holds_its_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    small, large = F.interval(rng.normal(0.3, 0.1, 50)), F.interval(rng.normal(0.3, 0.1, 800))
    for iv in (small, large):
        assert iv["low"] < iv["mean"] < iv["high"]
    assert (large["high"] - large["low"]) < (small["high"] - small["low"]) / 2
    assert F.summary({"deletion": {"m": [0.2, 0.3]}, "insertion": {"m": [0.6, 0.8]}})["insertion"]["m"]["mean"] \
        == pytest.approx(0.7)


def test_paired_differences_are_taken_against_each_nets_own_random_order():
    """A net whose probability falls faster under any removal (its random order too) gains nothing:
    only the method's AUC relative to its own random order's counts; the random row keeps the raw gap."""
    r = F.RANDOM
    residual = {"deletion": {"m": [0.2, 0.3, 0.4], r: [0.5, 0.5, 0.5]}, "insertion": {"m": [0.7] * 3, r: [0.3] * 3}}
    plain = {"deletion": {"m": [0.3, 0.4, 0.5], r: [0.6, 0.6, 0.6]}, "insertion": {"m": [0.6] * 3, r: [0.3] * 3}}
    diff = F.paired(residual, plain)
    assert diff["deletion"]["m"]["mean"] == pytest.approx(0.0) and diff["deletion"][r]["mean"] == pytest.approx(-0.1)
    assert diff["insertion"]["m"]["mean"] == pytest.approx(0.1) == diff["insertion"]["m"]["low"]
    with pytest.raises(ValueError, match="same images"):
        F.paired(residual, {"deletion": {"m": [0.3], r: [0.6]}, "insertion": {"m": [0.6], r: [0.3]}})


def test_study_records_each_sign_for_every_image(net):
    model = copy.deepcopy(net("resnet20"))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    res = F.study(model, x, ["Saliency", "Occlusion"], signs=("absolute", "all"))
    assert set(res["signs"]) == {"absolute", "all"} and len(res["predicted"]) == 2
    for per in res["signs"].values():
        assert set(per["deletion"]) == {"Saliency", "Occlusion", F.RANDOM}
        assert all(len(v) == 2 for v in per["insertion"].values())
    assert res["signs"]["absolute"]["deletion"][F.RANDOM] == res["signs"]["all"]["deletion"][F.RANDOM]


def test_a_growing_study_is_compared_on_the_images_both_nets_have():
    """One net ahead of the other (the precompute grows net by net): the pair is compared on their
    common first images, and images that differ are refused."""
    r = F.RANDOM

    def entry(kind, dele, labels):
        curves = {"deletion": {"m": dele, r: [0.5] * len(dele)}, "insertion": {"m": [0.6] * len(dele), r: [0.3] * len(dele)}}
        return {"kind": kind, "labels": labels, "signs": {"absolute": curves}}
    stored = {"p": entry("plain", [0.3, 0.3, 0.9], [1, 2, 3]), "q": entry("residual", [0.2, 0.2], [1, 2])}
    rows, diff, n = F.compare(stored, "p", "q", "absolute")
    assert n == 2 and rows["p"]["deletion"]["m"]["mean"] == pytest.approx(0.3)  # the plain net's 3rd image left out
    assert diff["deletion"]["m"]["mean"] == pytest.approx(-0.1)
    stored["q"]["labels"] = [1, 5]
    with pytest.raises(ValueError, match="different images"):
        F.compare(stored, "p", "q", "absolute")
