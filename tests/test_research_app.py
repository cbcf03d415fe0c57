"""The research tabs' endpoints through gradio_client, on the shipped checkpoints and assets/research.

Each view must render from shipped data (or say precisely what is missing) and its endpoint name is
public: results, curves, layer_responses, lesion, landscape, shattered, faithfulness_study, robustness,
vgg_vs_resnet.
Opening a tab without its data puts the reason in the view's notes instead of an error.
"""
import csv
import json

import pytest
from gradio_client.exceptions import AppError

from core.engine import checkpoints, models
from core.research.precompute import Store
from core.serving.research import PAGE_TABLE, TABLE_LABEL
from core.settings import Settings
from core.ui.research_tabs import VIEWS

SHIPPED = [f.name for f in checkpoints.list_folders()]


def _fig(plot) -> dict:
    """The plotly figure of a gr.Plot output, as the client receives it."""
    return json.loads(plot["plot"])


def _names(plot) -> list[str]:
    return [t.get("name") for t in _fig(plot)["data"]]


def test_research_endpoints_are_public(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {f"/{v.key}" for v in VIEWS} <= names and len(VIEWS) == 9


def test_results_table_and_csv(client):
    table, diag, path = client.predict(api_name="/results")
    rows = list(csv.DictReader(open(path)))
    assert [r["model"] for r in rows] == SHIPPED == [r[0] for r in table["data"]]
    assert {"model", "layers", "params", "flops", "train_err_running", "train_err_eval", "test_err", "paper_err",
            "diagnosis", "basis"} <= set(rows[0])
    by = {r["model"]: r for r in rows}
    # resnet20: the mean over its shipped runs (checkpoints/resnet20 and checkpoints/seeds/resnet20-seed*)
    runs = next(r for r in checkpoints.records() if r.spec.name == "resnet20").runs
    mean = {k: sum(r[k] for r in runs) / len(runs) for k in ("test_error_pct", "train_error_pct")}
    assert int(by["resnet20"]["seeds"]) == len(runs) >= 2 and float(by["resnet20"]["paper_err"]) == 8.75
    assert float(by["resnet20"]["test_err"]) == pytest.approx(mean["test_error_pct"], abs=1e-9)
    assert float(by["resnet20"]["train_err_eval"]) == pytest.approx(mean["train_error_pct"], abs=1e-9)
    assert float(by["resnet20"]["train_err_running"]) > float(by["resnet20"]["train_err_eval"])
    # the page's table is phone-wide: short headers, which its label names (one name per measure), and
    # every column in the CSV
    assert table["headers"] == list(PAGE_TABLE.values())
    assert "train error (eval pass, clean)" in TABLE_LABEL and "mean over the runs (seeds)" in TABLE_LABEL
    pct = {r[0]: r[table["headers"].index("test %")] for r in table["data"]}
    assert pct["resnet20"] == pytest.approx(round(mean["test_error_pct"], 2))
    assert "Degradation vs overfitting" in diag and "- `resnet20` (nothing shallower shipped)" in diag
    unshipped = [n for d in models.DEPTHS for n in models.pair(d) if n not in SHIPPED]  # none, as it stands
    if unshipped:
        assert f"Not shipped yet (missing from this view): {', '.join(unshipped)}" in diag
    else:
        assert "Not shipped yet" not in diag
    _, _, again = client.predict(api_name="/results")  # the same table: the same file, none leaked
    assert open(again).read() == open(path).read() and again.rsplit("/", 1)[1] == path.rsplit("/", 1)[1]


def test_results_name_the_nets_not_shipped(tmp_path):
    """Every pair is shipped, so the handler the app's /results runs gets a checkpoints folder holding the
    20-layer pair alone (links to the shipped folders): its table has those two, and its notes name the
    other pairs' nets as not shipped yet, in the paper's order."""
    from core.serving.research import Research
    from core.serving.zoo import Zoo

    root = tmp_path / "checkpoints"
    root.mkdir()
    for name in models.pair(20):
        (root / name).symlink_to(checkpoints.DEFAULT_ROOT / name, target_is_directory=True)
    table, note, _ = Research(Zoo(Settings(checkpoints=root)), tmp_path / "files").results()
    assert list(table["model"]) == ["plain20", "resnet20"]
    missing = [n for d in models.DEPTHS[1:] for n in models.pair(d)]
    assert note.endswith(f"\n\nNot shipped yet (missing from this view): {', '.join(missing)}.")


def test_curves(client):
    fig, note = client.predict(False, api_name="/curves")
    depths = sorted({models.get_spec(n).depth for n in SHIPPED})
    assert sorted(_names(fig)) == sorted([f"{n} {s}" for n in SHIPPED for s in ("train (running, augmented)", "test")]
                                         + [f"{d} layers" for d in depths])  # the legend: one entry per depth
    unshipped = [n for d in models.DEPTHS for n in models.pair(d) if n not in SHIPPED]
    assert note == (f"Not shipped yet (missing from this view): {', '.join(unshipped)}." if unshipped else "")
    fig_log, _ = client.predict(True, api_name="/curves")
    assert _fig(fig_log)["layout"]["yaxis"]["type"] == "log"


@pytest.mark.parametrize("view, args, traces", [
    ("/layer_responses", (False,), len(SHIPPED)),
    ("/lesion", (), 3 * len(SHIPPED)),  # per model: identity blocks, downsampling blocks, intact
    ("/shattered", ("init", 110), 4),
    ("/vgg_vs_resnet", (64,), 4),
    ("/landscape", ("surface",), 2),  # the deepest shipped pair
])
def test_precomputed_views_render_from_shipped_assets(client, view, args, traces):
    store = Store(Settings())
    assert store.load(view.strip("/")) is not None, "stale or missing: run python -m core.research.precompute"
    out = client.predict(*args, api_name=view)
    assert len(_fig(out[0])["data"]) == traces
    notes = [o for o in out if isinstance(o, str)]  # the last output, but for vgg_vs_resnet's (a table: no note)
    assert notes == ([] if view == "/vgg_vs_resnet" else [out[-1]])
    for note in notes:
        assert "computed" in note and "stale" not in note


def test_lesion_shows_downsampling_blocks_apart(client):
    fig, _, note = client.predict(api_name="/lesion")
    assert {f"{n}: downsampling block deleted" for n in SHIPPED} <= set(_names(fig))
    assert "Identity and downsampling blocks are shown apart" in note
    for line in (ln for ln in note.splitlines() if ln.startswith("`resnet20` (intact")):
        ident, down = line.split("; downsampling blocks, apart: ")
        assert "`layer2.0`" in down and "`layer3.0`" in down
        assert "layer2.0" not in ident and "layer3.0" not in ident
        break
    else:
        raise AssertionError(f"no resnet20 lesion line in {note!r}")


def test_landscape_line_is_live(client):
    line, surface, info = client.predict("contour", api_name="/landscape")
    assert _names(line) == list(checkpoints.opening_pair()) and len(_fig(line)["data"][0]["x"]) == 13
    assert [t["type"] for t in _fig(surface)["data"]] == ["contour", "contour"]
    assert list(Store(Settings()).load("landscape")) == list(checkpoints.opening_pair())  # the surface: the same pair
    assert info.startswith("Precomputed") and "(current)" in info


@pytest.mark.parametrize("weights, depth, names", [("trained", 20, ["plain20 (trained)", "resnet20 (trained)"]),
                                                   ("init", 56, ["plain56 (init)", "resnet56 (init)"])])
def test_shattered(client, weights, depth, names):
    fig, note = client.predict(weights, depth, api_name="/shattered")
    assert list(dict.fromkeys(_names(fig))) == names  # g(t) and its autocorrelation per model
    assert all(f"`{n}`: autocorrelation at lag 1" in note for n in names)


def test_shattered_trained_needs_a_shipped_pair(tmp_path):
    """Every pair has a shipped net, so the handler the app's /shattered runs gets a checkpoints folder of
    its own holding plain20, resnet20 and plain32 (links to the shipped folders) and no stored views:
    depth 32 shows plain32 alone, and each deeper depth, with neither net there, is refused."""
    from core.serving.reply import UserError
    from core.serving.research import Research
    from core.serving.zoo import Zoo

    root = tmp_path / "checkpoints"
    root.mkdir()
    for name in ("plain20", "resnet20", "plain32"):
        (root / name).symlink_to(checkpoints.DEFAULT_ROOT / name, target_is_directory=True)
    research = Research(Zoo(Settings(checkpoints=root, research=tmp_path / "views")), tmp_path / "files")
    fig, note = research.shattered("trained", 32)
    assert {t.name for t in fig.data} == {"plain32 (trained)"} and "resnet32 has no trained checkpoint" in note
    assert note.endswith("computed live")
    for depth in models.DEPTHS[2:]:
        with pytest.raises(UserError, match="Neither model is shipped at this depth"):
            research.shattered("trained", depth)


def test_vgg_vs_resnet(client):
    fig, stack, table = client.predict(64, api_name="/vgg_vs_resnet")
    archs = [r[0] for r in table["data"]]
    assert archs[:2] == ["vgg16", "vgg19"] and "resnet34" in archs
    assert [t["name"] for t in _fig(fig)["data"]][:3] == ["VGG", "plain", "ResNet"]
    assert len(_fig(stack)["data"]) == 2


@pytest.mark.parametrize("sign", ["absolute", "all"])
def test_faithfulness_study_reads_the_stored_per_image_aucs(client, sign):
    from core.research import faithfulness

    stored = Store(Settings()).load("faithfulness")
    assert stored is not None, "stale or missing: run python -m core.research.precompute --views faithfulness"
    fig, table, note = client.predict(None, sign, api_name="/faithfulness_study")  # None: the page's pair, if stored
    pairs = [d for d in models.DEPTHS if set(models.pair(d)) <= set(stored)]
    opening = models.get_spec(checkpoints.opening_pair()[0]).depth
    plain, residual = models.pair(opening if opening in pairs else pairs[-1])
    assert table["headers"] == ["method", "curve", plain, residual, f"Δ vs own random order: {residual} − {plain}"]
    assert len(table["data"]) == 2 * 8  # 7 methods and the random order, deletion and insertion
    n = min(len(stored[name]["labels"]) for name in (plain, residual))  # the images both nets have
    assert all(len(stored[name]["labels"]) >= 100 for d in pairs for name in models.pair(d))  # at least 100 per pair
    per = {c: {m: v[:n] for m, v in stored[residual]["signs"][sign][c].items()} for c in ("deletion", "insertion")}
    row = next(r for r in table["data"] if r[0] == "Integrated Gradients" and r[1] == "deletion")
    mean = sum(per["deletion"]["Integrated Gradients"]) / n
    assert row[3].startswith(f"{mean:.3f} [")  # the residual net's mean deletion AUC, with its interval
    first = {name: {c: {m: v[:n] for m, v in stored[name]["signs"][sign][c].items()} for c in ("deletion", "insertion")}
             for name in (plain, residual)}
    diff = faithfulness.paired(first[residual], first[plain])
    ig = diff['deletion']['Integrated Gradients']
    assert row[4] == f"{ig['mean']:.3f} [{ig['low']:.3f}, {ig['high']:.3f}]"
    assert [t["name"] for t in _fig(fig)["data"]] == [plain, plain, residual, residual]
    assert note.startswith(f"**Reading:** on {n} test images, each net against its own "
                           f"random order, `{residual}`'s maps are more faithful for ")
    absent = [d for d in models.DEPTHS if d not in pairs]
    for d in absent[-1:]:
        with pytest.raises(AppError, match=f"No faithfulness study is stored for depth {d}"):
            client.predict(d, sign, api_name="/faithfulness_study")


@pytest.mark.parametrize("args, api, message", [
    (("init", 21), "/shattered", "depth must be one of"),
    ((5000,), "/vgg_vs_resnet", "channels must be between 1 and 1024"),
    (("pie",), "/landscape", "kind must be 'contour' or 'surface'"),
])
def test_bad_research_parameters_are_refused(client, args, api, message):
    with pytest.raises(AppError, match=message):  # the service checks every value itself (preprocess=False)
        client.predict(*args, api_name=api)


def test_shattered_computed_live_equals_the_stored_view(tmp_path):
    """With no stored views the tab computes the same lines itself (same nets, same images)."""
    from core.serving.research import Research
    from core.serving.zoo import Zoo

    stored = Store(Settings()).load("shattered")
    live = Research(Zoo(Settings(research=tmp_path)), tmp_path / "files")
    for weights in ("init", "trained"):
        lines, notes = live._live_lines(20, weights)
        assert list(lines) == list(stored[f"{weights}20"]["lines"]) and notes == stored[f"{weights}20"]["notes"]
        for label, line in lines.items():
            assert line["g"] == pytest.approx(stored[f"{weights}20"]["lines"][label]["g"], rel=1e-5, abs=1e-6)
    fig, note = live.shattered("init", 20)
    assert note.endswith("computed live") and len(fig.data) == 4


def test_a_tab_opening_without_its_data_says_why_in_its_notes(tmp_path):
    """Opening a tab (core.ui.research_tabs._on_open) puts the reason in the view's notes, where its button
    raises Gradio's error (the service's UserError, through core.ui.handlers.reply); the landscape opens
    on its stored surface alone (the live line waits for its button)."""
    import gradio as gr

    from core.serving.reply import KEEP, UserError
    from core.serving.research import Research
    from core.serving.zoo import Zoo
    from core.ui.handlers import reply
    from core.ui.research_tabs import _on_open

    empty = Research(Zoo(Settings(research=tmp_path)), tmp_path / "files")
    with pytest.raises(UserError, match="No current lesion data"):
        empty.lesion()
    with pytest.raises(gr.Error, match="No current lesion data"):
        reply(empty.lesion)()
    plot, other, notes = reply(_on_open(empty.lesion, [gr.Plot(), gr.Plot(), gr.Markdown()]))()
    assert plot == other == gr.skip()  # left as they are
    assert notes.startswith("No current lesion data")
    line, surface, info = Research(Zoo(Settings()), tmp_path / "files").stored_landscape("contour")
    assert line is KEEP and surface.data and "press **Show landscape**" in info


def test_robustness_reads_the_stored_study(client):
    from core.research import robustness

    stored = Store(Settings()).load("robustness")
    assert stored is not None, "stale or missing: run python -m core.research.precompute --views robustness"
    heat, depth, table, note = client.predict(None, "generated", api_name="/robustness")  # None: the page's pair
    gen = stored["generated"]
    plain, residual = checkpoints.opening_pair()  # stored: every shipped net is in the study
    assert table["headers"] == ["corruption", "family", f"{plain} error %", f"{residual} error %", "Δ error [95%]",
                                "Δ degradation [95%]"]
    assert len(table["data"]) == len(gen["errors"][plain]) + 2  # each corruption, all of them, clean
    s = robustness.summary(gen["clean"][residual], gen["errors"][residual])
    assert table["data"][-2][3] == round(s["mce"], 2) and table["data"][-1][3] == round(gen["clean"][residual], 2)
    assert table["data"][0][:2] == ["Gaussian noise", "noise"]
    assert table["data"][0][3] == round(sum(gen["errors"][residual]["gaussian_noise"]) / 5, 2)
    n = gen["n_images"]  # the Δ error of Gaussian noise, image by image from the stored masks
    d = sum(robustness.unpack(r, n).astype(int) - robustness.unpack(p, n) for r, p in
            zip(gen["wrong"][residual]["gaussian_noise"], gen["wrong"][plain]["gaussian_noise"]))
    assert table["data"][0][4].startswith(f"{100 * d.mean() / 5:+.2f} [")
    assert [t["type"] for t in _fig(heat)["data"]] == ["heatmap"] * 3
    assert {t["name"] for t in _fig(depth)["data"]} == {"plain", "residual"}
    assert note.startswith(f"**Reading:** on {n:,} test images (CIFAR-10-C-style (generated here); the mean over its "
                           f"12 corruptions × 5 severities), `{residual}` errs {s['mce']:.1f}% against `{plain}`'s ")
    if stored["official"] is None:
        with pytest.raises(AppError, match="No official CIFAR-10-C study is stored"):
            client.predict(None, "official", api_name="/robustness")


def test_robustness_refuses_a_depth_the_study_lacks(tmp_path):
    """Every shipped pair is in the stored study, so the handler the app's /robustness runs reads a copy of
    it without the 110-layer pair: it offers the depths left, and refuses depth 110 with a message."""
    from core.serving.reply import UserError
    from core.serving.research import Research
    from core.serving.zoo import Zoo

    doc = json.loads((Settings().research / "robustness.json").read_text())
    nets = doc["data"]["generated"]["nets"]
    assert set(models.pair(110)) <= set(nets)
    for name in models.pair(110):
        del nets[name]
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "robustness.json").write_text(json.dumps(doc))
    research = Research(Zoo(Settings(research=tmp_path / "views")), tmp_path / "files")
    assert research.stored_depths("robustness") == [20, 32, 44, 56]
    with pytest.raises(UserError, match=r"No corruption study is stored for depth 110; stored: \[20, 32, 44, 56\]"):
        research.robustness(110, "generated")
