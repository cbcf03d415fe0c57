"""Limits as users meet them: a full queue answers only with Gradio's queue-full error and the server
keeps serving (made full on purpose: the one worker is held at a gate until the test lets it go);
where the app listens by default (nothing public unless asked or on a Space); forged file payloads;
no network use; the Spaces header."""
import json
import os
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.utils import QueueError, Status

from core.settings import Settings, SettingsError
from tests.support import ROOT, running_app, wait_for

pytestmark = pytest.mark.e2e

CAT = str(ROOT / "assets" / "examples" / "cifar_cat.png")

HOLD = '''
import os, time
import core.serving.images as _images
_decode = _images.decode
def decode(source):  # while the gate file exists, an image decode (one request's work) waits for it
    gate = os.environ["HOLD_GATE"]
    if os.path.exists(gate):
        open(gate + ".held", "w").close()
        deadline = time.monotonic() + 120
        while os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
    return _decode(source)
_images.decode = decode
'''


def _queue_size(url) -> int:
    with urllib.request.urlopen(f"{url}gradio_api/queue/status", timeout=10) as r:
        return json.loads(r.read())["queue_size"]


def _check_cat(result):
    lab_p, lab_r, _, _ = result
    assert len(lab_p["confidences"]) == 5 and lab_r["label"] == "cat", result


def test_a_full_queue_refuses_cleanly_and_the_server_survives(tmp_path):
    """Queue of 1 and one processing slot: while the gate file exists the model worker is held in an
    image decode (by the app's start-up warm-up, which gets there first, or else by request A), so
    request A, once it has left the queue, holds the one slot; B then waits in the queue, and C
    must be refused, whatever the machine's speed. (Waiting for A to leave the queue matters: B
    sent while A still waits there is itself refused.)"""
    (tmp_path / "sitecustomize.py").write_text(HOLD)
    gate = tmp_path / "gate"
    gate.touch()
    env = dict(RESNET_LAB_QUEUE="1", PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
               HOLD_GATE=str(gate))
    with running_app(tmp_path / "app.log", **env) as (url, proc):
        a, b, c = (Client(url, verbose=False) for _ in range(3))
        try:
            held = a.submit(handle_file(CAT), "plain20", "resnet20", api_name="/classify")
            wait_for(Path(f"{gate}.held").exists, 60, "the worker to be held at the gate")
            wait_for(lambda: held.status().code == Status.PROCESSING, 60, "request A to leave the queue")
            waiting = b.submit(handle_file(CAT), "plain20", "resnet20", api_name="/classify")
            wait_for(lambda: _queue_size(url) == 1, 60, "request B to wait in the queue")
            refused = c.submit(handle_file(CAT), "plain20", "resnet20", api_name="/classify")
            wait_for(refused.done, 30, "request C to be refused (a queue of 1 is full)")
            with pytest.raises(QueueError) as e:
                refused.result()
            assert str(e.value) == "Queue is full! Please try again."  # gradio_client's words for queue_full
            assert not held.done() and not waiting.done()
        finally:
            gate.unlink(missing_ok=True)  # let A go: A, then B, are answered
        _check_cat(held.result(timeout=120))
        _check_cat(waiting.result(timeout=120))
        assert _queue_size(url) == 0
        _check_cat(Client(url, verbose=False).predict(handle_file(CAT), "plain20", "resnet20", api_name="/classify"))
        assert proc.poll() is None


def test_listens_on_localhost_unless_told_or_on_a_space():
    def address(**env):
        s = Settings.from_env(env)
        return s.host, s.port
    assert address() == ("127.0.0.1", 7860)
    assert address(GRADIO_SERVER_PORT="8000") == ("127.0.0.1", 8000)
    assert address(PORT="9000", GRADIO_SERVER_PORT="8000") == ("127.0.0.1", 9000)
    assert address(SPACE_ID="user/resnet-lab")[0] == "0.0.0.0"
    assert address(SPACE_ID="user/resnet-lab", GRADIO_SERVER_NAME="10.0.0.5")[0] == "10.0.0.5"
    assert Settings.from_env({}).queue == 64 and Settings.from_env({"RESNET_LAB_QUEUE": "5"}).queue == 5
    with pytest.raises(SettingsError, match=r"\$PORT must be an integer, not 'eighty'"):
        Settings.from_env({"PORT": "eighty"})


def _raw_call(server, endpoint, data):
    """POST to Gradio's HTTP API directly (gradio_client would upload local files itself) and return
    the event stream's text: a forged payload reaches the server exactly as written."""
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
    _check_cat(client.predict(handle_file(CAT), "plain20", "resnet20", api_name="/classify"))


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
        _check_cat(Client(url, verbose=False).predict(handle_file(CAT), "plain20", "resnet20", api_name="/classify"))
    assert not log.exists() or not log.read_text(), log.read_text()
