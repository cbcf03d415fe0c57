"""Figures for the dashboard's image tabs: pure functions, plain data in, plotly Figure out.

Inputs are what core/engine/introspection.py returns (lists of row dicts, dicts of numpy arrays, gradient
flow dicts), with each model's kind given by the caller; nothing here imports torch. The look is
core/figures/theme.py's; every figure serialises with fig.to_json().

    architecture_figure   channels / map size, params and FLOPs per unit, stages shaded
    feature_map_figure    a stage x channel grid of heatmaps
    gradient_flow_figure  gradient norm per layer (last -> first) on a log axis, plain vs residual
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.figures.theme import colours, kinds, layout

STAGE_FILL = {"stem": "rgba(120,120,120,0.08)", "layer1": "rgba(31,119,180,0.07)",
              "layer2": "rgba(44,160,44,0.07)", "layer3": "rgba(214,39,40,0.07)",
              "head": "rgba(120,120,120,0.08)"}
DASHES = ("solid", "dash", "dot", "dashdot")
SIZING_WIDTH = 900  # the width feature-map cells are sized for (the figure itself fills its container)


def _shape_str(shape) -> str:
    return "×".join(str(int(s)) for s in shape)


def architecture_figure(rows_by_model: dict[str, list[dict]], kind: dict[str, str]) -> go.Figure:
    """Per unit (x: unit names in forward order), for each model: (1) channels (solid) and map size H
    (dotted) so 'map halves -> filters double' reads at a glance, (2) params per unit, (3) FLOPs per
    unit. Hover shows C×H×W. Stages are shaded. The x axis follows the deepest model's units;
    shallower models simply have fewer points. kind: {model: "plain" | "residual"}."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("Channels and map size H per unit", "Parameters per unit",
                                        "Forward FLOPs per unit (per image)"))
    if not rows_by_model:
        return layout(fig, "Architecture", 760)
    colour = colours(kind)
    deepest = max(rows_by_model.values(), key=len)
    order = [r["name"] for r in deepest]
    for i, (model, rows) in enumerate(rows_by_model.items()):
        x = [r["name"] for r in rows]
        shapes = [_shape_str(r["shape"]) for r in rows]
        common = dict(x=x, customdata=np.array([shapes, [r["stage"] for r in rows]], dtype=object).T,
                      line=dict(color=colour[model], dash=DASHES[i % len(DASHES)] if i else "solid"),
                      legendgroup=model)
        hover = "%{x} (%{customdata[1]})<br>" + model + ": %{customdata[0]}<br>"
        fig.add_trace(go.Scatter(y=[r["channels"] for r in rows], name=f"{model} channels",
                                 mode="lines+markers", marker=dict(size=5),
                                 hovertemplate=hover + "channels %{y}<extra></extra>", **common), 1, 1)
        fig.add_trace(go.Scatter(y=[r["height"] for r in rows], name=f"{model} map H",
                                 mode="lines", opacity=0.7,
                                 hovertemplate=hover + "H %{y}<extra></extra>",
                                 **{**common, "line": dict(color=colour[model], dash="dot")}), 1, 1)
        fig.add_trace(go.Scatter(y=[r["params"] for r in rows], name=f"{model} params",
                                 mode="lines+markers", marker=dict(size=5), showlegend=False,
                                 hovertemplate=hover + "params %{y:,}<extra></extra>", **common), 2, 1)
        fig.add_trace(go.Scatter(y=[r["flops"] for r in rows], name=f"{model} FLOPs",
                                 mode="lines+markers", marker=dict(size=5), showlegend=False,
                                 hovertemplate=hover + "FLOPs %{y:,}<extra></extra>", **common), 3, 1)
    # stage shading and labels, from the deepest model's units
    start = 0
    for j in range(1, len(deepest) + 1):
        if j == len(deepest) or deepest[j]["stage"] != deepest[start]["stage"]:
            stage = deepest[start]["stage"]
            for r in (1, 2, 3):
                fig.add_vrect(x0=start - 0.5, x1=j - 0.5, fillcolor=STAGE_FILL.get(stage, "rgba(0,0,0,0.05)"),
                              line_width=0, layer="below", row=r, col=1)
            fig.add_annotation(x=(start + j - 1) / 2, y=0.98, xref="x", yref="y domain", text=stage,
                               showarrow=False, font=dict(size=11, color="#555"), yanchor="top")  # inside the
            # panel: above it the subplot title stands
            start = j
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order, tickangle=-60,
                     tickfont=dict(size=9))
    fig.update_yaxes(title_text="C  /  H", type="log", dtick=np.log10(2), tickformat="d", row=1, col=1)
    fig.update_yaxes(title_text="params", row=2, col=1)
    fig.update_yaxes(title_text="FLOPs", row=3, col=1)
    return layout(fig, "Architecture: the map halves, the filters double", 800)


