"""Starting the dashboard: logging, the queue, the address, and the warm-up once the page is served."""
import logging
from pathlib import Path

import gradio as gr

import core
from core.engine import models
from core.serving.lab import Lab, examples
from core.settings import Settings, set_threads
from core.ui.dashboard import MAX_FILE_SIZE, build


def from_settings(settings: Settings) -> tuple[gr.Blocks, Lab]:
    """The demo (and its handlers) for `settings`, with torch's threads set to the CPU quota (and
    denormals flushed) first."""
    set_threads(settings.threads)
    return build(settings)


def serve(demo: gr.Blocks, lab: Lab, settings: Settings):
    """Launch on settings.host and settings.port with a queue of settings.queue waiting requests
    (past it: "queue is full"); once the page is served, warm the default pair up in the background
    (logged). The first log line names where the code and the checkpoints come from (a Space's log
    shows which files it runs)."""
    logging.getLogger("resnet_lab").info("code: %s; checkpoints: %s (%d models)", Path(core.__file__).parent,
                                         settings.checkpoints, len(lab.zoo.shipped()))
    demo.queue(max_size=settings.queue, default_concurrency_limit=1).launch(
        server_name=settings.host, server_port=settings.port, max_file_size=MAX_FILE_SIZE, show_error=False,
        prevent_thread_lock=True)
    shown = examples()
    lab.warm_up(*models.pair(lab.zoo.default_depth()), shown[0] if shown else None)
    demo.block_thread()


def configure_logging(level: str):
    """The app's log lines (logger "resnet_lab", to stderr) at `level` (Settings.log_level: debug,
    info, warning or error); other libraries' loggers are left as they are. At debug each classify
    request logs its spans (decode, model per net, file write, handler total)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("resnet_lab")
    logger.addHandler(handler)
    logger.setLevel(getattr(logging, level.upper()))
