"""Plotly figures for the paper study (research/study.py): pure functions, plain data in, go.Figure out.

    curves_figure           Fig. 6: training curves, two panels (plain | residual), train error
                            dashed and test error solid, one colour per depth in both panels,
                            x = iterations, y = error %, optional log y axis
    layer_responses_figure  Fig. 7: std of each 3x3 layer's BN output per layer index (in forward
                            order, or sorted by std descending as in Fig. 7 bottom), plain nets in
                            warm colours and residual nets in cool ones

No torch, no file access. Every figure uses the "plotly_white" template, is 900 px wide and
serialises with fig.to_json() (held by tests/test_study.py: one trace per model and split).
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

TEMPLATE = "plotly_white"
WIDTH = 900
FONT = dict(family="Inter, Helvetica, Arial, sans-serif", size=13)
DEPTH_COLOURS = {20: "#1f77b4", 32: "#ff7f0e", 44: "#2ca02c", 56: "#d62728", 110: "#9467bd", 1202: "#8c564b"}
OTHER_COLOURS = ("#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
PLAIN_FAMILY = ("#fdae61", "#f46d43", "#d73027", "#a50026", "#67001f")  # light -> dark with depth
RESIDUAL_FAMILY = ("#abd9e9", "#74add1", "#4575b4", "#313695", "#081d58", "#000033")


def _depth(name: str) -> int | None:
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else None


def _depth_colour(name: str, i: int) -> str:
    return DEPTH_COLOURS.get(_depth(name), OTHER_COLOURS[i % len(OTHER_COLOURS)])


def _kind(name: str, entry: dict | None = None) -> str:
    if entry and entry.get("kind") in ("plain", "residual"):
        return entry["kind"]
    return "plain" if name.lower().startswith("plain") else "residual"


def _layout(fig: go.Figure, title: str, height: int = 440) -> go.Figure:
    fig.update_layout(template=TEMPLATE, width=WIDTH, height=height, font=FONT, title=title,
                      legend=dict(orientation="h", y=-0.18), margin=dict(l=60, r=20, t=70, b=90))
    return fig


def _empty(fig: go.Figure, text: str) -> go.Figure:
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                       font=dict(size=15, color="#666"))
    return fig


def curves_figure(curves: dict, log_y: bool = False) -> go.Figure:
    """{name: {"iter", "train_err", "test_err", "kind"}} -> plain | residual panels; per model a
    dashed train-error and a solid test-error trace, coloured by depth (same colour in both panels)."""
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("plain networks", "residual networks (ResNets)"))
    names = sorted(curves, key=lambda n: (_depth(n) or 0, n))
    for i, name in enumerate(names):
        c = curves[name]
        col = 1 if _kind(name, c) == "plain" else 2
        colour = _depth_colour(name, i)
        for split, dash in (("train_err", "dash"), ("test_err", "solid")):
            label = "train" if split == "train_err" else "test"
            fig.add_trace(go.Scatter(
                x=list(c.get("iter", [])), y=list(c.get(split, [])), mode="lines", name=f"{name} {label}",
                legendgroup=name, line=dict(color=colour, dash=dash, width=1.6 if dash == "dash" else 2.2),
                connectgaps=True,
                hovertemplate=f"<b>{name}</b> {label} error<br>iteration %{{x:,}}<br>%{{y:.2f}}%<extra></extra>",
            ), row=1, col=col)
    fig.update_xaxes(title_text="iterations")
    fig.update_yaxes(title_text="error (%)", row=1, col=1)
    fig.update_yaxes(type="log" if log_y else "linear")
    if not log_y:
        fig.update_yaxes(rangemode="tozero")
    _layout(fig, "Training on CIFAR-10 (dashed: training error, solid: test error)")
    if not names:
        _empty(fig, "no training histories shipped yet")
    return fig


def _family_colours(names, data) -> dict[str, str]:
    out, counts = {}, {"plain": 0, "residual": 0}
    for name in sorted(names, key=lambda n: (_depth(n) or 0, n)):
        kind = _kind(name, data[name])
        fam = PLAIN_FAMILY if kind == "plain" else RESIDUAL_FAMILY
        out[name] = fam[min(counts[kind], len(fam) - 1)]
        counts[kind] += 1
    return out


def layer_responses_figure(data: dict, sorted_: bool = False) -> go.Figure:
    """{name: {"layers": [...], "std": [...]}} -> one line per model, x = layer index (1-based, in
    forward order, or by std descending when sorted_), y = std of the layer response."""
    fig = go.Figure()
    colours = _family_colours(list(data), data)
    for name in data:
        layers, std = list(data[name].get("layers", [])), list(data[name].get("std", []))
        pairs = list(zip(layers, std))
        if sorted_:
            pairs.sort(key=lambda p: -p[1])
        fig.add_trace(go.Scatter(
            x=list(range(1, len(pairs) + 1)), y=[s for _, s in pairs], mode="lines+markers",
            name=name, customdata=[n for n, _ in pairs], marker=dict(size=4),
            line=dict(color=colours[name], width=2,
                      dash="solid" if _kind(name, data[name]) == "residual" else "dash"),
            hovertemplate=f"<b>{name}</b><br>layer %{{x}} (%{{customdata}})<br>std %{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(title_text="layer index (sorted by magnitude)" if sorted_ else "layer index (original)")
    fig.update_yaxes(title_text="std of layer response", rangemode="tozero")
    _layout(fig, "Std of 3×3 layer responses (after BN, before ReLU/addition): plain warm, residual cool")
    if not data:
        _empty(fig, "no layer responses computed yet")
    return fig
