"""Limits as users meet them: a full queue answers only with Gradio's queue-full error and the server
keeps serving; where the app listens by default (nothing public unless asked or on a Space)."""
import threading

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