def feature_map_figure(maps: dict[str, np.ndarray], title: str = "") -> go.Figure:
    """A grid: one row per stage (stem, layer1, layer2, layer3), one column per channel, heatmaps
    without axes, each row labelled with its stage and full map size (e.g. 'layer2 · 32×16×16' when
    the array carries all channels, else the channels shown × H × W)."""
    stages = [s for s in ("stem", "layer1", "layer2", "layer3") if s in maps] or list(maps)
    if not stages:
        return layout(go.Figure(), title, 300)
    ncols = max(int(np.asarray(maps[s]).shape[0]) for s in stages)
    fig = make_subplots(rows=len(stages), cols=ncols, horizontal_spacing=0.008, vertical_spacing=0.03)
    full_channels = {"stem": 16, "layer1": 16, "layer2": 32, "layer3": 64}
    for i, stage in enumerate(stages, start=1):
        arr = np.asarray(maps[stage], dtype=np.float32)
        c, h, w = arr.shape
        label = f"{stage} · {full_channels.get(stage, c)}×{h}×{w}"
        for j in range(c):
            fig.add_trace(go.Heatmap(z=arr[j][::-1], colorscale="Viridis", showscale=False,
                                     hovertemplate=f"{stage} ch {j}<br>(%{{x}}, %{{y}}) %{{z:.3f}}"
                                                   "<extra></extra>"), i, j + 1)
        fig.update_yaxes(title_text=label, title_font=dict(size=11), row=i, col=1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    for i in range(1, len(stages) * ncols + 1):  # square pixels
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].update(scaleanchor=f"x{suffix}", constrain="domain")
    cell = (SIZING_WIDTH - 100) / ncols
    return layout(fig, title, int(len(stages) * cell + 90))


def gradient_flow_figure(flows: dict[str, dict], key: str = "conv", title: str = "") -> go.Figure:
    """flows: {"plain110 (init)": flow, "resnet110 (init)": flow}, each as gradient_flow() returns
    plus its "kind". x: layer index from the last layer (0) to the first, y: L2 gradient norm on a
    log axis, one line per model (plain in warm colours, residual in cool), layer names in the hover."""
    fig = go.Figure()
    colour = colours(kinds(flows))
    for name, flow in flows.items():
        seq = flow[key]
        names = [n for n, _ in seq]
        norms = [max(float(v), 1e-30) for _, v in seq]
        loss = flow.get("loss")
        extra = f" · loss {loss:.3g}" if loss is not None else ""
        fig.add_trace(go.Scatter(x=list(range(len(seq))), y=norms, customdata=names, name=name,
                                 mode="lines+markers", marker=dict(size=4),
                                 line=dict(color=colour[name], width=2),
                                 hovertemplate=f"{name}{extra}<br>" + "#%{x}: %{customdata}<br>"
                                               "‖grad‖ %{y:.3e}<extra></extra>"))
    what = "conv weight" if key == "conv" else "block output"
    fig.update_xaxes(title_text=f"{what} index, from the last layer (0) to the first")
    fig.update_yaxes(title_text="gradient L2 norm (log)", type="log", exponentformat="power")
    return layout(fig, title or f"Gradient flow: {what} gradients, last → first", 480)
