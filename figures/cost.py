"""Plotly figures for the ImageNet architecture comparison and the loss landscapes: pure functions,
plain data in (what research/arch_cost.py and research/landscape.py return), go.Figure out; no torch.

    imagenet_figure           params vs multiply-adds per 224x224 image, VGG / plain / ResNet (log axes)
    stack_figure              weights of k stacked 3x3 layers vs one (2k+1)x(2k+1) layer, as k grows
    landscape_line_figure     loss along one filter-normalised direction, one line per model
    landscape_surface_figure  side-by-side contour (log10 loss) or 3-D surface panels, one per model
"""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from figures.dashboard import FONT, TEMPLATE, WIDTH, model_colours

FAMILY_STYLE = {"vgg": ("#7f7f7f", "square", "VGG"), "plain": ("#d62728", "circle", "plain"),
                "resnet": ("#1f77b4", "diamond", "ResNet")}


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(template=TEMPLATE, width=WIDTH, height=height, font=FONT,
                      title=dict(text=title, x=0.01), margin=dict(l=60, r=20, t=60, b=50))
    return fig


def _family(row: dict) -> str:
    arch = row["arch"]
    return row.get("family") or ("vgg" if arch.startswith("vgg") else "plain" if arch.startswith("plain") else "resnet")


def imagenet_figure(rows: list[dict]) -> go.Figure:
    """Scatter of parameters (M) vs multiply-adds (G) per 224x224 image; one series per family;
    the paper's figure, where given, as a hollow marker at the same parameter count."""
    fig = go.Figure()
    for fam, (colour, symbol, label) in FAMILY_STYLE.items():
        sub = [r for r in rows if _family(r) == fam]
        if not sub:
            continue
        fig.add_trace(go.Scatter(
            x=[r["macs"] / 1e9 for r in sub], y=[r["params"] / 1e6 for r in sub], mode="markers+text",
            name=label, text=[r["arch"] for r in sub], textposition="top center",
            marker=dict(color=colour, symbol=symbol, size=11),
            hovertemplate="%{text}: %{x:.2f} G multiply-adds, %{y:.2f} M params<extra></extra>"))
    paper = [r for r in rows if r.get("paper_gmacs") and _family(r) != "plain"]
    if paper:
        fig.add_trace(go.Scatter(
            x=[r["paper_gmacs"] for r in paper], y=[r["params"] / 1e6 for r in paper], mode="markers",
            name="paper (Table 1)", text=[r["arch"] for r in paper],
            marker=dict(color="rgba(0,0,0,0)", size=15, line=dict(color="black", width=1)),
            hovertemplate="%{text}: paper %{x} G multiply-adds<extra></extra>"))
    fig.update_xaxes(type="log", title="multiply-adds per 224x224 image (G)")
    fig.update_yaxes(type="log", title="parameters (M)")
    return _layout(fig, "ImageNet nets: VGG is 4-5x costlier than a deeper ResNet", 520)


def stack_figure(rows: list[dict]) -> go.Figure:
    """Rows from imagenet.stack_vs_single(k, C) for several k: weights of both designs vs k,
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
    return _layout(fig, "Why 3x3: a stack sees as far with fewer weights and more nonlinearities", 440)


def landscape_line_figure(lines: dict[str, dict], log_y: bool = True, key: str = "loss") -> go.Figure:
    """{model: landscape.line(...)} -> loss (or key="err") vs alpha, one line per model."""
    colours = model_colours(lines)
    fig = go.Figure()
    for name, res in lines.items():
        fig.add_trace(go.Scatter(x=res["alpha"], y=res[key], mode="lines+markers", name=name,
                                 line=dict(color=colours[name], width=2), marker=dict(size=5),
                                 hovertemplate="alpha %{x:.2f}: %{y:.4g}<extra>" + name + "</extra>"))
    fig.update_xaxes(title="alpha (step along a filter-normalised random direction)")
    fig.update_yaxes(title="cross-entropy loss" if key == "loss" else "error (%)",
                     type="log" if log_y and key == "loss" else "linear")
    return _layout(fig, "Loss along a random direction (Li et al. 2018)", 440)


def _log10(v: float) -> float:
    return math.log10(v) if v > 0 and math.isfinite(v) else float("nan")


def landscape_surface_figure(surfaces: dict[str, dict], kind: str = "contour") -> go.Figure:
    """{model: landscape.surface(...)} -> one panel per model, side by side: contour of log10(loss)
    on a shared colour scale (kind="contour") or a 3-D surface of log10(loss) (kind="surface")."""
    if kind not in ("contour", "surface"):
        raise ValueError("kind must be 'contour' or 'surface'")
    names = list(surfaces)
    n = max(1, len(names))
    spec = {"type": "surface"} if kind == "surface" else {}
    fig = make_subplots(rows=1, cols=n, subplot_titles=names or [""], specs=[[spec] * n],
                        horizontal_spacing=0.04 if kind == "surface" else 0.08)
    z_all = {name: [[_log10(v) for v in row] for row in s["loss"]] for name, s in surfaces.items()}
    finite = [v for z in z_all.values() for row in z for v in row if math.isfinite(v)]
    zmin, zmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
    for col, name in enumerate(names, start=1):
        s = surfaces[name]
        # loss[i][j] is at (alpha_i, beta_j): plotly's z[row][col] is (y, x), so y = alpha, x = beta
        common = dict(x=s["beta"], y=s["alpha"], z=z_all[name], colorscale="Viridis", cmin=zmin, cmax=zmax,
                      showscale=col == n, colorbar=dict(title="log10 loss"),
                      hovertemplate="alpha %{y:.2f}, beta %{x:.2f}: log10 loss %{z:.3f}<extra>" + name + "</extra>")
        if kind == "contour":
            common.pop("cmin"), common.pop("cmax")
            fig.add_trace(go.Contour(**common, zmin=zmin, zmax=zmax, contours=dict(coloring="heatmap"),
                                     ncontours=25), row=1, col=col)
            fig.update_xaxes(title_text="beta", row=1, col=col)
            fig.update_yaxes(title_text="alpha" if col == 1 else None, row=1, col=col,
                             scaleanchor=f"x{col if col > 1 else ''}", constrain="domain")
        else:
            fig.add_trace(go.Surface(**common), row=1, col=col)
            fig.update_scenes(dict(xaxis_title="beta", yaxis_title="alpha", zaxis_title="log10 loss",
                                   zaxis_range=[zmin, zmax]), row=1, col=col)
    return _layout(fig, "Loss landscape around the trained weights (log10 loss, two random directions)",
                   460 if kind == "contour" else 520)
