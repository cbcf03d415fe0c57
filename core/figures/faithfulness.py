"""Figures for attribution faithfulness: pure functions, plain data in, plotly Figure out.

    curves_figure(data, method)   deletion (left) and insertion (right) curves of one method for each
                                  net, in the net's colour, with its random-order curve dotted; the
                                  legend (one entry per net and order, toggling both panels) gives
                                  the deletion AUC, each trace's name and hover its own
    methods_figure(rows, title)   methods x nets: deletion AUC (left, lower is better) and insertion
                                  AUC (right, higher is better), one bar per net and method, the
                                  random order last; error bars where the rows carry intervals

`data`: {net: {"kind", "fraction", "curves": {name: {"deletion", "insertion", "deletion_auc",
"insertion_auc"}}}} (core.research.faithfulness.curves per net). `rows`: {net: {"kind", "deletion":
{name: {"mean", "low", "high"}}, "insertion": {...}}} (core.research.faithfulness.summary, or one image's
AUCs with low = high = mean). tests/test_faithfulness_figures.py holds the trace counts, the bar order,
the error bars and the empty figures.
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.figures.theme import colours, empty, kinds, layout

PANELS = ("Deletion ↓", "Insertion ↑")  # short: side by side on a phone; the title says which way is better
BETTER = "deletion left, the lower the area the better; insertion right, the higher the better"
CURVES = ("deletion", "insertion")
RANDOM = "random order"


def curves_figure(data: dict, method: str, title: str | None = None) -> go.Figure:
    """Deletion and insertion curves of `method` and of the random order, per net."""
    title = title or f"{method}: the class probability as pixels are removed (deletion) or revealed (insertion)"
    if not data:
        return empty(title, "no curves (no model available)")
    fig = make_subplots(rows=1, cols=2, subplot_titles=PANELS)
    colour = colours(kinds(data))
    for net, d in data.items():
        for col, curve in enumerate(CURVES, start=1):
            for name, dash, width in ((method, "solid", 2.5), (RANDOM, "dot", 1.5)):
                c = d["curves"][name]
                label = f"{net}: {name}"
                fig.add_trace(go.Scatter(
                    x=d["fraction"], y=c[curve], mode="lines", name=f"{label} ({curve} AUC {c[f'{curve}_auc']:.3f})",
                    line=dict(color=colour[net], dash=dash, width=width), legendgroup=f"{net}{name}",
                    showlegend=curve == "deletion",  # one entry per net and order; it toggles both panels
                    hovertemplate=f"{label}<br>{curve}: %{{x:.0%}} of pixels<br>p = %{{y:.3f}}<extra></extra>"),
                    1, col)
    fig.update_xaxes(title_text="fraction of pixels", tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title_text="probability of the class", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    return layout(fig, title, 430, legend="below")


def methods_figure(rows: dict, title: str = "Faithfulness of each method, plain vs residual") -> go.Figure:
    """Grouped bars: per method (x), one bar per net, deletion AUC left and insertion AUC right."""
    title = f"{title}: {BETTER}"
    if not rows:
        return empty(title, "no faithfulness data (no model available)", legend="below")
    fig = make_subplots(rows=1, cols=2, subplot_titles=PANELS, horizontal_spacing=0.08)
    colour = colours(kinds(rows))
    for net, r in rows.items():
        for col, curve in enumerate(CURVES, start=1):
            names = list(r[curve])
            names = [n for n in names if n != RANDOM] + [n for n in names if n == RANDOM]
            iv = [r[curve][n] for n in names]
            bars = any(v["high"] > v["low"] for v in iv)
            fig.add_trace(go.Bar(
                x=names, y=[v["mean"] for v in iv], name=net, marker_color=colour[net], legendgroup=net,
                showlegend=col == 1, error_y=dict(type="data", symmetric=False, visible=bars,
                                                  array=[v["high"] - v["mean"] for v in iv],
                                                  arrayminus=[v["mean"] - v["low"] for v in iv]),
                hovertemplate=f"{net}<br>%{{x}}<br>{curve} AUC %{{y:.3f}}<extra></extra>"), 1, col)
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="area under the curve", range=[0, 1], row=1, col=1)
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_xaxes(tickangle=-30)
    return layout(fig, title, 470, legend="below")
