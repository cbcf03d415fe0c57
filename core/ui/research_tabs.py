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
from pathlib import Path
from typing import Callable

import gradio as gr
import pandas as pd
import torch

from core.engine import checkpoints, models
from core.engine.data import normalize
from core.figures import cost, probes
from core.figures import faithfulness as faithfulness_fig
from core.figures import landscape as landscape_fig
from core.figures import robustness as robustness_fig
from core.figures import study as study_fig
from core.research import arch_cost, faithfulness, landscape, robustness, shattered, study
from core.research.precompute import Store
from core.serving import files
from core.serving.worker import Worker
from core.serving.zoo import ModelUnavailable, Zoo
from core.ui import robustness_text, text

LINE_IMAGES = 32  # test-sample images for the live 1-D landscape
WANTED = [n for d in models.DEPTHS for n in models.pair(d)]  # every view's models, paper order
SOURCES = {"generated": "CIFAR-10-C-style (generated here)", "official": "official CIFAR-10-C"}


def check_depth(value) -> int:
    """A depth from the UI or an API call (int, whole float or digits), or a gr.Error."""
    try:
        depth = int(value) if float(value) == int(float(value)) else None
    except (TypeError, ValueError, OverflowError):
        depth = None
    if depth not in models.DEPTHS:
        raise gr.Error(f"depth must be one of {list(models.DEPTHS)}, not {value!r}")
    return depth


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


