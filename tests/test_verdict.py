"""core/research/verdict.py: the paper's cases, the tolerances, and each comparability check.

The test errors of the paper's cases are Table 6's. Its training errors are not tabulated (Fig. 6
plots them), so the training errors below are made-up values of the shape the paper describes
("similar training error" for ResNet-1202 and ResNet-110; plain-56 above plain-20)."""
import math

import pytest

from core.research import verdict

RECIPE = {"name": "paper", "iters": 64000, "batch_size": 128, "weight_decay": 0.0001}


def run(model, train, test, runs=1, train_std=math.nan, test_std=math.nan, **kw):
    return {"model": model, "train": train, "test": test, "train_std": train_std, "test_std": test_std,
            "train_runs": runs, "test_runs": runs, "n_train": 50_000, "n_test": 10_000, "finished": True,
            "iterations": 64_000, "recipe": dict(RECIPE), "setup": "1×128", **kw}


def label(deep, shallow):
    return verdict.compare(deep, shallow)["diagnosis"]


def test_plain56_vs_plain20_is_degradation():
    assert label(run("plain56", 6.0, 13.0), run("plain20", 1.0, 9.7)) == "degradation"


def test_higher_training_error_is_degradation_even_with_lower_test_error():
    """The old rule looked at test error first and called this "better"."""
    assert label(run("plain56", 2.0, 9.0), run("plain20", 1.0, 9.7)) == "degradation"


@pytest.mark.parametrize("train_1202, train_110", [(0.08, 0.06), (0.10, 0.02), (0.09, 0.0)])
def test_resnet1202_vs_resnet110_is_overfitting(train_1202, train_110):
    # both under 0.1% training error ("similar"), 1202's higher; test 7.93 vs 6.43 (Table 6)
    out = verdict.compare(run("resnet1202", train_1202, 7.93), run("resnet110", train_110, 6.43))
    assert out["diagnosis"] == "overfitting"
    assert "test +1.50 points (noise ±0.73: binomial" in out["basis"]
    assert "(noise ±0.10: the 0.1 floor; binomial on 50,000 and 50,000 images, one run each: ±0.0" in out["basis"]


def test_the_floor_does_not_hide_degradation():
    # 0.25 points = 125 more of 50,000 training images wrong: beyond the floor and the binomial
    assert label(run("resnet1202", 0.27, 7.93), run("resnet110", 0.02, 6.43)) == "degradation"


def test_a_difference_inside_the_noise_is_within_noise():
    # resnet56 vs resnet44 in Table 6: 6.97 vs 7.17, 0.20 points apart on 10,000 images each
    assert label(run("resnet56", 0.30, 6.97), run("resnet44", 0.30, 7.17)) == "within noise"
    assert label(run("resnet32", 0.30, 7.51), run("resnet20", 0.30, 8.75)) == "better"  # 1.24 points
    assert label(run("x", 0.0, 7.0), run("y", 0.0, 7.0)) == "within noise"  # zero training error: no spread


def test_one_image_never_decides():
    one = 100 / 10_000
    assert label(run("a", 0.30, 7.00 + one), run("b", 0.30, 7.00)) == "within noise"
    assert label(run("a", 0.30 + 100 / 50_000, 7.0), run("b", 0.30, 7.0)) == "within noise"
    assert label(run("a", 0.0, 0.0 + one), run("b", 0.0, 0.0)) == "within noise"  # the floor, not ±0.02


def test_binomial_tolerance():
    # two 7% errors on 10,000 images: 2 * sqrt(.07 * .93 * 2e-4) = 0.72 points
    assert verdict.binomial_tolerance(7.0, 10_000, 7.0, 10_000) == pytest.approx(0.7216, abs=1e-4)
    assert verdict.binomial_tolerance(0.0, 50_000, 0.0, 50_000) == 0.0
    assert verdict.binomial_tolerance(8.0, 10_000, 6.0, 10_000) == verdict.binomial_tolerance(7.0, 10_000, 7.0, 10_000)


def test_seed_spread_sets_the_tolerance_from_three_runs():
    # the paper's ResNet-110: mean 6.61 ± 0.16 over 5 runs
    deep = run("resnet110", 0.05, 6.61, runs=5, train_std=0.01, test_std=0.16)
    shallow = run("resnet56", 0.10, 6.97, runs=3, train_std=0.01, test_std=0.10)
    out = verdict.compare(deep, shallow)
    tol = 2 * math.sqrt(0.16 ** 2 / 5 + 0.10 ** 2 / 3)  # 0.19: the 0.36 difference counts
    assert f"noise ±{tol:.2f}: seed spread, 5 and 3 runs" in out["basis"] and out["diagnosis"] == "better"
    # with one of them a single run, the binomial decides (0.36 < 0.72)
    single = verdict.compare(deep, run("resnet56", 0.10, 6.97))
    assert single["diagnosis"] == "within noise"
    assert "binomial on 10,000 and 10,000 images, 5 and 1 runs" in single["basis"]
    # three runs, but one lacks the error (std over two): the binomial, not a NaN tolerance
    gaps = run("resnet56", 9.10, 6.97, runs=3, train_std=0.01, test_std=0.10, train_runs=2)
    out = verdict.compare(gaps, run("resnet44", 5.0, 7.17, runs=3, train_std=0.01, test_std=0.1))
    assert out["diagnosis"] == "degradation" and "binomial on 50,000 and 50,000 images, 2 and 3 runs" in out["basis"]


@pytest.mark.parametrize("change, why", [
    (dict(finished=False, iterations=44_000),
     "`plain56` is unfinished (44,000 iterations); iterations differ (44,000 vs 64,000)"),
    (dict(finished=False), "`plain56` is unfinished (64,000 iterations)"),
    (dict(recipe={**RECIPE, "weight_decay": 0.0}), "recipes differ (weight_decay)"),
    (dict(recipe={**RECIPE, "augment": False}), "recipes differ (augment)"),
    (dict(iterations=32_000), "iterations differ (32,000 vs 64,000)"),
    (dict(n_train=45_000), "training sets differ (45,000 vs 50,000 images)"),
    (dict(finished=None, iterations=None), "`plain56` is unfinished (? iterations); iterations differ (? vs 64,000)"),
    (dict(setup="2×64, BN per rank"), "setups differ (2×64, BN per rank vs 1×128)"),
])
def test_only_comparable_runs_are_compared(change, why):
    out = verdict.compare(run("plain56", 9.0, 15.0, **change), run("plain20", 1.0, 9.7))
    assert out == {"diagnosis": "not comparable", "basis": why}


def test_logging_and_the_recipe_name_do_not_matter():
    other = {**RECIPE, "name": "mine", "eval_every": 100}
    assert label(run("plain56", 6.0, 13.0, recipe=other), run("plain20", 1.0, 9.7)) == "degradation"


def test_nothing_to_compare():
    assert verdict.compare(run("plain20", 1.0, 9.7), None) == {"diagnosis": "—", "basis": "nothing shallower shipped"}
    out = verdict.compare(run("plain56", math.nan, 12.0), run("plain20", 1.0, 9.7))
    assert out == {"diagnosis": "—", "basis": "no train error of `plain56`"}
