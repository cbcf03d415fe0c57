"""The app as users reach it: `python app.py` in a subprocess, driven through gradio_client.

Every public endpoint's parameters; classify, explain, architecture (with an unavailable model's note)
and gradient_flow (test batch or uploaded image, init or trained weights, batch or running BN
statistics) with the shipped checkpoints plain20 and resnet20, checked by content (labels,
probabilities, image sizes, plot traces, the numbers in the notes); the page's banner, depth and
model choices with the shipped checkpoints and in untrained mode (an empty checkpoint folder); bad
uploads and out-of-range parameters get gradio_client's AppError with the app's own message, and
the next request still works.
"""
import json
import math
import re
import time
import urllib.request

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from core.engine import checkpoints
from core.engine.checkpoints import list_folders
from tests.support import BAD, ROOT, running_app, wait_for
from tests.support import EXAMPLES as EX

METHODS = ["Saliency", "Integrated Gradients", "SmoothGrad", "Guided Backprop", "DeepLift", "Grad-CAM",
           "Occlusion"]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PLAIN = ["plain20", "plain32", "plain44", "plain56", "plain110"]
RESIDUAL = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202", "resnet20b", "resnet32b",
            "resnet44b", "resnet56b", "resnet110b"]
DEPTHS = [20, 32, 44, 56, 110]
SHIPPED = ("plain20", "resnet20")  # in the repository: checkpoints/plain20, checkpoints/resnet20
NUMBER = r"[-+0-9.e]+"


def _metrics(name):
    return json.loads((ROOT / "checkpoints" / name / "metrics.json").read_text())


def _shipped_models():
    """The checkpoint folders on disk, in registry order (resnet110 after resnet56), as the page lists them."""
    return [f.name for f in list_folders(ROOT / "checkpoints")]


def _check_label(lab):
    """A gr.Label value: the top 5 classes, probabilities in [0, 1], sorted, the label the first."""
    conf = [c["confidence"] for c in lab["confidences"]]
    names = [c["label"] for c in lab["confidences"]]
    assert len(conf) == 5 and len(set(names)) == 5 and set(names) <= set(CLASSES), lab
    assert all(0 <= c <= 1 for c in conf) and conf == sorted(conf, reverse=True) and sum(conf) <= 1.0001, lab
    assert lab["label"] == names[0]


def _plot(value):
    """A gr.Plot value as gradio_client returns it: {"type": "plotly", "plot": JSON} -> the figure dict."""
    assert value["type"] == "plotly", value
    return json.loads(value["plot"])


def test_shipped_checkpoints_are_in_the_repository():
    assert set(SHIPPED) <= set(_shipped_models())


def test_page_serves_title(server):
    with urllib.request.urlopen(server, timeout=30) as r:
        assert '<meta property="og:title" content="ResNet lab" />' in r.read().decode()
    assert _config(server)["title"] == "ResNet lab"


def test_public_endpoints_and_their_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = {name: [p["parameter_name"] for p in e["parameters"]] for name, e in api.items()}
    assert params == {
        "/classify": ["image", "plain", "residual"],
        "/explain": ["image", "plain", "residual", "method", "target", "display", "sign", "ig_steps", "nt_samples",
                     "nt_stdev", "occlusion_window", "stage"],
        "/architecture": ["image", "plain", "residual"],
        "/gradient_flow": ["image", "source", "weights", "depth", "bn"],
        "/results": [], "/curves": ["log_y"], "/layer_responses": ["sorted_"], "/lesion": [],
        "/faithfulness": ["image", "plain", "residual", "target", "sign", "metrics", "ig_steps", "nt_samples",
                          "nt_stdev", "occlusion_window", "stage"],
        "/landscape": ["kind"], "/shattered": ["weights", "depth"], "/vgg_vs_resnet": ["channels"],
        "/faithfulness_study": ["depth", "sign"],
        "/corrupt": ["image", "plain", "residual", "corruption", "severity", "seed"],
        "/robustness": ["depth", "source"],
    }


