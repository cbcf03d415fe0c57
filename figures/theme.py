"""One look for every figure: template, font, palette, layout, and the empty-figure message.

Plain nets are drawn in warm colours and residual nets in cool ones (colours), except in the
Fig. 6 curves, whose two panels pair plain-N and ResNet-N by one colour per depth (depth_colours);
kind and depth come from the data (read from the model's spec upstream), never from a name. Figures fill their container's width (autosize) and leave room above the plot for the
title and a horizontal legend.
"""
from __future__ import annotations

import plotly.graph_objects as go

TEMPLATE = "plotly_white"
FONT = dict(family="Inter, Helvetica, Arial, sans-serif", size=13)
PALETTE = {  # in order of appearance: callers pass series shallow to deep
    "plain": ("#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#a50026"),
    "residual": ("#1f77b4", "#17becf", "#2ca02c", "#9467bd", "#393b79", "#081d58"),
    "vgg": ("#7f7f7f",),
}
DASH = {"plain": "dash", "residual": "solid", "vgg": "dot"}
DEPTH = {20: "#1f77b4", 32: "#ff7f0e", 44: "#2ca02c", 56: "#d62728", 110: "#9467bd", 1202: "#8c564b"}


def colours(kinds: dict[str, str]) -> dict[str, str]:
    """{series: colour} for {series: kind}: the n-th series of a kind gets that kind's n-th colour."""
    out, seen = {}, {}
    for name, kind in kinds.items():
        family = PALETTE[kind]
        out[name] = family[seen.get(kind, 0) % len(family)]
        seen[kind] = seen.get(kind, 0) + 1
    return out


def depth_colours(depths: dict[str, int]) -> dict[str, str]:
    """{series: colour} for {series: depth}: one colour per depth (the Fig. 6 panels pair plain-N with
    ResNet-N by colour); depths outside DEPTH take the plain family in order."""
    spare = iter(PALETTE["plain"] * len(depths))
    return {name: DEPTH.get(d) or next(spare) for name, d in depths.items()}


def kinds(data: dict) -> dict[str, str]:
    """{series: kind} of a dict of per-series entries that each carry "kind"."""
    return {name: entry["kind"] for name, entry in data.items()}


def layout(fig: go.Figure, title: str, height: int, legend: str = "top") -> go.Figure:
    """The shared look. legend "top": a horizontal legend above the plot, the title above it;
    "below": the legend under the x axis (figures whose subplots carry their own titles)."""
    if legend == "below":
        fig.update_layout(title=dict(text=title, x=0.01) if title else None, margin=dict(l=60, r=20, t=70, b=90),
                          legend=dict(orientation="h", y=-0.18))
    else:
        fig.update_layout(title=dict(text=title, x=0.01, y=0.99, yanchor="top") if title else None,
                          margin=dict(l=70, r=30, t=100 if title else 50, b=50),
                          legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0.0))
        height += 30 if title else 0
    fig.update_layout(template=TEMPLATE, autosize=True, height=height, font=FONT)
    return fig


def empty(title: str, message: str, height: int = 300, legend: str = "top") -> go.Figure:
    """A figure that says why there is nothing to show."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=15, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, title, height, legend)
