"""The placeholder app builds, starts locally and serves its page."""
import urllib.request

import gradio as gr

import app


def test_placeholder_serves_page():
    assert isinstance(app.demo, gr.Blocks)
    assert "checkpoint" in app.shipped_summary().lower()
    app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None)
    try:
        with urllib.request.urlopen(app.demo.local_url, timeout=30) as r:
            assert r.status == 200
            assert "ResNet lab" in r.read().decode()
    finally:
        app.demo.close()