def test_classify_a_cifar_cat_with_the_shipped_pair(client):
    lab_p, lab_r, seen, info = client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20",
                                              api_name="/classify")
    for lab in (lab_p, lab_r):
        _check_label(lab)
    assert lab_r["label"] == "cat"  # the first cat of the test set, which the shipped resnet20 gets right
    with Image.open(seen) as im:
        assert im.size == (128, 128)  # what the nets see (32 x 32), shown 4x
    for name in SHIPPED:  # each model's line: its name and its own measured test error
        err = _metrics(name)["test_error_pct"]
        assert re.search(rf"`{name}`: test error \*\*{err:.2f}%\*\*.*: the served run, seed {_metrics(name)['seed']} ",
                         info), info  # which run the number is, beside the Results tab's mean over seeds
    assert len(info.split("\n\n")) == 2


def _unavailable_pair() -> tuple[str, str, str]:
    """(plain, residual, the unshipped one of them): the deepest unshipped plain net beside resnet20,
    or, with every plain net shipped (since 2026-11-28), plain20 beside an unshipped residual net
    (resnet20b first: option B, as cheap as resnet20)."""
    shipped = _shipped_models()
    plain = [n for n in PLAIN if n not in shipped]
    if plain:
        return plain[-1], "resnet20", plain[-1]
    residual = next(n for n in ["resnet20b", *RESIDUAL] if n not in shipped)
    return "plain20", residual, residual


def test_classify_a_photo_and_an_unavailable_model(client):
    plain, residual, missing = _unavailable_pair()
    lab_p, lab_r, _, info = client.predict(handle_file(str(EX / "photo_cat.jpg")), plain, residual,
                                           api_name="/classify")
    gone, there = (lab_p, lab_r) if missing == plain else (lab_r, lab_p)
    assert gone in ({}, None)  # no prediction: an empty gr.Label
    assert f"`{missing}`: unavailable. {missing} has no trained checkpoint yet" in info, info
    _check_label(there)
    assert there["label"] == "cat"


@pytest.mark.parametrize("method", METHODS)
def test_explain_every_method(client, method):
    img_p, img_r, info, photo_p, photo_r, curves = client.predict(
        handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20", method, "predicted", "blend", "absolute",
        8, 4, 0.15, 8, "layer2", api_name="/explain")
    pictures = []
    for path in (img_p, img_r):
        with Image.open(path) as im:
            assert im.size == (224, 224)
            pictures.append(im.convert("RGB").tobytes())
    assert pictures[0] != pictures[1]  # two nets, two maps
    for path in (photo_p, photo_r):  # on the upload itself: a 32 x 32 example stays 32 x 32
        with Image.open(path) as im:
            assert im.size == (32, 32)
    lines = info.split("\n\n")
    assert len(lines) == 2, info
    aucs = []
    for name, line in zip(SHIPPED, lines):  # both trained nets call the first test cat a cat
        m = re.fullmatch(rf"`{name}`: {method} for \*\*cat\*\* \(p = [01]\.\d\d\) in \d+ ms; deletion AUC (0\.\d+) "
                         r"\(random order (0\.\d+)\), insertion AUC (0\.\d+) \(random order (0\.\d+)\) in \d+ ms", line)
        assert m, line
        aucs.append([float(v) for v in m.groups()])
    traces = _plot(curves)["data"]
    assert len(traces) == 8  # per net: the method and the random order, deletion and insertion
    for name, (dele, _, ins, _) in zip(SHIPPED, aucs):  # the legend's AUCs are the notes' AUCs
        assert f"{name}: {method} (deletion AUC {dele:.3f})" in [t["name"] for t in traces]
        assert f"{name}: {method} (insertion AUC {ins:.3f})" in [t["name"] for t in traces]


def test_explain_draws_the_map_on_the_uploaded_photo(client):
    out = client.predict(handle_file(str(EX / "photo_cat.jpg")), "plain20", "resnet20", "Grad-CAM", "predicted",
                         "blend", "absolute", 8, 4, 0.15, 8, "layer3", api_name="/explain")
    with Image.open(EX / "photo_cat.jpg") as original, Image.open(out[3]) as on_photo:
        scale = min(1.0, 1024 / max(original.size))  # images.DISPLAY_SIDE
        assert on_photo.size == tuple(round(s * scale) for s in original.size)  # aspect-true


