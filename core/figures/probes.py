"""Figures for the lesion and shattered-gradient probes: pure functions, plain data in, plotly
Figure out; nothing here imports torch. The look (plain warm, residual cool, by each entry's
"kind") is core/figures/theme.py's; every figure serialises with fig.to_json().

    lesion_figure(data)          test error after deleting each single block (x: block, forward
                                 order). Per model: the identity blocks as a line+markers broken at
                                 each downsampling block, the downsampling blocks (listed in the
                                 data's "downsampling") as open diamonds with their own legend entry
                                 ("<name>: downsampling block deleted"), and the intact error as a
                                 dashed horizontal line, all in the model's colour
    random_lesion_figure(data)   error vs number k of randomly deleted identity blocks, mean ± std
                                 bars (k = 0 is the intact net)
    shattered_figure(lines)      top: g(t) / std(g) per model; bottom: autocorrelation vs lag

`data` is the stored lesion view ({name: core.research.lesion.study(...) + ...}; after a JSON round trip
pairs are lists); `lines` is core.research.shattered.lines(...) ({name: {"t", "g", "autocorr", "kind"}}).
tests/test_probes.py holds the trace counts, that downsampling traces differ in marker and name
from the identity ones, and that empty data gives the "no lesion data" figure.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.figures.theme import colours, empty, kinds, layout

DOWN_MARKER = dict(symbol="diamond-open", size=11, line=dict(width=2))  # a deleted downsampling block


def lesion_figure(data: dict, title: str = "Deleting one block at test time") -> go.Figure:
    """Per model: error (%) after deleting each single block, identity and downsampling blocks apart;
    intact error as a horizontal line."""
    if not data:
        return empty(title, "no lesion data (no trained checkpoints?)")
    colour = colours(kinds(data))
    fig = go.Figure()
    order: list[str] = []
    for name, d in data.items():
        xs = [str(b) for b, _ in d["single"]]
        ys = [float(e) for _, e in d["single"]]
        down = set(d.get("downsampling", ()))
        order += [x for x in xs if x not in order]
        c = colour[name]
        fig.add_trace(go.Scatter(x=xs, y=[None if x in down else y for x, y in zip(xs, ys)], mode="lines+markers",
                                 name=name, connectgaps=False,
                                 line=dict(color=c, width=2), marker=dict(size=7), legendgroup=name,
                                 hovertemplate=f"{name}<br>delete %{{x}} (identity): %{{y:.2f}} % error"
                                               "<extra></extra>"))
        if down:
            dx = [x for x in xs if x in down]
            fig.add_trace(go.Scatter(x=dx, y=[y for x, y in zip(xs, ys) if x in down], mode="markers",
                                     name=f"{name}: downsampling block deleted", legendgroup=name, showlegend=False,
                                     marker=dict(color=c, **DOWN_MARKER),
                                     hovertemplate=f"{name}<br>delete %{{x}} (downsampling): %{{y:.2f}} % error"
                                                   "<extra></extra>"))
        base = float(d["baseline"])
        fig.add_trace(go.Scatter(x=[xs[0], xs[-1]] if xs else [], y=[base, base], mode="lines",
                                 name=f"{name}: intact ({base:.2f} %)", legendgroup=name, showlegend=False,
                                 line=dict(color=c, width=1.5, dash="dash"), hoverinfo="skip"))
    fig.add_hline(y=90, line=dict(color="#999", width=1, dash="dot"), annotation_text="chance (90 %)",
                  annotation_position="top left")
    fig.update_xaxes(title="deleted block (diamonds: downsampling blocks, no identity path; dashed: intact error)",
                     categoryorder="array", categoryarray=order)
    fig.update_yaxes(title="test error (%)", rangemode="tozero")
    return layout(fig, title, 460)


def random_lesion_figure(data: dict, title: str = "Deleting k random identity blocks") -> go.Figure:
    """Per model: mean error (%) vs k identity blocks deleted, std error bars; k = 0 is the intact model."""
    data = {n: d for n, d in (data or {}).items() if d.get("random")}
    if not data:
        return empty(title, "no random-lesion data")
    colour = colours(kinds(data))
    fig = go.Figure()
    for name, d in data.items():
        r = d["random"]
        ks = [0] + [int(k) for k in r["k"]]
        mean = [float(d["baseline"])] + [float(m) for m in r["mean"]]
        std = [0.0] + [float(s) for s in r["std"]]
        fig.add_trace(go.Scatter(x=ks, y=mean, mode="lines+markers", name=name,
                                 line=dict(color=colour[name], width=2),
                                 error_y=dict(type="data", array=std, visible=True, thickness=1.2),
                                 hovertemplate=f"{name}<br>k=%{{x}} identity blocks: %{{y:.2f}} "
                                               "± %{error_y.array:.2f} %<extra></extra>"))
    fig.add_hline(y=90, line=dict(color="#999", width=1, dash="dot"), annotation_text="chance (90 %)",
                  annotation_position="top left")
    fig.update_xaxes(title="identity blocks deleted (k; downsampling blocks never)", dtick=1)
    fig.update_yaxes(title="test error (%)", rangemode="tozero")
    return layout(fig, title, 420)


def shattered_figure(lines: dict[str, dict], max_lag: int = 50,
                     title: str = "Gradients along a line between two images") -> go.Figure:
    """Top: g(t) normalised by its std, per model. Bottom: autocorrelation of g vs lag."""
    if not lines:
        return empty(title, "no gradient lines")
    colour = colours(kinds(lines))
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.14,
                        subplot_titles=("g(t) = d logit / dt, divided by its std",
                                        "autocorrelation of g"))  # short: it fits a phone
    for name, line in lines.items():
        g = np.asarray(line["g"], dtype=np.float64)
        sd = g.std()
        gn = (g - g.mean()) / sd if sd > 0 else g * 0.0
        c = colour[name]
        fig.add_trace(go.Scatter(x=list(line["t"]), y=gn.tolist(), mode="lines", name=name, legendgroup=name,
                                 line=dict(color=c, width=1.5)), row=1, col=1)
        acf = line["autocorr"][:max_lag + 1]
        fig.add_trace(go.Scatter(x=list(range(len(acf))), y=list(acf), mode="lines+markers", name=name,
                                 legendgroup=name, showlegend=False, line=dict(color=c, width=1.5),
                                 marker=dict(size=4)), row=2, col=1)
    fig.update_xaxes(title_text="t  (x = (1-t)·a + t·b)", row=1, col=1)
    fig.update_yaxes(title_text="g / std(g)", row=1, col=1)
    fig.update_xaxes(title_text="lag (points)", row=2, col=1)
    fig.update_yaxes(title_text="autocorrelation (noise: ~0)", range=[-1.05, 1.05], row=2, col=1)
    return layout(fig, title, 640)
