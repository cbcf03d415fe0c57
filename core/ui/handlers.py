"""The one boundary between the service layer and Gradio: reply(fn) runs a service handler and turns
its UserError into Gradio's error (the page shows the message, and the log one line without a
traceback; show_error=False hides any other exception's) and its KEEP outputs into Gradio's skip (the
component keeps what it shows)."""
from __future__ import annotations

import functools
import logging

import gradio as gr

from core.serving.reply import KEEP, UserError


def _shown(value):
    return gr.skip() if value is KEEP else value


def reply(fn):
    """fn as a Gradio handler (see the module's docstring)."""
    @functools.wraps(fn)
    def handler(*args, **kwargs):
        try:
            out = fn(*args, **kwargs)
        except UserError as e:  # expected: one log line, no traceback
            logging.getLogger("resnet_lab").info("%s: %s", getattr(fn, "__name__", "handler"), e)
            raise gr.Error(str(e), print_exception=False) from None
        return tuple(_shown(v) for v in out) if isinstance(out, tuple) else _shown(out)
    return handler
