"""core/figures/faithfulness.py: trace counts, bar order (methods, then the random order), error bars only
where intervals have width, colours by kind, the empty figures, and JSON round-trips, on real
core.research.faithfulness output."""
import json

import numpy as np
import torch

from core.figures import faithfulness as fig_f
from core.figures.theme import PALETTE
from core.research import faithfulness


def _curves(net, kind):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    x = torch.randn(1, 3, 32, 32)
    orders = {"Saliency": np.arange(1024), faithfulness.RANDOM: faithfulness.random_ranking(1024)}
    return {**faithfulness.curves(model, x, orders, 2), "kind": kind}


def test_the_random_order_has_one_name_in_both_layers():
    assert fig_f.RANDOM == faithfulness.RANDOM


def test_curves_figure_has_method_and_random_per_net_and_panel():
    data = {"plain20": _curves("plain20", "plain"), "resnet20": _curves("resnet20", "residual")}
    fig = fig_f.curves_figure(data, "Saliency")
    assert len(fig.data) == 8
    auc = data["resnet20"]["curves"]["Saliency"]["deletion_auc"]
    assert f"resnet20: Saliency (deletion AUC {auc:.3f})" in [t.name for t in fig.data]
    assert {t.line.color for t in fig.data if t.name.startswith("plain20")} == {PALETTE["plain"][0]}
    assert [t.line.dash for t in fig.data[:2]] == ["solid", "dot"]
    json.loads(fig.to_json())
    assert len(fig_f.curves_figure({}, "Saliency").data) == 0


def test_methods_figure_orders_bars_and_draws_intervals_only_with_width():
    single = {"deletion": {faithfulness.RANDOM: {"mean": .5, "low": .5, "high": .5},
                           "IG": {"mean": .2, "low": .2, "high": .2}}}
    single["insertion"] = single["deletion"]
    study = {"deletion": {"IG": {"mean": .3, "low": .25, "high": .36},
                          faithfulness.RANDOM: {"mean": .5, "low": .45, "high": .55}}}
    study["insertion"] = study["deletion"]
    fig = fig_f.methods_figure({"plain20": {"kind": "plain", **single}, "resnet20": {"kind": "residual", **study}})
    assert [t.name for t in fig.data] == ["plain20", "plain20", "resnet20", "resnet20"]
    assert list(fig.data[0].x) == ["IG", faithfulness.RANDOM] == list(fig.data[2].x)  # the random order last
    assert not fig.data[0].error_y.visible and fig.data[2].error_y.visible
    assert list(fig.data[2].error_y.array) == [0.06, 0.05] or np.allclose(fig.data[2].error_y.array, [0.06, 0.05])
    assert fig.layout.barmode == "group"
    json.loads(fig.to_json())
    assert len(fig_f.methods_figure({}).data) == 0