def test_faithfulness_scores_every_method_for_both_nets(client):
    fig, table, info = client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20", "predicted",
                                      "absolute", False, 8, 4, 0.15, 8, "layer3", api_name="/faithfulness")
    rows = table["data"]
    assert table["headers"][:4] == ["method", "model", "deletion AUC (lower is better)", "insertion AUC (higher is better)"]
    assert [(r[0], r[1]) for r in rows] == [(m, n) for n in SHIPPED for m in [*METHODS, "random order"]]
    assert all(0 <= r[2] <= 1 and 0 <= r[3] <= 1 and r[4] is None and r[5] is None for r in rows)
    bars = _plot(fig)["data"]
    assert [b["name"] for b in bars] == [n for n in SHIPPED for _ in range(2)]  # per net: deletion, insertion
    assert list(bars[0]["x"]) == [*METHODS, "random order"]
    assert info.count("every method for **cat**") == 2, info


def test_explain_a_chosen_target(client):
    _, _, info, *_ = client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20", "Grad-CAM",
                                    "truck", "heat map", "positive", 8, 4, 0.15, 8, "layer3", api_name="/explain")
    assert info.count("for **truck**") == 2, info


def test_architecture_and_feature_maps(client):
    arch, fm_p, fm_r, notes = client.predict(handle_file(str(EX / "photo_cat.jpg")), "plain20", "resnet20",
                                             api_name="/architecture")
    assert notes == ""  # both models available
    fig = _plot(arch)
    names = [t["name"] for t in fig["data"]]
    assert {n.split()[0] for n in names} == set(SHIPPED), names
    assert len(names) == 8  # per model: channels, map size, parameters, FLOPs
    for name, fm in zip(SHIPPED, (fm_p, fm_r)):
        maps = _plot(fm)
        assert maps["layout"]["title"]["text"].replace("<br>", " ") == f"{name}: feature maps of the uploaded image"
        assert maps["data"] and {t["type"] for t in maps["data"]} == {"heatmap"}


def test_architecture_without_an_image_has_no_feature_maps(client):
    arch, fm_p, fm_r, notes = client.predict(None, "plain20", "resnet20", api_name="/architecture")
    assert len(_plot(arch)["data"]) == 8
    assert fm_p is None and fm_r is None and notes == ""


def test_architecture_of_an_unavailable_model_says_so(client):
    plain, residual, missing = _unavailable_pair()
    arch, fm_p, fm_r, notes = client.predict(handle_file(str(EX / "photo_cat.jpg")), plain, residual,
                                             api_name="/architecture")
    assert {t["name"].split()[0] for t in _plot(arch)["data"]} == {plain, residual}  # shapes need no weights
    assert (fm_p if missing == plain else fm_r) is None
    assert f"`{missing}`: unavailable. {missing} has no trained checkpoint yet" in notes, notes


# ------------------------------------------------------------------------------------------ gradient flow

def _flow(client, image, source, weights, depth, bn="batch"):
    """gradient_flow through the API, parsed: {"conv"/"blocks": {trace name: (layer names, norms)},
    "title", "loss": {model: loss}, "ratio": the notes' plain / residual first-conv ratio}."""
    conv, blocks, notes = client.predict(image, source, weights, depth, bn, api_name="/gradient_flow")
    out = {"notes": notes}
    for key, value in (("conv", conv), ("blocks", blocks)):
        fig = _plot(value)
        out[key] = {t["name"]: (t["customdata"], t["y"]) for t in fig["data"]}
        out[key + " title"] = fig["layout"]["title"]["text"]
    # one line per model, named as in the plot ("plain20 (init)") or by its name alone
    out["loss"] = {m.split()[0]: float(v) for m, v in re.findall(rf"`([^`]+)`: loss ({NUMBER});", notes)}
    ratio = re.search(rf"First-conv gradient, plain / residual: \*\*({NUMBER})\*\*", notes)
    out["ratio"] = float(ratio.group(1)) if ratio else None
    return out


