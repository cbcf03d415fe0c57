"""Figures for what ImageNet-size nets cost (core/research/arch_cost.py's rows): pure functions, plain data
in, plotly Figure out; no torch. The look is core/figures/theme.py's.

    imagenet_figure   params vs multiply-adds per 224x224 image, VGG / plain / ResNet (log axes)
    stack_figure      weights of k stacked 3x3 layers vs one (2k+1)x(2k+1) layer, as k grows
"""
from __future__ import annotations

import plotly.graph_objects as go

from core.figures.theme import PALETTE, layout

FAMILY_STYLE = {"vgg": (PALETTE["vgg"][0], "square", "VGG"), "plain": (PALETTE["plain"][0], "circle", "plain"),
                "resnet": (PALETTE["residual"][0], "diamond", "ResNet")}


def imagenet_figure(rows: list[dict]) -> go.Figure:
    """Scatter of parameters (M) vs multiply-adds (G) per 224x224 image; one series per family;
    the paper's figure, where given, as a hollow marker at the same parameter count."""
    fig = go.Figure()
    for fam, (colour, symbol, label) in FAMILY_STYLE.items():
        sub = [r for r in rows if r["family"] == fam]
        if not sub:
            continue
        fig.add_trace(go.Scatter(
            x=[r["macs"] / 1e9 for r in sub], y=[r["params"] / 1e6 for r in sub], mode="markers+text",
            name=label, text=[r["arch"] for r in sub], textposition="top center",
            marker=dict(color=colour, symbol=symbol, size=11),
            hovertemplate="%{text}: %{x:.2f} G multiply-adds, %{y:.2f} M params<extra></extra>"))
    paper = [r for r in rows if r.get("paper_gmacs") and r["family"] != "plain"]
    if paper:
        fig.add_trace(go.Scatter(
            x=[r["paper_gmacs"] for r in paper], y=[r["params"] / 1e6 for r in paper], mode="markers",
            name="paper (Table 1)", text=[r["arch"] for r in paper],
            marker=dict(color="rgba(0,0,0,0)", size=15, line=dict(color="black", width=1)),
            hovertemplate="%{text}: paper %{x} G multiply-adds<extra></extra>"))
    fig.update_xaxes(type="log", title="multiply-adds per 224x224 image (G)")
    fig.update_yaxes(type="log", title="parameters (M)")
    return layout(fig, "ImageNet nets: VGG is 4-5x costlier than a deeper ResNet", 520)


def stack_figure(rows: list[dict]) -> go.Figure:
    """Rows from core.research.arch_cost.stack_vs_single(k, C) for several k: weights of both designs vs k,
    with the ratio on hover; the x axis names the matching receptive field."""
    rows = sorted(rows, key=lambda r: r["k"])
    ks = [r["k"] for r in rows]
    labels = [f"{r['k']} x 3x3 vs {r['kernel']}x{r['kernel']}" for r in rows]
    c = rows[0]["channels"] if rows else 0
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=[r["params_stacked"] for r in rows], name="k stacked 3x3 (k ReLUs)",
                         marker_color="#1f77b4", customdata=[f"{r['ratio']:.2f}" for r in rows],
                         hovertemplate="%{x}: %{y:,} weights (ratio %{customdata})<extra></extra>"))
    fig.add_trace(go.Bar(x=labels, y=[r["params_single"] for r in rows], name="one big kernel (1 ReLU)",
                         marker_color="#7f7f7f", hovertemplate="%{x}: %{y:,} weights<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="same receptive field " + ", ".join(f"{2 * k + 1}" for k in ks))
    fig.update_yaxes(title=f"weights (C = {c} in and out, no bias)")
    return layout(fig, "Why 3x3: a stack sees as far with fewer weights and more nonlinearities", 440)
