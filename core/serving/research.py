"""The research views' service: one handler per view key (core/ui/research_tabs.py wires each to its
tab and public endpoint). Heavy views read the stored results of core/research/precompute.py
(stamped by checkpoint sha256); the rest compute live on the shipped test sample. Every view says
which models it is missing. A request the user can fix raises UserError; KEEP leaves an output as
it is.
"""
from __future__ import annotations

from pathlib import Path

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
from core.serving import files, robustness_text
from core.serving import notes as text
from core.serving.reply import KEEP, UserError
from core.serving.zoo import ModelUnavailable, Zoo

LINE_IMAGES = 32  # test-sample images for the live 1-D landscape
WANTED = [n for d in models.DEPTHS for n in models.pair(d)]  # every view's models, paper order
PAGE_TABLE = {"model": "model", "train_err_eval": "train %", "test_err": "test %", "seeds": "runs",
              "paper_err": "paper %"}  # phone-wide: what each is, in TABLE_LABEL; the verdicts are in the notes
TABLE_LABEL = (f"Error in % ({study.HEADERS['train_err_eval']}; {study.HEADERS['test_err']}), the mean over the "
               "runs (seeds) shipped; paper: Table 6's test error. Every column is in the CSV.")
SOURCES = {"generated": "CIFAR-10-C-style (generated here)", "official": "official CIFAR-10-C"}


def check_depth(value) -> int:
    """A depth from the UI or an API call (int, whole float or digits), or a UserError."""
    try:
        depth = int(value) if float(value) == int(float(value)) else None
    except (TypeError, ValueError, OverflowError):
        depth = None
    if depth not in models.DEPTHS:
        raise UserError(f"depth must be one of {list(models.DEPTHS)}, not {value!r}")
    return depth


