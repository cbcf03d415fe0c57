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
from core.serving.research import SOURCES, TABLE_LABEL, Research
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
    controls: tuple[Callable[[Research], gr.components.Component], ...] = field(default=())  # made from
    # the service, which knows what is stored and which depth the page opens on
    opens: str = ""


def _plot(elem=None):
    return lambda: gr.Plot(elem_id=elem, show_label=False)  # each figure's own title names it


def _depth(view: str, label: str):
    """A depth control offering only the depths `view` has stored, opening on Research.opening_depth."""
    def make(r: Research):
        have = r.stored_depths(view)
        return gr.Radio(have, value=r.opening_depth(view), label=label, interactive=bool(have))
    return make


VIEWS = (
    View("results", "Results", "Show results", "results",
         (lambda: gr.Dataframe(label=TABLE_LABEL, elem_id="results-table", wrap=True), gr.Markdown,
          lambda: gr.File(label="Download as CSV"))),
    View("curves", "Training curves", "Show curves", "curves", (_plot("curves-plot"), gr.Markdown),
         (lambda r: gr.Checkbox(value=True, label="log y axis"),)),
    View("layer_responses", "Layer responses", "Show layer responses", "responses",
         (_plot("responses-plot"), gr.Markdown),
         (lambda r: gr.Checkbox(label="sorted by magnitude (Fig. 7 bottom)"),)),
    View("lesion", "Lesions", "Show lesion study", "lesion", (_plot("lesion-plot"), _plot(), gr.Markdown)),
    View("landscape", "Loss landscape", "Show landscape", "landscape", (_plot("landscape-plot"), _plot(), gr.Markdown),
         (lambda r: gr.Radio(["contour", "surface"], value="contour", label="2-D view"),), opens="stored_landscape"),
    View("shattered", "Shattered gradients", "Show gradients", "shattered", (_plot("shattered-plot"), gr.Markdown),
         (lambda r: gr.Radio(["trained", "init"], value="trained", label="Weights"),
          lambda r: gr.Radio(list(models.DEPTHS), value=r.zoo.default_depth(), label="Depth"))),
    View("faithfulness_study", "Attribution faithfulness", "Show faithfulness study", "study",
         (_plot("study-plot"), lambda: gr.Dataframe(label="Mean AUC [95% bootstrap interval]", elem_id="study-table",
                                                     wrap=True),
          gr.Markdown),
         (_depth("faithfulness", "Depth (the pairs studied)"),
          lambda r: gr.Radio(list(faithfulness.SIGNS), value=faithfulness.SIGNS[0],
                             label="Pixels ranked by (absolute: magnitude; all: signed, evidence for the class "
                                   "first)"))),
    View("robustness", "Corruptions", "Show corruption study", "robustness",
         (_plot("robustness-plot"), _plot("robustness-depth"),
          lambda: gr.Dataframe(label="Mean error over the 5 severities", elem_id="robustness-table", wrap=True),
          gr.Markdown),
         (_depth("robustness", "Depth (the pairs studied)"),
          lambda r: gr.Radio([(SOURCES[k], k) for k in r.sources()], value=(r.sources() or [None])[0],
                             label="Source", interactive=len(r.sources()) > 1))),
    View("vgg_vs_resnet", "VGG vs ResNet", "Compare", "vgg",
         (_plot("vgg-plot"), _plot(), lambda: gr.Dataframe(headers=["arch", "params", "multiply-adds"])),
         (lambda r: gr.Slider(1, 1024, value=64, step=1, label="Channels C (for the 3×3 stack calculator)"),)),
)


def research_tabs(zoo: Zoo, worker: Worker, files_dir, group=None):
    """Add the research tabs to the gr.Blocks being built, one per VIEWS entry, in tabs that wrap onto
    more rows rather than hide behind a menu; each handler runs on `worker`, and downloads are written
    under `files_dir`. `group`, the tab holding them, shows the first view when it is selected."""
    handlers = Research(zoo, files_dir)
    with gr.Tabs(overflow_behavior="wrap"):
        for i, view in enumerate(VIEWS):
            with gr.Tab(view.title) as tab:
                gr.Markdown(text.INTRO[view.key])
                with gr.Accordion("About this view", open=False):
                    gr.Markdown(text.ABOUT[view.key])
                with gr.Row(visible=bool(view.controls)):
                    controls = [make(handlers) for make in view.controls]
                button = gr.Button(view.button, variant="primary", elem_id=f"{view.elem}-btn")
                outputs = [make() for make in view.outputs]
                # preprocess=False: the service checks every value itself, so a value the page does not
                # offer (an API call's) is its UserError, one log line, not Gradio's traceback
                button.click(reply(worker.wrap(getattr(handlers, view.key))), controls or None, outputs,
                             api_name=view.key, concurrency_id="models", preprocess=False)
                opened = reply(worker.wrap(_on_open(getattr(handlers, view.opens or view.key), outputs)))
                for event in [tab.select] + ([group.select] if group is not None and i == 0 else []):
                    event(opened, controls or None, outputs, api_visibility="private", concurrency_id="models",
                          preprocess=False)


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
