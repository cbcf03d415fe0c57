"""The research tabs of the dashboard (wiring only), built from one list of view specs.

Results (Table 6), Training curves (Fig. 6), Layer responses (Fig. 7), Lesions (Veit et al. 2016),
Loss landscape (Li et al. 2018), Shattered gradients (Balduzzi et al. 2017), Attribution faithfulness
(deletion and insertion, Petsiuk et al. 2018), Corruptions (CIFAR-10-C, Hendrycks & Dietterich 2019),
VGG vs ResNet (Sec. 3.3).
Each view is a public endpoint named by its key. Heavy views read the stored results of
core/research/precompute.py (stamped by checkpoint sha256); the rest compute live on the shipped test
sample. Every view says which models it is missing. Opening a tab shows its view at once (a private
event, on the same worker as the button): what is ready, or in its notes why it is not.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import gradio as gr

from core.engine import models
from core.research import faithfulness
from core.serving.reply import KEEP, UserError
from core.serving.research import SOURCES, Research
from core.serving.worker import Worker
from core.serving.zoo import Zoo
from core.ui import text
from core.ui.handlers import reply


@dataclass(frozen=True)
class View:
    """One research tab: its endpoint (key, also its text's key), title, button, controls and outputs
    (factories of gradio components, made inside the tab). Opening the tab runs the Research method
    named by `opens` (default: the key's, as the button does) with the current controls: one that
    only shows what is ready, where the button's computes for seconds."""
    key: str
    title: str
    button: str  # label; its elem_id is f"{elem}-btn"
    elem: str
    outputs: tuple[Callable[[], gr.components.Component], ...]
    controls: tuple[Callable[[], gr.components.Component], ...] = field(default=())
    opens: str = ""


def _plot(elem=None):
    return lambda: gr.Plot(elem_id=elem, show_label=False)  # each figure's own title names it


VIEWS = (
    View("results", "Results", "Show results", "results",
         (lambda: gr.Dataframe(label="Shipped checkpoints", elem_id="results-table"), gr.Markdown,
          lambda: gr.File(label="Download as CSV"))),
    View("curves", "Training curves", "Show curves", "curves", (_plot("curves-plot"), gr.Markdown),
         (lambda: gr.Checkbox(label="log y axis"),)),
    View("layer_responses", "Layer responses", "Show layer responses", "responses",
         (_plot("responses-plot"), gr.Markdown),
         (lambda: gr.Checkbox(label="sorted by magnitude (Fig. 7 bottom)"),)),
    View("lesion", "Lesions", "Show lesion study", "lesion", (_plot("lesion-plot"), _plot(), gr.Markdown)),
    View("landscape", "Loss landscape", "Show landscape", "landscape", (_plot("landscape-plot"), _plot(), gr.Markdown),
         (lambda: gr.Radio(["contour", "surface"], value="contour", label="2-D view"),), opens="stored_landscape"),
    View("shattered", "Shattered gradients", "Show gradients", "shattered", (_plot("shattered-plot"), gr.Markdown),
         (lambda: gr.Radio(["trained", "init"], value="trained", label="Weights"),
          lambda: gr.Radio(list(models.DEPTHS), value=20, label="Depth"))),
    View("faithfulness_study", "Attribution faithfulness", "Show faithfulness study", "study",
         (_plot("study-plot"), lambda: gr.Dataframe(label="Mean AUC [95% bootstrap interval]", elem_id="study-table"),
          gr.Markdown),
         (lambda: gr.Radio(list(models.DEPTHS), value=None, label="Depth (default: the deepest pair studied)"),
          lambda: gr.Radio(list(faithfulness.SIGNS), value=faithfulness.SIGNS[0],
                           label="Pixels ranked by (absolute: magnitude; all: signed, evidence for the class first)"))),
    View("robustness", "Corruptions", "Show corruption study", "robustness",
         (_plot("robustness-plot"), _plot("robustness-depth"),
          lambda: gr.Dataframe(label="Mean error over the 5 severities", elem_id="robustness-table"), gr.Markdown),
         (lambda: gr.Radio(list(models.DEPTHS), value=None, label="Depth (default: the deepest pair studied)"),
          lambda: gr.Radio(list(SOURCES), value="generated", label="Source (official: CIFAR-10-C's own files)"))),
    View("vgg_vs_resnet", "VGG vs ResNet", "Compare", "vgg",
         (_plot("vgg-plot"), _plot(), lambda: gr.Dataframe(headers=["arch", "params", "multiply-adds"])),
         (lambda: gr.Slider(1, 1024, value=64, step=1, label="Channels C (for the 3×3 stack calculator)"),)),
)


def research_tabs(zoo: Zoo, worker: Worker, files_dir):
    """Add the research tabs to the gr.Blocks being built, one per VIEWS entry; each handler runs on
    `worker`, and downloads are written under `files_dir`."""
    handlers = Research(zoo, files_dir)
    for view in VIEWS:
        with gr.Tab(view.title) as tab:
            gr.Markdown(text.INTRO[view.key])
            with gr.Row(visible=bool(view.controls)):
                controls = [make() for make in view.controls]
            button = gr.Button(view.button, variant="primary", elem_id=f"{view.elem}-btn")
            outputs = [make() for make in view.outputs]
            button.click(reply(worker.wrap(getattr(handlers, view.key))), controls or None, outputs,
                         api_name=view.key, concurrency_id="models")
            tab.select(reply(worker.wrap(_on_open(getattr(handlers, view.opens or view.key), outputs))),
                       controls or None, outputs, api_visibility="private", concurrency_id="models")


def _on_open(fn, outputs):
    """fn for a tab that opens: where its data is not ready, the reason goes to the view's notes (its
    first Markdown output) and the other outputs stay as they are, instead of an error toast."""
    notes = next((i for i, out in enumerate(outputs) if isinstance(out, gr.Markdown)), None)

    @functools.wraps(fn)
    def opened(*args):
        try:
            return fn(*args)
        except UserError as e:
            if notes is None:
                raise
            return tuple(str(e) if i == notes else KEEP for i in range(len(outputs)))
    return opened
