"""Figures for the loss landscapes (core/research/landscape.py's line and surface results): pure
functions, plain data in, plotly Figure out; no torch. The look is core/figures/theme.py's.

    landscape_line_figure     loss along one filter-normalised direction, one line per model
    landscape_surface_figure  side-by-side contour (log10 loss) or 3-D surface panels, one per model
"""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.figures.theme import colours, kinds, layout


def landscape_line_figure(lines: dict[str, dict], log_y: bool = True, key: str = "loss") -> go.Figure:
    """{model: landscape.line(...)} -> loss (or key="err") vs alpha, one line per model."""
    colour = colours(kinds(lines))
    fig = go.Figure()
    for name, res in lines.items():
        fig.add_trace(go.Scatter(x=res["alpha"], y=res[key], mode="lines+markers", name=name,
                                 line=dict(color=colour[name], width=2), marker=dict(size=5),
                                 hovertemplate="alpha %{x:.2f}: %{y:.4g}<extra>" + name + "</extra>"))
    fig.update_xaxes(title="alpha (step along a filter-normalised random direction)")
    fig.update_yaxes(title="cross-entropy loss" if key == "loss" else "error (%)",
                     type="log" if log_y and key == "loss" else "linear")
    return layout(fig, "Loss along a random direction (Li et al. 2018)", 440)


def _log10(v: float) -> float:
    return math.log10(v) if v > 0 and math.isfinite(v) else float("nan")


COLORBAR = dict(title=dict(text="log10 loss", side="top"), orientation="h", x=0.5, xanchor="center", y=-0.28,
                yanchor="top", thickness=12, len=0.8)  # below the panels: on a phone they keep the width


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
                      showscale=col == n, colorbar=COLORBAR,
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
    return layout(fig, "Loss landscape around the trained weights (log10 loss, two random directions)",
                   460 if kind == "contour" else 520)