def _check_flow(flow, depth, weights, source, bn):
    """Both models named, every conv layer and block from the last to the first with a finite positive
    norm, the title naming the settings, one note per model and the ratio line matching the plot."""
    kind = "trained" if weights == "trained" else "init"
    plain, res = f"plain{depth} ({kind})", f"resnet{depth} ({kind})"
    assert list(flow["conv"]) == [plain, res] and list(flow["blocks"]) == [plain, res]
    last = f"layer3.{(depth - 2) // 6 - 1}"
    for names, norms in flow["conv"].values():
        assert len(names) == len(norms) == depth - 1  # conv1 and two per block
        assert names[0] == f"{last}.conv2" and names[-1] == "conv1"
        assert all(math.isfinite(v) and v > 0 for v in norms)
    for names, norms in flow["blocks"].values():
        assert len(names) == (depth - 2) // 2 + 1 and names[0] == last and names[-1] == "stem"
        assert all(math.isfinite(v) and v > 0 for v in norms)
    assert flow["conv title"] == f"Conv weight gradients, depth {depth}<br>{weights} weights, {source},<br>" \
                                 f"{bn} BN statistics"
    assert set(flow["loss"]) == {f"plain{depth}", f"resnet{depth}"}
    first = [flow["conv"][n][1][-1] for n in (plain, res)]
    assert flow["ratio"] == pytest.approx(first[0] / first[1], rel=6e-3)  # printed to 3 significant digits


@pytest.fixture(scope="module")
def flows(client):
    """The gradient_flow results at depth 20, each computed once: flows(source, weights, bn)."""
    cache = {}

    def get(source, weights, bn):
        if (source, weights, bn) not in cache:
            image = handle_file(str(EX / "cifar_cat.png")) if source == "uploaded image" else None
            cache[source, weights, bn] = _flow(client, image, source, weights, 20, bn)
        return cache[source, weights, bn]
    return get


def test_gradient_flow_at_init(flows):
    flow = flows("test batch", "init", "batch")
    _check_flow(flow, 20, "init", "test batch", "batch")
    assert all(1.5 < loss < 4 for loss in flow["loss"].values()), flow["loss"]  # about ln 10 = 2.3: chance


def test_gradient_flow_of_an_uploaded_image(flows):
    flow = flows("uploaded image", "init", "batch")
    _check_flow(flow, 20, "init", "uploaded image", "batch")
    batch = flows("test batch", "init", "batch")
    for name in flow["conv"]:  # one image, not the test batch: other gradients
        assert flow["conv"][name][1] != pytest.approx(batch["conv"][name][1], rel=0.01)


def test_gradient_flow_needs_an_uploaded_image(client):
    with pytest.raises(AppError) as e:
        client.predict(None, "uploaded image", "init", 20, "batch", api_name="/gradient_flow")
    assert str(e.value) == "Upload an image first, or pick one of the examples."


@pytest.mark.parametrize("source", ["test batch", "uploaded image"])
def test_gradient_flow_with_trained_weights(flows, source):
    flow = flows(source, "trained", "batch")
    _check_flow(flow, 20, "trained", source, "batch")
    init = flows(source, "init", "batch")
    if source == "test batch":  # the shipped nets get most test images right: a loss far below chance's ln 10
        assert all(loss < 0.6 for loss in flow["loss"].values()), flow["loss"]
    for name in flow["loss"]:
        assert flow["loss"][name] < init["loss"][name]


def test_gradient_flow_with_trained_weights_where_none_are_shipped(tmp_path):
    """Every depth has a shipped net, so the handler the app's /gradient_flow runs gets a checkpoints
    folder of its own holding plain20, resnet20 and plain32 (links to the shipped folders): depth 32
    serves plain32 alone, and each deeper depth, with neither net there, is refused with the message."""
    from core.serving.lab import Lab
    from core.serving.reply import UserError
    from core.serving.worker import Worker
    from core.serving.zoo import Zoo
    from core.settings import Settings

    root = tmp_path / "checkpoints"
    root.mkdir()
    for name in (*SHIPPED, "plain32"):
        (root / name).symlink_to(ROOT / "checkpoints" / name, target_is_directory=True)
    lab = Lab(Zoo(Settings(checkpoints=root)), tmp_path / "files", Worker())
    conv, _, notes = lab.gradient_flow(None, "test batch", "trained", 32, "batch")
    assert [t.name for t in conv.data] == ["plain32 (trained)"] and "resnet32 has no trained checkpoint" in notes
    for depth in DEPTHS[2:]:
        with pytest.raises(UserError) as e:
            lab.gradient_flow(None, "test batch", "trained", depth, "batch")
        assert str(e.value) == "Neither model is available with trained weights at this depth; choose weights 'init'."