class Research:
    """The handlers, one per view key, over one Zoo and the Store of its settings."""

    def __init__(self, zoo: Zoo, files_dir):
        self.zoo, self.store, self.files = zoo, Store(zoo.settings), Path(files_dir)

    def _missing(self, shown) -> str:
        return text.missing(WANTED, self.zoo.shipped(), list(shown))

    def _stored(self, view: str):
        data, info = self.store.lookup(view)
        if not data:
            raise gr.Error(f"No current {view.replace('_', '-')} data: {info}")
        return data, info

    def _csv(self, df) -> str:
        """The table as a CSV file named by its content (core.serving.files: written whole, shared by
        clicks with the same table)."""
        return files.publish(df.to_csv(index=False).encode(), self.files, "results.csv")

    def results(self):
        df = study.results_table(checkpoints.records(self.zoo.root))
        note = text.diagnosis(df.to_dict("records")) + "\n\n" + self._missing(df["model"])
        table = df.drop(columns=["reference", "basis"]).round(3).rename(columns=study.HEADERS)
        return table, note, self._csv(df.drop(columns="reference"))

    def curves(self, log_y=False):
        data = study.curves(checkpoints.records(self.zoo.root))
        return study_fig.curves_figure(data, log_y=bool(log_y)), self._missing(data)

    def layer_responses(self, sorted_=False):
        data, info = self._stored("layer_responses")
        return study_fig.layer_responses_figure(data, sorted_=bool(sorted_)), info + "\n\n" + self._missing(data)

    def lesion(self):
        data, info = self._stored("lesion")
        return (probes.lesion_figure(data), probes.random_lesion_figure(data),
                "\n\n".join([text.LESION_DEFINITION, *text.lesion_notes(data), info, self._missing(data)]))

    def landscape(self, kind="contour"):
        if kind not in ("contour", "surface"):
            raise gr.Error("kind must be 'contour' or 'surface'")
        pair = models.deepest_pair(self.zoo.shipped())
        if pair is None:
            raise gr.Error("The landscape needs a trained plain/residual pair; none is shipped yet.")
        x_u8, y = (a[:LINE_IMAGES] for a in self.zoo.test_sample())
        lines = {}
        for name in pair:
            try:
                served = self.zoo.get(name)
            except ModelUnavailable as e:
                raise gr.Error(str(e)) from None
            lines[name] = landscape.line(served.model, normalize(torch.as_tensor(x_u8), served.normalization),
                                         torch.as_tensor(y), landscape.LIVE_ALPHAS)
        return landscape_fig.landscape_line_figure(lines), *self._surface(kind)

    def _surface(self, kind) -> tuple:
        """(the stored 2-D surface's figure, or None, its info line)."""
        data, info = self.store.lookup("landscape")
        return (landscape_fig.landscape_surface_figure(data, kind=kind) if data else None), info

    def stored_landscape(self, kind="contour"):
        """The landscape tab as it opens: the stored 2-D surface; the live 1-D line (seconds of work)
        is left as it is until the button asks for it."""
        if kind not in ("contour", "surface"):
            raise gr.Error("kind must be 'contour' or 'surface'")
        surf, info = self._surface(kind)
        return gr.skip(), surf, info + "\n\n" + text.LIVE_LINE

    def shattered(self, weights="trained", depth=20):
        if weights not in ("trained", "init"):
            raise gr.Error("weights must be 'trained' or 'init'")
        depth = check_depth(depth)
        data, info = self.store.lookup("shattered")
        entry = (data or {}).get(f"{weights}{depth}")
        if entry and entry["lines"]:
            lines, notes, source = entry["lines"], entry["notes"], info
        else:  # nothing stored: compute it live
            lines, notes = self._live_lines(depth, weights)
            source = "computed live"
        if not lines:
            raise gr.Error("Neither model is shipped at this depth; choose weights 'init'.")
        return probes.shattered_figure(lines), "\n\n".join(notes + text.autocorr_notes(lines) + [source])

    def _live_lines(self, depth: int, weights: str) -> tuple[dict, list[str]]:
        """The shattered view at one depth, computed now: fresh nets calibrated on the test sample (as
        stored), or the served ones (with a note for each that is unavailable)."""
        if weights == "init":
            nets, notes = shattered.init_pair(depth, self.zoo.test_sample()[0]), []
        else:
            pair = self.zoo.pair(*models.pair(depth), weights)
            nets = {name: (s.model, s.normalization) for name, s, _ in pair if s is not None}
            notes = [text.unavailable(name, why) for name, s, why in pair if s is None]
        return shattered.pair_lines(nets, self.zoo.test_sample()[0], weights), notes

    def faithfulness_study(self, depth=None, sign="absolute"):
        if sign not in faithfulness.SIGNS:
            raise gr.Error(f"sign must be one of {list(faithfulness.SIGNS)}")
        data, info = self._stored("faithfulness")
        pairs = [d for d in models.DEPTHS if set(models.pair(d)) <= set(data)]
        depth = (pairs[-1] if pairs else None) if depth in (None, "") else check_depth(depth)
        if depth not in pairs:
            raise gr.Error(f"No faithfulness study is stored for depth {depth}; stored: {pairs or 'none'}")
        plain, residual = models.pair(depth)
        rows, diff, n = faithfulness.compare(data, plain, residual, sign)
        table = pd.DataFrame(text.faithfulness_table(plain, residual, rows, diff),
                             columns=["method", "curve", plain, residual,
                                      text.DIFF_HEADER.format(residual=residual, plain=plain)])
        fig = faithfulness_fig.methods_figure(rows, f"Faithfulness on {n} test images, depth {depth}, ranked by "
                                                    f"the {sign} map, means with 95% bootstrap intervals")
        return fig, table, "\n\n".join([text.faithfulness_reading(plain, residual, rows, diff, n), info,
                                          self._missing(data)])

    def robustness(self, depth=None, source="generated"):
        if source not in SOURCES:
            raise gr.Error(f"source must be one of {list(SOURCES)}")
        data, info = self._stored("robustness")
        entry = data.get(source)
        if not entry:
            raise gr.Error(data.get("official_note") or f"No {SOURCES[source]} study is stored.")
        pairs = [d for d in models.DEPTHS if set(models.pair(d)) <= set(entry["nets"])]
        depth = (pairs[-1] if pairs else None) if depth in (None, "") else check_depth(depth)
        if depth not in pairs:
            raise gr.Error(f"No corruption study is stored for depth {depth}; stored: {pairs or 'none'}")
        plain, residual = models.pair(depth)
        cmp, titles, rows = robustness_text.pair_rows(entry, plain, residual)
        table = pd.DataFrame(rows, columns=[h.format(plain=plain, residual=residual) for h in robustness_text.HEADERS])
        what = f"{entry['label']}, {entry['n_images']:,} test images"
        heat = robustness_fig.heatmap_figure(entry["errors"], titles, (plain, residual), f"Error % per corruption, {what}")
        nets = [{"net": n, **about, **robustness.summary(entry["clean"][n], entry["errors"][n])}
                for n, about in entry["nets"].items()]
        per_depth = robustness_fig.depth_figure(nets, f"Clean error, mean corruption error (mCE) and their gap per "
                                                      f"depth, {what}")
        notes = [robustness_text.robustness_reading(cmp, titles, plain, residual, entry["n_images"], entry["label"]),
                 robustness_text.DELTA, data.get("official_note", ""), info, self._missing(entry["nets"])]
        return heat, per_depth, table, "\n\n".join(n for n in notes if n)

    def vgg_vs_resnet(self, channels=64):
        try:
            channels = int(channels)
        except (TypeError, ValueError, OverflowError):
            channels = 0
        if not 1 <= channels <= 1024:
            raise gr.Error("channels must be between 1 and 1024")
        data, _ = self.store.lookup("vgg_vs_resnet")
        rows = data["table"] if data else arch_cost.table()
        stack = [arch_cost.stack_vs_single(k, channels) for k in range(1, 6)]
        return cost.imagenet_figure(rows), cost.stack_figure(stack), [[r["arch"], r["params"], r["macs"]] for r in rows]


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
            button.click(worker.wrap(getattr(handlers, view.key)), controls or None, outputs, api_name=view.key,
                         concurrency_id="models")
            tab.select(worker.wrap(_on_open(getattr(handlers, view.opens or view.key), outputs)), controls or None,
                       outputs, api_visibility="private", concurrency_id="models")


def _on_open(fn, outputs):
    """fn for a tab that opens: where its data is not ready, the reason goes to the view's notes (its
    first Markdown output) and the other outputs stay as they are, instead of an error toast."""
    notes = next((i for i, out in enumerate(outputs) if isinstance(out, gr.Markdown)), None)

    @functools.wraps(fn)
    def opened(*args):
        try:
            return fn(*args)
        except gr.Error as e:
            if notes is None:
                raise
            return tuple(e.message if i == notes else gr.skip() for i in range(len(outputs)))
    return opened
