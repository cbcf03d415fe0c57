"""Plotly figures for the paper study (core/research/study.py): pure functions, plain data in, go.Figure out.

    curves_figure           Fig. 6: training curves, two panels (plain | residual), train error
                            (running, augmented, as in Fig. 6) dashed and test error solid, one
                            colour per depth in both panels (one legend entry per depth, which
                            toggles it in both), x = iterations, y = error %,
                            optional log y axis; series in the order given (shallow to deep)
    layer_responses_figure  Fig. 7: std of each 3x3 layer's BN output per layer index (in forward
                            order, or sorted by std descending as in Fig. 7 bottom)

No torch, no file access. Plain or residual is each entry's "kind"; the look is core/figures/theme.py's.
Every figure serialises with fig.to_json() (tests/test_study.py: one trace per model and split).
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.figures.theme import DASH, colours, depth_colours, empty, kinds, layout

# the measures' names (core.engine.evaluate.MEASURES; tests/test_study.py holds them equal): the history's
# train_err is the running error over the augmented batches since the last log, in train mode
TRAIN, TEST = "train error (running, augmented, as in Fig. 6)", "test error"
LEGEND = {"train_err": "train (running, augmented)", "test_err": "test"}


def curves_figure(curves: dict, log_y: bool = False) -> go.Figure:
    """{name: {"iter", "train_err", "test_err", "kind", "depth"}} -> plain | residual panels; per model a
    dashed train-error and a solid test-error trace in its depth's colour (the same in both panels)."""
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("plain networks", "residual networks (ResNets)"))
    colour = depth_colours({name: c["depth"] for name, c in curves.items()})
    for name, c in curves.items():
        col = 1 if c["kind"] == "plain" else 2
        for split, dash in (("train_err", "dash"), ("test_err", "solid")):
            label = TRAIN if split == "train_err" else TEST
            fig.add_trace(go.Scatter(
                x=list(c.get("iter", [])), y=list(c.get(split, [])), mode="lines", name=f"{name} {LEGEND[split]}",
                legendgroup=f"depth{c['depth']}", showlegend=False,
                line=dict(color=colour[name], dash=dash, width=1.6 if dash == "dash" else 2.2), connectgaps=True,
                hovertemplate=f"<b>{name}</b> {label}<br>iteration %{{x:,}}<br>%{{y:.2f}}%<extra></extra>",
            ), row=1, col=col)
    for depth in sorted({c["depth"] for c in curves.values()}):  # the legend: one entry per depth, both panels
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"{depth} layers", legendgroup=f"depth{depth}",
                                 line=dict(color=next(colour[n] for n, c in curves.items() if c["depth"] == depth),
                                           width=2.2), hoverinfo="skip"), row=1, col=1)
    fig.update_xaxes(title_text="iterations")
    fig.update_yaxes(title_text="error (%)", row=1, col=1)
    fig.update_yaxes(type="log" if log_y else "linear")
    if not log_y:
        fig.update_yaxes(rangemode="tozero")
    if not curves:
        return empty("Training on CIFAR-10", "no training histories shipped yet", 440, "below")
    return layout(fig, f"Fig. 6 on CIFAR-10. Dashed: {TRAIN}; solid: {TEST}", 440, "below")


def layer_responses_figure(data: dict, sorted_: bool = False, failed=()) -> go.Figure:
    """{name: {"layers": [...], "std": [...], "kind"}} -> one line per model, x = layer index (1-based, in
    forward order, or by std descending when sorted_), y = std of the layer response. Nets in `failed`
    (those that did not train: their responses run orders of magnitude larger) are drawn on a right-hand
    axis of their own, so they do not flatten the others."""
    if not data:
        return empty("Std of 3×3 layer responses", "no layer responses computed yet", 440, "below")
    fig = go.Figure()
    colour = colours(kinds(data))
    apart = [n for n in data if n in set(failed)]
    for name in data:
        layers, std = list(data[name].get("layers", [])), list(data[name].get("std", []))
        pairs = list(zip(layers, std))
        if sorted_:
            pairs.sort(key=lambda p: -p[1])
        own = name in apart
        fig.add_trace(go.Scatter(
            x=list(range(1, len(pairs) + 1)), y=[s for _, s in pairs], mode="lines+markers",
            name=f"{name} (did not train; right axis)" if own else name, customdata=[n for n, _ in pairs],
            marker=dict(size=4), yaxis="y2" if own else "y",
            line=dict(color=colour[name], width=1 if own else 2, dash="dot" if own else DASH[data[name]["kind"]]),
            hovertemplate=f"<b>{name}</b><br>layer %{{x}} (%{{customdata}})<br>std %{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(title_text="layer index (sorted by magnitude)" if sorted_ else "layer index (original)")
    fig.update_yaxes(title_text="std of layer response", rangemode="tozero")
    if apart:
        fig.update_layout(yaxis2=dict(title=dict(text=f"std, {', '.join(apart)}", font=dict(color="#999")),
                                      overlaying="y", side="right", rangemode="tozero", showgrid=False))
    return layout(fig, "Std of 3×3 layer responses: plain warm, residual cool", 440, "below")
