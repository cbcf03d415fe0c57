"""The research tabs' endpoints through gradio_client, on the shipped checkpoints and assets/research.

Each view must render from shipped data (or say precisely what is missing) and its endpoint name is
public: results, curves, layer_responses, lesion, landscape, shattered, vgg_vs_resnet.
"""
import csv

import pytest

from research import store as cache
from serving import zoo

ENDPOINTS = ["/results", "/curves", "/layer_responses", "/lesion", "/landscape", "/shattered", "/vgg_vs_resnet"]


def test_research_endpoints_are_public(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert set(ENDPOINTS) <= names


def test_results_table_and_csv(client):
    table, diag, path = client.predict(api_name="/results")
    rows = list(csv.DictReader(open(path)))
    assert {r["model"] for r in rows} == set(zoo.shipped())
    assert {"model", "layers", "params", "flops", "train_err", "test_err", "paper_err", "diagnosis"} <= set(rows[0])
    assert "degradation" in diag.lower() and table["data"]


def test_curves(client):
    fig, note = client.predict(False, api_name="/curves")
    assert fig
    fig_log, _ = client.predict(True, api_name="/curves")
    assert fig_log


@pytest.mark.parametrize("view, args", [("/layer_responses", (False,)), ("/lesion", ()), ("/shattered", ("init", 110)),
                                        ("/vgg_vs_resnet", (64,)), ("/landscape", ("surface",))])
def test_precomputed_views_render_from_shipped_assets(client, view, args):
    assert cache.load(view.strip("/")) is not None, "stale or missing: run python -m research.precompute"
    out = client.predict(*args, api_name=view)
    assert all(o for o in out)


def test_landscape_line_is_live(client):
    line, surface, info = client.predict("contour", api_name="/landscape")
    assert line and "landscape" in info


@pytest.mark.parametrize("weights, depth", [("trained", 20), ("init", 56)])
def test_shattered(client, weights, depth):
    fig, note = client.predict(weights, depth, api_name="/shattered")
    assert fig and "lag 1" in note


def test_vgg_vs_resnet(client):
    fig, stack, table = client.predict(64, api_name="/vgg_vs_resnet")
    archs = [r[0] for r in table["data"]]
    assert "vgg19" in archs and "resnet34" in archs and fig and stack


def test_bad_research_parameters_are_refused(client):
    # Gradio checks choices itself (a specific message); the handlers check again for direct calls
    with pytest.raises(Exception, match="depth|not in the list of choices"):
        client.predict("init", 21, api_name="/shattered")
    with pytest.raises(Exception, match="channels|maximum|greater"):
        client.predict(5000, api_name="/vgg_vs_resnet")
    with pytest.raises(Exception, match="kind|not in the list of choices"):
        client.predict("pie", api_name="/landscape")