class Research:
    """The handlers, one per view key, over one Zoo and the Store of its settings."""

    def __init__(self, zoo: Zoo, files_dir):
        self.zoo, self.store, self.files = zoo, Store(zoo.settings), Path(files_dir)

    def _missing(self, shown) -> str:
        return text.missing(WANTED, self.zoo.shipped(), list(shown))

    def _stored(self, view: str):
        data, info = self.store.lookup(view)
        if not data:
            raise UserError(f"No current {view.replace('_', '-')} data: {info}")
        return data, info

    def stored_depths(self, view: str, source: str = "generated") -> list[int]:
        """The depths whose two nets are in VIEW's current stored data (faithfulness, or robustness's
        `source` part): the choices its tab offers."""
        data = self.store.load(view) or {}
        if view == "robustness":
            data = (data.get(source) or {}).get("nets") or {}
        return [d for d in models.DEPTHS if set(models.pair(d)) <= set(data)]

    def sources(self) -> list[str]:
        """The corruption sources stored (the official set only where its files were found)."""
        data = self.store.load("robustness") or {}
        return [k for k in SOURCES if data.get(k)]

    def opening_depth(self, view: str, source: str = "generated") -> int | None:
        """The depth a stored view opens on: the page's (Zoo.default_depth) where it is stored, else
        the deepest stored pair (None if there is none)."""
        have = self.stored_depths(view, source)
        return self.zoo.default_depth() if self.zoo.default_depth() in have else (have[-1] if have else None)

    def _csv(self, df) -> str:
        """The table as a CSV file named by its content (core.serving.files: written whole, shared by
        clicks with the same table)."""
        return files.publish(df.to_csv(index=False).encode(), self.files, "results.csv")

    def results(self):
        df = study.results_table(checkpoints.records(self.zoo.root))
        note = text.diagnosis(df.to_dict("records")) + "\n\n" + self._missing(df["model"])
        table = df[list(PAGE_TABLE)].round(2).rename(columns=PAGE_TABLE)  # phone-wide; every column in the CSV
        return table, note, self._csv(df.drop(columns="reference"))

    def curves(self, log_y=True):
        data = study.curves(checkpoints.records(self.zoo.root))
        return study_fig.curves_figure(data, log_y=bool(log_y)), self._missing(data)

    def layer_responses(self, sorted_=False):
        data, info = self._stored("layer_responses")
        failed = [n for n in self.zoo.shipped() if n not in self.zoo.trained()]
        note = (f"{', '.join(failed)} did not train (training error near chance): drawn dotted, on the right-hand "
                "axis, whose scale is its own." if set(failed) & set(data) else "")
        return (study_fig.layer_responses_figure(data, sorted_=bool(sorted_), failed=failed),
                "\n\n".join(n for n in (note, info, self._missing(data)) if n))

    def lesion(self):
        data, info = self._stored("lesion")
        return (probes.lesion_figure(data), probes.random_lesion_figure(data),
                "\n\n".join([text.LESION_DEFINITION, *text.lesion_notes(data), info, self._missing(data)]))

    def landscape_pair(self) -> tuple[str, str] | None:
        """The pair of the stored 2-D surface (so the live line shows the same nets), else the pair the
        page opens on, if shipped."""
        stored = self.store.load("landscape")
        if stored:
            return models.deepest_pair(stored)
        pair = models.pair(self.zoo.default_depth())
        return pair if set(pair) <= set(self.zoo.shipped()) else None

    def landscape(self, kind="contour"):
        if kind not in ("contour", "surface"):
            raise UserError("kind must be 'contour' or 'surface'")
        pair = self.landscape_pair()
        if pair is None:
            raise UserError("The landscape needs a trained plain/residual pair; none is shipped yet.")
        x_u8, y = (a[:LINE_IMAGES] for a in self.zoo.test_sample())
        lines = {}
        for name in pair:
            try:
                served = self.zoo.get(name)
            except ModelUnavailable as e:
                raise UserError(str(e)) from None
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
            raise UserError("kind must be 'contour' or 'surface'")
        surf, info = self._surface(kind)
        return KEEP, surf, info + "\n\n" + text.LIVE_LINE

    def shattered(self, weights="trained", depth=None):
        if weights not in ("trained", "init"):
            raise UserError("weights must be 'trained' or 'init'")
        depth = self.zoo.default_depth() if depth in (None, "") else check_depth(depth)
        data, info = self.store.lookup("shattered")
        entry = (data or {}).get(f"{weights}{depth}")
        if entry and entry["lines"]:
            lines, notes, source = entry["lines"], entry["notes"], info
        else:  # nothing stored: compute it live
            lines, notes = self._live_lines(depth, weights)
            source = "computed live"
        if not lines:
            raise UserError("Neither model is shipped at this depth; choose weights 'init'.")
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
            raise UserError(f"sign must be one of {list(faithfulness.SIGNS)}")
        data, info = self._stored("faithfulness")
        pairs = self.stored_depths("faithfulness")
        depth = self.opening_depth("faithfulness") if depth in (None, "") else check_depth(depth)
        if depth not in pairs:
            raise UserError(f"No faithfulness study is stored for depth {depth}; stored: {pairs or 'none'}")
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
            raise UserError(f"source must be one of {list(SOURCES)}")
        data, info = self._stored("robustness")
        entry = data.get(source)
        if not entry:
            raise UserError(f"No {SOURCES[source]} study is stored (its files were not found when the study was "
                            f"computed); the choices are {self.sources()}.")
        pairs = self.stored_depths("robustness", source)
        depth = self.opening_depth("robustness", source) if depth in (None, "") else check_depth(depth)
        if depth not in pairs:
            raise UserError(f"No corruption study is stored for depth {depth}; stored: {pairs or 'none'}")
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
                 robustness_text.DELTA, data.get("official_note", "") if data.get("official") else "", info,
                 self._missing(entry["nets"])]
        return heat, per_depth, table, "\n\n".join(n for n in notes if n)

    def vgg_vs_resnet(self, channels=64):
        try:
            channels = int(channels)
        except (TypeError, ValueError, OverflowError):
            channels = 0
        if not 1 <= channels <= 1024:
            raise UserError("channels must be between 1 and 1024")
        data, _ = self.store.lookup("vgg_vs_resnet")
        rows = data["table"] if data else arch_cost.table()
        stack = [arch_cost.stack_vs_single(k, channels) for k in range(1, 6)]
        return cost.imagenet_figure(rows), cost.stack_figure(stack), [[r["arch"], r["params"], r["macs"]] for r in rows]
