"""Limits as users meet them: a full queue answers only with Gradio's queue-full error and the server
keeps serving; where the app listens by default (nothing public unless asked or on a Space)."""
import threading

import pytest

from gradio_client import Client, handle_file

import app
from tests.conftest import ROOT, running_app

CAT = str(ROOT / "assets" / "examples" / "cifar_cat.png")


def test_a_full_queue_refuses_cleanly_and_the_server_survives(tmp_path):
    with running_app(tmp_path / "app.log", RESNET_LAB_QUEUE="1") as (url, proc):
        results, clients = [], [Client(url, verbose=False) for _ in range(6)]
        start = threading.Barrier(len(clients))

        def slow_request(client):
            start.wait()  # all at once
            try:  # Integrated Gradients at the 200-step cap: long enough to fill a queue of 1
                client.predict(handle_file(CAT), "plain20", "resnet20", "Integrated Gradients", "predicted", "blend",
                               "absolute", 200, 4, 0.15, 8, "layer3", api_name="/explain")
                results.append("ok")
            except Exception as e:
                results.append(str(e))

        threads = [threading.Thread(target=slow_request, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refused = [r for r in results if r != "ok"]
        assert "ok" in results and refused, results
        assert all("Queue is full" in r for r in refused), refused  # only the queue-full error
        out = Client(url, verbose=False).predict(handle_file(CAT), "plain20", "resnet20", api_name="/classify")
        assert out[1]["confidences"] and proc.poll() is None


def test_listens_on_localhost_unless_told_or_on_a_space(monkeypatch):
    for var in ("GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "PORT", "SPACE_ID"):
        monkeypatch.delenv(var, raising=False)
    assert app.serve_address() == ("127.0.0.1", 7860)
    monkeypatch.setenv("PORT", "9000")
    assert app.serve_address() == ("127.0.0.1", 9000)
    monkeypatch.setenv("SPACE_ID", "user/resnet-lab")
    assert app.serve_address()[0] == "0.0.0.0"
    monkeypatch.setenv("GRADIO_SERVER_NAME", "10.0.0.5")
    assert app.serve_address()[0] == "10.0.0.5"


def _raw_call(server, endpoint, data):
    """POST to Gradio's HTTP API directly (gradio_client would upload local files itself) and return
    the event stream's text: a forged payload reaches the server exactly as written."""
    import json
    import urllib.request

    req = urllib.request.Request(f"{server}gradio_api/call/{endpoint}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(req, timeout=30).read())["event_id"]
    with urllib.request.urlopen(f"{server}gradio_api/call/{endpoint}/{event_id}", timeout=60) as r:
        return r.read().decode()


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../etc/passwd", "app.py", str(ROOT / "app.py"),
                                  str(ROOT / "checkpoints" / "resnet20" / "model.safetensors"),
                                  "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:22/",
                                  "file:///etc/passwd", "/proc/self/environ"])
def test_forged_file_payloads_never_read_server_files(server, client, path):
    text = _raw_call(server, "classify", [{"path": path, "meta": {"_type": "gradio.FileData"}}, "plain20", "resnet20"])
    assert "event: error" in text and "event: complete" not in text, text[:500]
    assert "root:" not in text and "confidences" not in text
    assert client.predict(handle_file(CAT), "plain20", "resnet20", api_name="/classify")[1]["confidences"]


GUARD = '''
import socket, os
_connect = socket.socket.connect
def connect(self, address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
        with open(os.environ["NET_LOG"], "a") as f:
            f.write(f"{address}\\n")
        raise OSError("network blocked by the test")
    return _connect(self, address)
socket.socket.connect = connect
'''


def test_nothing_touches_the_network_at_start_or_on_a_request(tmp_path):
    """Every outgoing non-loopback connection of the app process is blocked and logged: none at start
    (no analytics, no model or font downloads) and none while serving a classify."""
    (tmp_path / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "net.log"
    with running_app(tmp_path / "app.log", PYTHONPATH=str(tmp_path), NET_LOG=str(log)) as (url, _):
        from gradio_client import Client
        assert Client(url, verbose=False).predict(handle_file(CAT), "plain20", "resnet20",
                                                  api_name="/classify")[1]["confidences"]
    assert not log.exists() or not log.read_text(), log.read_text()


def test_spaces_header_is_valid_and_pins_the_sdk():
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    header = dict(line.split(": ", 1) for line in text.split("---\n")[1].strip().splitlines())
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py"
    import gradio
    assert header["sdk_version"] == gradio.__version__  # the version requirements.txt pins and the tests ran
    assert f"gradio=={gradio.__version__}" in (ROOT / "requirements.txt").read_text()