@pytest.mark.parametrize("weights", ["init", "trained"])
def test_gradient_flow_with_running_bn_statistics(flows, weights):
    running, batch = flows("test batch", weights, "running"), flows("test batch", weights, "batch")
    _check_flow(running, 20, weights, "test batch", "running")
    assert running["ratio"] != pytest.approx(batch["ratio"], rel=0.05)
    for name in running["conv"]:
        assert running["conv"][name][1] != pytest.approx(batch["conv"][name][1], rel=0.01)


@pytest.mark.parametrize("depth, bn, expect", [
    ("abc", "batch", "depth must be one of [20, 32, 44, 56, 110], not 'abc'"),
    (20.5, "batch", "depth must be one of [20, 32, 44, 56, 110], not 20.5"),
    (None, "batch", "depth must be one of [20, 32, 44, 56, 110], not None"),
    (20, ["batch"], "bn must be one of ['batch', 'running']"),
    (20, "mean", "bn must be one of ['batch', 'running']"),
])
def test_gradient_flow_refuses_bad_values_with_a_message(client, depth, bn, expect):
    with pytest.raises(AppError) as e:
        client.predict(None, "test batch", "init", depth, bn, api_name="/gradient_flow")
    assert str(e.value) == expect


# ------------------------------------------------------------------------------------------ the page

def _config(url):
    with urllib.request.urlopen(url + "config", timeout=30) as r:
        return json.loads(r.read())


def _props(config, **match):
    """The props of the one component whose props include `match` (elem_id=..., label=...)."""
    found = [c["props"] for c in config["components"]
             if all(c.get("props", {}).get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, len(found))
    return found[0]


def test_the_page_names_the_shipped_checkpoints(server):
    config, shipped = _config(server), _shipped_models()
    assert _props(config, elem_id="banner")["value"] == "Trained checkpoints: " + ", ".join(f"`{n}`" for n in shipped)
    depth = checkpoints.trained_pairs()[-1]  # the deepest pair where both nets trained (plain110 did not)
    assert _props(config, label="Depth (sets both models)")["value"] == depth
    for label, names in (("Plain model", PLAIN), ("Residual model", RESIDUAL)):
        props = _props(config, label=label)
        assert props["value"] == f"{names[0][:-2]}{depth}"
        assert props["choices"] == [[n if n in shipped else f"{n} (no checkpoint yet)", n] for n in names]


@pytest.mark.e2e
def test_untrained_mode_says_so_and_serves_fresh_weights(tmp_path):
    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    with running_app(tmp_path / "app.log", RESNET_LAB_CHECKPOINTS=str(empty)) as (url, _):
        config = _config(url)
        banner = _props(config, elem_id="banner")["value"]
        assert banner.startswith("## ⚠ No trained checkpoints found\n") and "freshly initialised" in banner
        assert _props(config, label="Depth (sets both models)")["value"] == 56
        for label, names in (("Plain model", PLAIN), ("Residual model", RESIDUAL)):
            props = _props(config, label=label)
            assert props["value"] == f"{names[0][:-2]}56"
            assert props["choices"] == [[n, n] for n in names]  # no "(no checkpoint yet)" anywhere
        client = Client(url, verbose=False)
        lab_p, lab_r, _, info = client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20",
                                               api_name="/classify")
        _check_label(lab_p)
        _check_label(lab_r)
        lines = info.split("\n\n")
        assert len(lines) == 2 and all(re.match(rf"`{n}`: \*\*untrained\*\*", s) for n, s in zip(SHIPPED, lines)), info
        flow = _flow(client, None, "test batch", "trained", 20, "batch")  # "trained" asked: fresh weights served
        assert list(flow["conv"]) == ["plain20 (init)", "resnet20 (init)"]


# ------------------------------------------------------------------------------------------ refusals

UPLOADS = {  # name: (bytes, the whole message)
    "empty": (BAD["empty file"][1], BAD["empty file"][2]),
    "text": (b"this is not an image at all", BAD["plain text"][2]),
    "PNG signature, no header": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
                                 r"the PNG file is corrupt or has an invalid size; re-save it with an image editor "
                                 r"or upload another image\."),
}


@pytest.mark.parametrize("case", list(UPLOADS))
def test_bad_uploads_get_a_message_and_the_app_keeps_working(client, tmp_path, case):
    payload, expect = UPLOADS[case]
    bad = tmp_path / "upload.png"
    bad.write_bytes(payload)
    with pytest.raises(AppError) as e:
        client.predict(handle_file(str(bad)), "plain20", "resnet20", api_name="/classify")
    assert re.fullmatch(expect, str(e.value)), str(e.value)
    ok = client.predict(handle_file(str(EX / "cifar_ship.png")), "plain20", "resnet20", api_name="/classify")
    _check_label(ok[1])
    assert ok[1]["label"] == "ship"


