"""Figures for corruption robustness: pure functions, plain data in, plotly Figure out.

    severity_figure(data, title)        live view: each net's probability of its clean-image class at
                                        severity 0 (clean) to 5, one line per net in its kind's colour
    heatmap_figure(errors, titles, pair, title)
                                        study: error % per corruption (rows) and severity (columns), one
                                        panel per net of the pair, stacked (each full-width, so a phone can
                                        read it), on one colour scale, and residual - plain
                                        on a diverging scale centred on 0 spanning at least ±MIN_SPAN (blue: the
                                        residual net errs less)
    depth_figure(rows, title)           study: clean error, mean corruption error (log axes) and their gap
                                        per depth, one bar per net, plain and residual side by side

`data`: {net: {"kind", "p": [6 probabilities], "cls"}}. `errors`: {net: {corruption: [5 errors]}};
`titles`: {corruption: its title}; `pair`: (plain, residual), either may be absent from errors.
`rows`: [{"net", "kind", "depth", "clean", "mce", "gap"}]. tests/test_robustness.py holds the panels, the
trace counts, the shared colour range and the empty figures.
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.figures.theme import colours, empty, kinds, layout

SEVERITY_AXIS = "severity (0: the clean image)"
MIN_SPAN = 5.0  # points: the difference panel's colour scale spans at least ±5, so noise stays pale
PANELS = (("clean", "clean"), ("mce", "mCE"), ("gap", "mCE − clean"))  # short: three side by side on a phone


def severity_figure(data: dict, title: str) -> go.Figure:
    if not data:
        return empty(title, "no model available")
    fig = go.Figure()
    colour = colours(kinds(data))
    for net, d in data.items():
        fig.add_trace(go.Scatter(
            x=list(range(len(d["p"]))), y=d["p"], mode="lines+markers", name=f"{net}: p({d['cls']})",
            line=dict(color=colour[net], width=2.5, dash="dash" if d["kind"] == "plain" else "solid"),
            hovertemplate=f"{net}<br>severity %{{x}}<br>p({d['cls']}) = %{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(title_text=SEVERITY_AXIS, dtick=1, range=[-0.2, 5.2])
    fig.update_yaxes(title_text="probability of the clean-image class", range=[0, 1.02])
    return layout(fig, title, 330)


def heatmap_figure(errors: dict, titles: dict, pair: tuple, title: str) -> go.Figure:
    nets = [n for n in pair if n in errors]
    if not nets:
        return empty(title, "no stored errors for this pair", legend="below")
    rows = list(errors[nets[0]])
    panels = nets + (["residual − plain"] if len(nets) == 2 else [])
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=panels, shared_xaxes=True, vertical_spacing=0.06)
    top = max(e for n in nets for v in errors[n].values() for e in v)
    labels = [titles.get(c, c) for c in rows][::-1]  # first corruption on top
    sev = [1, 2, 3, 4, 5]
    for col, net in enumerate(nets, start=1):
        z = [errors[net][c] for c in rows][::-1]
        fig.add_trace(go.Heatmap(z=z, x=sev, y=labels, zmin=0, zmax=top, colorscale="YlOrRd", showscale=False,
                                 text=[[f"{v:.0f}" for v in row] for row in z], texttemplate="%{text}",
                                 hovertemplate=f"{net}<br>%{{y}}, severity %{{x}}<br>error %{{z:.1f}}%<extra></extra>"),
                      col, 1)  # each cell prints its error: no colour bar beside the corruption names
    if len(nets) == 2:
        d = [[r - p for p, r in zip(errors[nets[0]][c], errors[nets[1]][c])] for c in rows][::-1]
        span = max(MIN_SPAN, max(abs(v) for row in d for v in row))
        fig.add_trace(go.Heatmap(z=d, x=sev, y=labels, zmin=-span, zmax=span, colorscale="RdBu_r", zmid=0,
                                 text=[[f"{round(v):+d}" for v in row] for row in d], texttemplate="%{text}",
                                 colorbar=dict(title="Δ", len=0.3, y=0, yanchor="bottom"),
                                 hovertemplate="%{y}, severity %{x}<br>residual − plain: %{z:+.1f} points"
                                               "<extra></extra>"), 3, 1)
    fig.update_xaxes(dtick=1)
    fig.update_xaxes(title_text="severity", row=len(panels), col=1)
    return layout(fig, title, (60 + 20 * len(rows)) * len(panels), legend="below")


def depth_figure(rows: list[dict], title: str) -> go.Figure:
    if not rows:
        return empty(title, "no stored errors", legend="below")
    fig = make_subplots(rows=1, cols=len(PANELS), subplot_titles=[t for _, t in PANELS], horizontal_spacing=0.08)
    colour = colours({"plain": "plain", "residual": "residual"})  # one colour per kind
    for kind in ("plain", "residual"):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["depth"])
        if not mine:
            continue
        for col, (key, _) in enumerate(PANELS, start=1):
            fig.add_trace(go.Bar(
                x=[str(r["depth"]) for r in mine], y=[r[key] for r in mine], name=kind, legendgroup=kind,
                showlegend=col == 1, marker_color=colour[kind], text=[r["net"] for r in mine],
                texttemplate="%{y:.1f}", hovertemplate="%{text}<br>%{y:.2f}%<extra></extra>"), 1, col)
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="depth", type="category")
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="error % (log)", row=1, col=1)
    for col in (1, 2):  # errors span 5-90%: a net that did not train (plain110, near chance) flattens nothing
        fig.update_yaxes(type="log", row=1, col=col)
    return layout(fig, title, 360, legend="below")
