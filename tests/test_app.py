"""The app as users reach it: `python app.py` in a subprocess, driven through gradio_client.

Every public endpoint (classify, explain, architecture, gradient_flow) is called with real shipped
checkpoints where they exist; bad uploads and out-of-range parameters get a specific message and the
next request still works.
"""
import json
import re
import urllib.request
from pathlib import Path

import pytest
from gradio_client import handle_file

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "assets" / "examples"
METHODS = ["Saliency", "Integrated Gradients", "SmoothGrad", "Guided Backprop", "DeepLift", "Grad-CAM",
           "Occlusion"]


def _trained(*names):
    return all((ROOT / "checkpoints" / n / "config.json").is_file() for n in names)


def test_page_serves_title(server):
    with urllib.request.urlopen(server, timeout=30) as r:
        assert "ResNet lab" in r.read().decode()


def test_api_names_are_public(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/classify", "/explain", "/architecture", "/gradient_flow"} <= names


def test_classify_a_cifar_cat_with_the_shipped_pair(client):
    if not _trained("plain20", "resnet20"):
        pytest.skip("needs the shipped plain20/resnet20")
    lab_p, lab_r, seen, info = client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20",
                                              api_name="/classify")
    for lab in (lab_p, lab_r):
        conf = [c["confidence"] for c in lab["confidences"]]
        assert len(conf) == 5 and all(0 <= c <= 1 for c in conf) and conf == sorted(conf, reverse=True)
        assert sum(conf) <= 1.0001 and lab["label"] == lab["confidences"][0]["label"]
    assert lab_r["label"] == "cat"  # the first cat of the test set; resnet20 has 8.36% test error
    assert Path(seen).is_file()
    assert "test error" in info and "resnet20" in info


def test_classify_a_photo_and_an_unavailable_model(client):
    lab_p, lab_r, _, info = client.predict(handle_file(str(EX / "photo_cat.jpg")), "plain110", "resnet20",
                                           api_name="/classify")
    if not _trained("plain110"):
        assert lab_p is None or not lab_p.get("confidences")
        assert "unavailable" in info and "plain110" in info
    assert len(lab_r["confidences"]) == 5


@pytest.mark.parametrize("method", METHODS)
def test_explain_every_method(client, method):
    img_p, img_r, info = client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20", method,
                                        "predicted", "blend", "absolute", 8, 4, 0.15, 8, "layer2",
                                        api_name="/explain")
    assert Path(img_p).is_file() and Path(img_r).is_file()
    assert method in info and " ms" in info


def test_architecture_and_feature_maps(client):
    arch, fm_p, fm_r = client.predict(handle_file(str(EX / "photo_cat.jpg")), "plain20", "resnet20",
                                      api_name="/architecture")
    fig = json.loads(arch["plot"]) if isinstance(arch, dict) and "plot" in arch else arch
    assert fig and fm_p and fm_r


def test_gradient_flow_at_init(client):
    conv, blocks, info = client.predict(None, "test batch", "init", 20, api_name="/gradient_flow")
    assert conv and blocks and "plain20" in info and "resnet20" in info


@pytest.mark.parametrize("payload, expect", [
    (b"", "empty"),
    (b"this is not an image at all", "not"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "corrupt|truncated|not"),
])
def test_bad_uploads_get_a_message_and_the_app_keeps_working(client, tmp_path, payload, expect):
    bad = tmp_path / "upload.png"
    bad.write_bytes(payload)
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(bad)), "plain20", "resnet20", api_name="/classify")
    assert re.search(expect, str(e.value), re.I), str(e.value)
    ok = client.predict(handle_file(str(EX / "cifar_ship.png")), "plain20", "resnet20", api_name="/classify")
    assert ok[1]["confidences"]


@pytest.mark.parametrize("args, expect", [
    (("Integrated Gradients", "predicted", "blend", "absolute", 500, 4, 0.15, 8, "layer3"), "ig_steps"),
    (("SmoothGrad", "predicted", "blend", "absolute", 50, 99, 0.15, 8, "layer3"), "nt_samples"),
    (("Nonsense", "predicted", "blend", "absolute", 50, 4, 0.15, 8, "layer3"), "Nonsense"),
    (("Saliency", "unicorn", "blend", "absolute", 50, 4, 0.15, 8, "layer3"), "target"),
])
def test_out_of_range_parameters_are_refused(client, args, expect):
    with pytest.raises(Exception, match=expect):
        client.predict(handle_file(str(EX / "cifar_cat.png")), "plain20", "resnet20", *args, api_name="/explain")


def test_forged_paths_are_refused(client):
    forged = {"path": str(ROOT / "app.py"), "meta": {"_type": "gradio.FileData"}}
    with pytest.raises(Exception):
        client.predict(forged, "plain20", "resnet20", api_name="/classify")
    with pytest.raises(Exception):
        client.predict({"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, "plain20", "resnet20",
                       api_name="/classify")


def test_readme_client_example_runs_as_written(server, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- client-example -->")[1].split("<!-- /client-example -->")[0]
    code = block.split("```python")[1].split("```")[0]
    assert 'Client("http://127.0.0.1:7860/")' in code
    monkeypatch.chdir(ROOT)
    exec(compile(code.replace("http://127.0.0.1:7860/", server), "README.md", "exec"), {})


def test_source_accepts_only_uploads_and_examples(tmp_path, monkeypatch):
    import gradio as gr

    import app

    upload = tmp_path / "uploads"
    upload.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(upload))
    ok = upload / "x.png"
    ok.write_bytes(b"x")
    assert app._source({"path": str(ok)}) == ok.resolve()
    assert app._source({"path": str(EX / "cifar_cat.png")}).name == "cifar_cat.png"
    link = upload / "link.png"
    link.symlink_to(ROOT / "app.py")  # a link out of the upload folder
    for bad in ({"path": str(link)}, {"path": "app.py"}, {"path": str(upload / ".." / "x.png")}, {"url": "x"},
                {"path": "/etc/passwd"}, {"path": str(ROOT / "checkpoints" / "resnet20" / "config.json")}, None):
        with pytest.raises(gr.Error):
            app._source(bad)


@pytest.mark.parametrize("depth, bn, expect", [("abc", "batch", "depth"), (20.5, "batch", "depth"),
                                               (None, "batch", "depth"), (20, ["batch"], "bn")])
def test_gradient_flow_refuses_bad_values_with_a_message(client, depth, bn, expect):
    with pytest.raises(Exception, match=expect):
        client.predict(None, "test batch", "init", depth, bn, api_name="/gradient_flow")
