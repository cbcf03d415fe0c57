"""core.figures.dashboard and core.figures.theme: trace counts, axes, labels, colours by kind and JSON round-trips
on real introspection data; titles wrapped to a phone's width, placed in the figure's own pixels."""
import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from core.engine import introspection as I
from core.engine import models
from core.figures import dashboard as figures
from core.figures.theme import AXIS_CHARS, LABEL_ROOM, PALETTE, TITLE_CHARS, TITLE_LINE, colours, layout

pytestmark = pytest.mark.usefixtures("one_thread")

def fresh(name):
    torch.manual_seed(0)
    return models.build(name)


@pytest.fixture(scope="module")
def rows():
    return {name: I.architecture(fresh(name)) for name in ("plain20", "resnet20", "resnet56")}


@pytest.fixture(scope="module")
def flows():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)
    return {f"{n} (init)": {**I.gradient_flow(fresh(n), x, y, bn_mode="train"), "kind": models.get_spec(n).kind}
            for n in ("plain20", "resnet20")}


def kind_of(names):
    return {n: models.get_spec(n).kind for n in names}


def _roundtrip(fig):
    assert isinstance(fig, go.Figure)
    data = json.loads(fig.to_json())
    assert data["layout"]["template"]["layout"]  # plotly_white resolved
    assert fig.layout.autosize and fig.layout.width is None  # fills its container
    return data


@pytest.mark.parametrize("names", [("plain20", "resnet20"), ("resnet20", "resnet56"), ("resnet56",)])
def test_architecture_figure(rows, names):
    fig = figures.architecture_figure({n: rows[n] for n in names}, kind_of(names))
    _roundtrip(fig)
    assert len(fig.data) == 4 * len(names)  # channels, H, params, FLOPs per model
    deepest = max((rows[n] for n in names), key=len)
    assert list(fig.layout.xaxis.categoryarray) == [r["name"] for r in deepest]
    ch = fig.data[0]
    assert list(ch.y) == [r["channels"] for r in rows[names[0]]]
    assert list(fig.data[1].y) == [r["height"] for r in rows[names[0]]]
    assert list(fig.data[3].y) == [r["flops"] for r in rows[names[0]]]
    assert "16×32×32" in {c[0] for c in ch.customdata} and "64×8×8" in {c[0] for c in ch.customdata}
    assert fig.data[3].yaxis == "y3" and fig.data[2].yaxis == "y2"
    assert len(fig.layout.shapes) == 5 * 3  # 5 stages shaded in 3 subplots
    stages = [a.text for a in fig.layout.annotations if a.text in ("stem", "layer1", "layer2", "layer3", "head")]
    assert stages == ["stem", "layer1", "layer2", "layer3", "head"]


def test_architecture_figure_colours(rows):
    fig = figures.architecture_figure({"plain20": rows["plain20"], "resnet20": rows["resnet20"]},
                                      kind_of(["plain20", "resnet20"]))
    plain, res = fig.data[0].line.color, fig.data[4].line.color
    assert plain == PALETTE["plain"][0] and res == PALETTE["residual"][0]


def test_feature_map_figure(net):
    maps = I.feature_maps(net("resnet20"), torch.randn(1, 3, 32, 32), channels=6)
    fig = figures.feature_map_figure(maps, title="resnet20 · cat")
    _roundtrip(fig)
    assert len(fig.data) == 4 * 6 and all(isinstance(t, go.Heatmap) for t in fig.data)
    labels = [fig.layout[f"yaxis{'' if i == 1 else i}"].title.text for i in (1, 7, 13, 19)]
    assert labels == ["stem · 16×32×32", "layer1 · 16×32×32", "layer2 · 32×16×16", "layer3 · 64×8×8"]
    assert np.asarray(fig.data[12].z).shape == (16, 16)  # layer2 row
    assert fig.layout.xaxis.showticklabels is False and fig.layout.title.text == "resnet20 · cat"


def test_gradient_flow_figure(flows):
    fig = figures.gradient_flow_figure(flows, title="init")
    _roundtrip(fig)
    assert len(fig.data) == 2
    assert fig.layout.yaxis.type == "log"
    plain, res = fig.data
    assert plain.line.color == PALETTE["plain"][0] and res.line.color == PALETTE["residual"][0]
    conv = flows["plain20 (init)"]["conv"]
    assert list(plain.x) == list(range(len(conv))) and list(plain.customdata) == [n for n, _ in conv]
    assert plain.customdata[0] == "layer3.2.conv2" and plain.customdata[-1] == "conv1"
    assert list(plain.y) == pytest.approx([v for _, v in conv])
    blocks = figures.gradient_flow_figure(flows, key="blocks")
    assert len(blocks.data[0].x) == 10 and blocks.layout.yaxis.type == "log"
    assert "block output" in blocks.layout.title.text


def test_colours_come_from_the_kind_not_the_name():
    flow = {"conv": [("a", 1.0), ("b", 0.1)], "blocks": [], "loss": 2.3}
    series = {"plain56": "plain", "deep one": "plain", "resnet56": "residual", "plainly residual": "residual"}
    fig = figures.gradient_flow_figure({n: {**flow, "kind": k} for n, k in series.items()})
    got = [t.line.color for t in fig.data]
    assert got == [PALETTE["plain"][0], PALETTE["plain"][1], PALETTE["residual"][0], PALETTE["residual"][1]]
    assert colours(series) == dict(zip(series, got))
    many = colours({f"p{i}": "plain" for i in range(8)})  # more series than colours: the family cycles
    assert list(many.values())[len(PALETTE["plain"])] == PALETTE["plain"][0]


def test_empty_inputs():
    for fig in (figures.architecture_figure({}, {}), figures.feature_map_figure({}),
                figures.gradient_flow_figure({})):
        _roundtrip(fig)


def test_long_titles_wrap_to_fit_a_phone():
    """Plotly does not wrap text: the theme breaks titles at spaces, keeping breaks already there; the title
    and legend are placed in the figure's pixels (tests/test_page_layout.py checks them in a browser)."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))
    fig.update_xaxes(title="an x axis title that is far too long for a phone's plot, which is narrow")
    layout(fig, "short first line<br>" + "a long title of many words " * 4, 300)
    lines = fig.layout.title.text.split("<br>")
    assert lines[0] == "short first line" and len(lines) > 2 and all(len(line) <= TITLE_CHARS for line in lines)
    assert " ".join(lines[1:]) == ("a long title of many words " * 4).strip()
    assert all(len(line) <= AXIS_CHARS for line in fig.layout.xaxis.title.text.split("<br>"))
    assert fig.layout.title.yref == fig.layout.legend.yref == "container" and fig.layout.width is None
    assert fig.layout.height == 300 + LABEL_ROOM + TITLE_LINE * len(lines)  # the title comes on top of the plot