@pytest.mark.parametrize("args, api_name, message", [
    ((None, "plain20", "resnet20"), "/classify", "Upload an image first"),  # an image endpoint's own check
    ((5000,), "/vgg_vs_resnet", "channels must be between 1 and 1024"),  # a research view: a value the page does
    ((99, "absolute"), "/faithfulness_study", "depth must be one of"),  # not offer, checked by the service
])
def test_an_expected_user_error_logs_one_line_and_no_traceback(client, server_log, args, api_name, message):
    before = server_log.read_text()
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=api_name)
    wait_for(lambda: message in server_log.read_text()[len(before):], 10, "the error's log line")
    time.sleep(0.5)  # anything Gradio would print after it
    new = server_log.read_text()[len(before):]
    assert [line for line in new.splitlines() if message in line] == [
        next(line for line in new.splitlines() if "resnet_lab INFO:" in line and message in line)], new
    assert "Traceback" not in new, new


EXPLAIN_REFUSALS = [
    (("Integrated Gradients", "predicted", "blend", "absolute", 500, 4, 0.15, 8, "layer3"),
     "ig_steps=500 is out of range; allowed: 1 to 200"),
    (("SmoothGrad", "predicted", "blend", "absolute", 50, 99, 0.15, 8, "layer3"),
     "nt_samples=99 is out of range; allowed: 1 to 32"),
    (("Nonsense", "predicted", "blend", "absolute", 50, 4, 0.15, 8, "layer3"),
     "method='Nonsense' is not allowed; choose one of: " + ", ".join(map(repr, METHODS))),
    (("Saliency", "unicorn", "blend", "absolute", 50, 4, 0.15, 8, "layer3"),
     "target must be 'predicted' or one of " + ", ".join(CLASSES)),
    (("Saliency", "predicted", "overlay", "absolute", 50, 4, 0.15, 8, "layer3"),
     "display must be one of ('heat map', 'blend', 'masked'); sign one of ('positive', 'absolute', 'all')"),
    (("Grad-CAM", "predicted", "blend", "absolute", 50, 4, 0.15, 8, "layer4"),
     "stage='layer4' is not allowed; choose one of: 'layer1', 'layer2', 'layer3'"),
]


@pytest.mark.parametrize("args, expect", EXPLAIN_REFUSALS, ids=[a[0] + "-" + e.split()[0] for a, e in EXPLAIN_REFUSALS])
def test_out_of_range_parameters_are_refused(client, args, expect):
    with pytest.raises(AppError) as e:
        client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20", *args, api_name="/explain")
    assert str(e.value) == expect


@pytest.mark.parametrize("args, expect", [
    (("predicted", "absolute", False, 500, 4, 0.15, 8, "layer3"), "ig_steps=500 is out of range; allowed: 1 to 200"),
    (("predicted", "absolute", False, 50, 4, 0.15, 99, "layer3"), "occlusion_window=99 is out of range; allowed: 2 to 16"),
    (("predicted", "absolute", "yes", 50, 4, 0.15, 8, "layer3"), "metrics must be true or false"),
], ids=["ig_steps", "occlusion_window", "metrics"])
def test_faithfulness_refuses_bad_parameters_before_any_work(client, args, expect):
    with pytest.raises(AppError) as e:
        client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20", *args, api_name="/faithfulness")
    assert str(e.value) == expect


@pytest.mark.parametrize("plain, residual", [("resnet20", "resnet20"), ("plain20", "plain20"), ("plain21", "resnet20")])
def test_a_wrong_model_pair_is_refused(client, plain, residual):
    with pytest.raises(AppError) as e:
        client.predict(handle_file(str(EX / "cifar_cat.png")), plain, residual, api_name="/classify")
    assert str(e.value) == f"Pick a plain model from {PLAIN} and a residual one from {RESIDUAL}."


