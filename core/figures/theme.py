"""One look for every figure: template, font, palette, layout, and the empty-figure message.

Plain nets are drawn in reds and residual nets in blues, deeper darker (colours), except in the
Fig. 6 curves, whose two panels pair plain-N and ResNet-N by one colour per depth (depth_colours);
kind and depth come from the data (read from the model's spec upstream), never from a name.

Figures fill their container's width (autosize; no fixed width). The title sits at the figure's
top, below LABEL_ROOM px left clear for a component label floating over the plot's corner (gr.Plot's,
where shown) and for Plotly's modebar. It is anchored at its foot (Plotly lays a title's extra lines
out upwards from its anchor) and reserves its own margin (title.automargin, yref "container"), as
does a legend placed just below it, so the plot starts below both, however many rows the legend
wraps into. A title is wrapped at spaces into lines of at most TITLE_CHARS characters (wrap), which
fit a phone-wide plot (about 320 px) at TITLE_SIZE; x-axis titles to AXIS_CHARS, shared among the
panels side by side (and subplot titles likewise, where the legend is below).
"""
from __future__ import annotations

import textwrap

import plotly.graph_objects as go

TEMPLATE = "plotly_white"
FONT = dict(family="Inter, Helvetica, Arial, sans-serif", size=13)
PALETTE = {  # in order of appearance: callers pass series shallow to deep, so a deeper net is a darker shade
    "plain": ("#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#99000d", "#67000d"),  # reds
    "residual": ("#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b", "#041e42"),  # blues
    "vgg": ("#7f7f7f",),
}
DASH = {"plain": "dash", "residual": "solid", "vgg": "dot"}
TITLE_SIZE = 16
TITLE_CHARS = 40  # the most characters of a title line: about 280 px at TITLE_SIZE
TITLE_LINE = 22  # px per title line
LABEL_ROOM = 32  # px left clear above the title: for a component's label, and Plotly's modebar on hover
AXIS_CHARS = 36  # the most characters of an x-axis title line across a phone-wide plot
SUBPLOT_LINE = 20  # px per line of a subplot title (make_subplots' 16 px font)
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


def wrap(text: str, width: int = TITLE_CHARS) -> str:
    """text broken at spaces into lines of at most `width` characters, joined by <br> (the line
    breaks it already has stay; a longer word stays whole)."""
    lines = []
    for line in text.split("<br>"):
        lines += textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""]
    return "<br>".join(lines)


def layout(fig: go.Figure, title: str, height: int, legend: str = "top") -> go.Figure:
    """The shared look. legend "top": a horizontal legend above the plot, below the title;
    "below": the legend at the figure's foot (figures whose subplots carry their own titles, which
    are then wrapped to their panel's width too). `height` is the figure's without its title, whose
    lines are added to it."""
    panels = max(1, len({tuple(ax.domain or (0, 1)) for ax in fig.select_xaxes()}))  # side by side
    for ax in fig.select_xaxes():
        if ax.title.text:
            ax.title.text = wrap(ax.title.text, max(12, AXIS_CHARS // panels))
    heads = [a for a in fig.layout.annotations  # make_subplots' titles: paper-placed, standing on their panel
             if a.text and a.xref == "paper" and a.yref == "paper" and a.yanchor == "bottom"]
    extra = 0  # px for subplot titles' extra lines, between the title and the plot
    if legend == "below":
        for head in heads:
            head.text = wrap(head.text, max(12, TITLE_CHARS // panels))
        extra = SUBPLOT_LINE * max([h.text.count("<br>") for h in heads] or [0])
    text = wrap(title) if title else ""
    block = LABEL_ROOM + TITLE_LINE * (text.count("<br>") + 1) if text else 0  # px from the top to the title's foot
    total = height + block + extra
    # The title is anchored at its foot (Plotly lays a title's extra lines out upwards from its anchor)
    # and the legend just below it (or at the foot), both placed in the figure's own pixels ("container"):
    # Plotly then keeps the plot area clear of both, however many rows the legend wraps into. The title
    # reserves the px down to its anchor plus twice its bottom pad, and is drawn its pad above the anchor:
    # its foot at `block`, and the plot from block + 6 + extra down.
    pad = (6 + extra) / 2
    fig.update_layout(title=dict(text=text, x=0.01, xanchor="left", xref="container", y=1 - (block + pad) / total,
                                 yanchor="bottom", yref="container", automargin=True, pad=dict(t=0, b=pad),
                                 font=dict(size=TITLE_SIZE)) if text else None)
    if legend == "below":
        fig.update_layout(margin=dict(l=60, r=20, t=20 + extra, b=20),
                          legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0.0))
    else:
        fig.update_layout(margin=dict(l=70, r=30, t=20, b=50),
                          legend=dict(orientation="h", yref="container", y=1 - (block + 4) / total, yanchor="top",
                                      x=0.0))
    fig.update_layout(template=TEMPLATE, autosize=True, height=total, font=FONT)
    return fig


def empty(title: str, message: str, height: int = 300, legend: str = "top") -> go.Figure:
    """A figure that says why there is nothing to show."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=15, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, title, height, legend)
