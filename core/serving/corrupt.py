"""The Corrupt tab's service: the upload corrupted at every severity, and both nets' predictions on it.

corrupt(image, plain, residual, corruption, severity, seed) returns the corrupted 32x32 image at
`severity` (an exact PNG, a pure function of the upload, corruption, severity and seed:
core.engine.corruptions), each net's top-5 on it, a chart of each net's probability of its clean-image
class at severities 0 (clean) to 5 (all made with the same seed, so the chart's point at `severity`
is the image shown), and notes. Controls are checked first; a bad one is a UserError naming it.
"""
from __future__ import annotations

import time

import numpy as np

from core.engine import corruptions
from core.figures import robustness as robustness_fig
from core.serving import files
from core.serving import robustness_text as text
from core.serving.lab import Lab, check_pair
from core.serving.reply import KEEP, UserError
from core.serving.zoo import classify as run_classify

CONTROLS = {"corruption": "gaussian_noise", "severity": 3, "seed": 0}  # the page's defaults
MAX_SEED = 2**32 - 1


def check_seed(value) -> int:
    """A seed from the UI or an API call (a whole number in 0..MAX_SEED), or a UserError."""
    try:
        seed = int(value) if not isinstance(value, bool) and float(value) == int(float(value)) else None
    except (TypeError, ValueError, OverflowError):
        seed = None
    if seed is None or not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, not {value!r}")
    return seed


class Corrupt:
    """The Corrupt tab over a Lab's zoo and output folder."""

    def __init__(self, lab: Lab):
        self.lab = lab

    def corrupt(self, image, plain, residual, corruption, severity, seed=0):
        check_pair(plain, residual)
        try:
            corruptions.level(corruption, severity)
        except ValueError as e:
            raise UserError(str(e)) from None
        severity, seed = int(severity), check_seed(seed)
        arr, _ = self.lab.load(image)
        ladder = [arr] + [corruptions.corrupt(arr, corruption, s, seed) for s in corruptions.SEVERITIES]
        notes, chart = [text.level_text(corruption, severity) + f"; seed {seed}"], {}

        def one(name, served):
            t = time.perf_counter()
            probs = [run_classify(served, im)[0] for im in ladder]
            ms = 1000 * (time.perf_counter() - t)
            cls = max(probs[0], key=probs[0].get)
            now = max(probs[severity], key=probs[severity].get)
            chart[name] = {"kind": served.spec.kind, "cls": cls, "p": [p[cls] for p in probs]}
            notes.append(text.corrupt_note(name, (cls, probs[0][cls]), (now, probs[severity][now]),
                                           probs[severity][cls], severity, ms))
            return probs[severity]
        labels = self.lab.each(plain, residual, notes, one)
        title = corruptions.CORRUPTIONS[corruption].title
        seen = files.publish_png(np.ascontiguousarray(ladder[severity].transpose(1, 2, 0)), self.lab.files,
                                 f"{corruption}-{severity}.png")
        fig = robustness_fig.severity_figure(chart, f"{title}: each net's probability of its clean-image class")
        return seen, labels[0], labels[1], fig, "\n\n".join(notes)

    def on_change(self, image, *args):
        """corrupt() when a control moves: nothing (no error) until there is an upload."""
        return (KEEP,) * 5 if image is None else self.corrupt(image, *args)