def test_a_file_payload_naming_a_server_file_is_only_ever_an_upload(client):
    """gradio_client uploads the file a FileData payload names (the server never opens that path
    itself; raw forged payloads: tests/test_limits.py): so these reach the app as uploaded copies of
    non-images, and are refused as such."""
    for path in (ROOT / "app.py", "/etc/passwd"):
        with pytest.raises(AppError) as e:
            client.predict({"path": str(path), "meta": {"_type": "gradio.FileData"}}, "plain20", "resnet20",
                           api_name="/classify")
        assert re.fullmatch(BAD["plain text"][2], str(e.value)), str(e.value)


def _run_examples(page: str, server: str) -> dict:
    """Run a page's ```python blocks as written (the URL pointed at the test's app), in order, in
    one namespace, from the repository root; return the namespace."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), re.S)
    assert blocks and all('Client("http://127.0.0.1:7860/")' in b for b in blocks[:1])
    ns: dict = {}
    for code in blocks:
        exec(compile(code.replace("http://127.0.0.1:7860/", server), page, "exec"), ns)
    return ns


def _is_top5(pred: dict) -> bool:
    conf = [c["confidence"] for c in pred["confidences"]]
    return (pred["label"] in CLASSES and pred["label"] == pred["confidences"][0]["label"] and len(conf) == 5
            and conf == sorted(conf, reverse=True) and 0 < sum(conf) <= 1 + 1e-6)


def _png(path, size=None) -> bool:
    with Image.open(path) as im:
        return im.format == "PNG" and (size is None or im.size == size)


def test_readme_api_example_runs_and_answers(server, monkeypatch):
    monkeypatch.chdir(ROOT)
    ns = _run_examples("README.md", server)
    assert _is_top5(ns["plain"]) and _is_top5(ns["residual"]) and _png(ns["seen"])
    assert "plain56" in ns["info"] and "resnet56" in ns["info"]


def test_docs_api_examples_run_and_answer(server, monkeypatch):
    """docs/api.md's example, every endpoint in turn, run as written; each answer checked."""
    monkeypatch.chdir(ROOT)
    ns = _run_examples("docs/api.md", server)
    assert _is_top5(ns["plain"]) and _is_top5(ns["residual"])  # the corrupted image's top-5s, the last assigned
    assert _png(ns["seen"], (32, 32))
    assert all(_png(ns[k]) for k in ("att_plain", "att_residual", "photo_plain", "photo_residual"))
    headers, rows = ns["table"]["headers"], ns["table"]["data"]
    assert [h.split(" (")[0] for h in headers[:4]] == ["method", "model", "deletion AUC", "insertion AUC"]
    assert {r[1] for r in rows} == {"plain20", "resnet20"} and all(0 <= r[2] <= 1 and 0 <= r[3] <= 1 for r in rows)
    assert len(rows) == 2 * (len(METHODS) + 1) and set(METHODS) < {r[0] for r in rows}  # and the random order
    assert ns["conv"] is not None and ns["blocks"] is not None and "110" in ns["info"]


def test_source_accepts_only_uploads_and_examples(tmp_path):
    from core.serving import lab
    from core.serving.reply import UserError

    upload = tmp_path / "uploads"
    upload.mkdir()
    ok = upload / "x.png"
    ok.write_bytes(b"x")
    assert lab._source({"path": str(ok)}, upload) == ok.resolve()
    assert lab._source({"path": str(EX / "cifar_cat.png")}, upload) == (EX / "cifar_cat.png").resolve()
    with pytest.raises(UserError):  # no upload folder: only the examples
        lab._source({"path": str(ok)}, None)
    link = upload / "link.png"
    link.symlink_to(ROOT / "app.py")  # a link out of the upload folder
    elsewhere = "That file is not an upload of this session; upload the image again."
    for bad, message in (
            ({"path": str(link)}, elsewhere), ({"path": "app.py"}, elsewhere),
            ({"path": str(upload / ".." / "x.png")}, elsewhere), ({"path": "/etc/passwd"}, elsewhere),
            ({"path": str(ROOT / "checkpoints" / "resnet20" / "config.json")}, elsewhere),
            ({"path": str(upload / "absent.png")}, elsewhere),
            ({"url": "x"}, "That upload could not be read; upload the image again."),
            ({"path": ""}, "That upload could not be read; upload the image again."),
            (None, "Upload an image first, or pick one of the examples.")):
        with pytest.raises(UserError) as e:
            lab._source(bad, upload)
        assert str(e.value) == message, bad
