"""The image tabs' service (classify, explain, faithfulness, architecture, gradient_flow) and the
warm-up; the Corrupt tab's is core/serving/corrupt.py. core/ui/dashboard.py wires each to its tab.

Lab(zoo, files, worker, uploads) holds them over one Zoo. Uploads are read only from `uploads` (the
server's upload folder) or the shipped examples. Output images are returned as paths that
core.serving.files wrote whole into `files` (Gradio's cache folder), never as PIL images or arrays
for Gradio to write (see core/serving/files.py for the race that avoids). The page sends each
handler to `worker`, the one thread that runs the server's torch work (core/serving/worker.py says
why). A request the user can fix raises UserError, with a message that says what to do.

Lab.warm_up(...) queues classify, explain (each method) and architecture once with the page's
defaults as background work on the worker, after the page is served: the first visitor then does
not pay the first-call costs (model loading, first backward pass, kernel set-up). Requests go
before it; each step is logged.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import torch

from core.engine import introspection, models
from core.engine.data import CLASSES
from core.figures import dashboard as figures
from core.figures import faithfulness as faithfulness_fig
from core.research import attribution, faithfulness
from core.serving import files, images, overlay
from core.serving import notes as text
from core.serving.reply import UserError
from core.serving.research import check_depth
from core.serving.worker import BACKGROUND, Worker
from core.serving.zoo import Zoo, inputs
from core.serving.zoo import classify as run_classify

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "assets" / "examples"
BN_MODES = {"batch": "train", "running": "eval"}  # BN statistics: of the batch (as in training), or stored
PLAIN = [n for n in models.list_models() if models.get_spec(n).kind == "plain"]
RESIDUAL = [n for n in models.list_models() if models.get_spec(n).kind == "residual"]
# the page's defaults: app.py builds its controls from these, and the warm-up calls explain with EXPLAIN
EXPLAIN = {"method": "Integrated Gradients", "target": "predicted", "display": "blend", "sign": "absolute",
           "ig_steps": 50, "nt_samples": 16, "nt_stdev": 0.15, "occlusion_window": 8, "stage": "layer3"}
FLOW = {"source": "test batch", "weights": "init", "depth": 110, "bn": "batch"}
log = logging.getLogger("resnet_lab")


def examples() -> list[str]:
    """The shipped example images, sorted."""
    return sorted(str(p) for p in EXAMPLES.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _source(payload, uploads: Path | None) -> Path:
    """The uploaded file's path, only from the upload folder or the shipped examples."""
    if payload is None:
        raise UserError("Upload an image first, or pick one of the examples.")
    raw = payload.get("path") if isinstance(payload, dict) else payload
    if not isinstance(raw, str) or not raw:
        raise UserError("That upload could not be read; upload the image again.")
    path = Path(raw).resolve()
    allowed = [EXAMPLES.resolve()] + ([Path(uploads).resolve()] if uploads is not None else [])
    if not any(path.is_relative_to(a) for a in allowed) or not path.is_file():
        raise UserError("That file is not an upload of this session; upload the image again.")
    return path


def check_pair(plain: str, residual: str):
    if not isinstance(plain, str) or not isinstance(residual, str) or plain not in PLAIN or residual not in RESIDUAL:
        raise UserError(f"Pick a plain model from {PLAIN} and a residual one from {RESIDUAL}.")


class Spans:
    """Named durations (ms) of one request, logged at DEBUG as one line: `spans ENDPOINT {json}`
    (bench/app_latency.py reads them; $RESNET_LAB_LOG=debug turns them on)."""

    def __init__(self, endpoint: str):
        self.endpoint, self.ms, self.t0 = endpoint, {}, time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + 1000 * (time.perf_counter() - t)

    def log(self):
        if log.isEnabledFor(logging.DEBUG):
            total = {"handler": 1000 * (time.perf_counter() - self.t0)}
            log.debug("spans %s %s", self.endpoint, json.dumps({k: round(v, 2) for k, v in {**self.ms, **total}.items()}))


class Lab:
    """The four image tabs' handlers over one Zoo; output images are written under `files`."""

    def __init__(self, zoo: Zoo, files_dir, worker: Worker, uploads=None):
        self.zoo, self.files, self.worker = zoo, Path(files_dir), worker
        self.uploads = None if uploads is None else Path(uploads)

    def load(self, payload):
        """images.load of the upload: what the nets see (3 x 32 x 32 uint8) and its 32 x 32 picture."""
        try:
            return images.load(_source(payload, self.uploads))
        except images.ImageError as e:
            raise UserError(str(e)) from None

    def load_photo(self, payload):
        """images.load_photo of the upload: what the nets see, and a display copy with the crop square."""
        try:
            return images.load_photo(_source(payload, self.uploads))
        except images.ImageError as e:
            raise UserError(str(e)) from None

    def _pair(self, plain, residual, notes: list, weights: str = "trained"):
        """(name, Served or None) for the pair; an unavailable model adds its reason to `notes`."""
        for name, served, why in self.zoo.pair(plain, residual, weights):
            if served is None:
                notes.append(text.unavailable(name, why))
            yield name, served

    def each(self, plain, residual, notes: list, fn) -> list:
        """[fn(name, served) for both models of the pair], None for one that is unavailable."""
        return [None if served is None else fn(name, served) for name, served in self._pair(plain, residual, notes)]

    def classify(self, image, plain, residual):
        check_pair(plain, residual)
        spans = Spans("classify")
        with spans("decode"):
            arr, small = self.load(image)
        notes = []

        def one(name, served):
            probs, sec = run_classify(served, arr)
            spans.ms[f"model {served.spec.kind}"] = 1000 * sec
            notes.append(f"{text.describe(served)}; {1000 * sec:.1f} ms")
            return probs
        labels = self.each(plain, residual, notes, one)
        with spans("write"):
            seen = files.publish_png(small.resize((128, 128), 0), self.files, "seen.png")
        spans.log()
        return labels[0], labels[1], seen, "\n\n".join(notes)

    @staticmethod
    def _explain_args(plain, residual, methods, target, display, sign, **sliders) -> dict:
        """{method: its attribution parameters} for each of `methods`, every control checked first (a
        UserError names the bad one)."""
        check_pair(plain, residual)
        if display not in attribution.DISPLAYS or sign not in attribution.SIGNS:
            raise UserError(f"display must be one of {attribution.DISPLAYS}; sign one of {attribution.SIGNS}")
        if target != "predicted" and target not in CLASSES:
            raise UserError(f"target must be 'predicted' or one of {', '.join(CLASSES)}")
        try:
            return {m: attribution.check_params(m, **sliders) for m in methods}
        except attribution.AttributionError as e:
            raise UserError(str(e)) from None

    @staticmethod
    def _target(served, arr, target) -> tuple[str, float]:
        """The class to explain (the net's prediction, or `target`) and the net's probability of it."""
        probs, _ = run_classify(served, arr)
        cls = max(probs, key=probs.get) if target == "predicted" else target
        return cls, probs[cls]

    def explain(self, image, plain, residual, method, target, display, sign, ig_steps, nt_samples, nt_stdev,
                occlusion_window, stage):
        params = self._explain_args(plain, residual, [method], target, display, sign, ig_steps=ig_steps,
                                    nt_samples=nt_samples, nt_stdev=nt_stdev, occlusion_window=occlusion_window,
                                    stage=stage)[method]
        arr, _, photo, box = self.load_photo(image)
        notes, curves = [], {}

        def one(name, served):
            cls, p = self._target(served, arr, target)
            x = inputs(served, arr)
            attr, sec = attribution.attribute(served.model, x, method, CLASSES.index(cls), **params)
            t = time.perf_counter()
            curves[name] = {**faithfulness.score(served.model, x, CLASSES.index(cls), {method: attr}, sign),
                            "kind": served.spec.kind}
            notes.append(text.explain_note(name, method, cls, p, sec, curves[name]["curves"], time.perf_counter() - t))
            slug = method.lower().replace(" ", "-")
            return (files.publish_png(attribution.render(attr, arr.transpose(1, 2, 0), display, sign), self.files, f"{slug}.png"),
                    files.publish_png(overlay.on_photo(attr, photo, box, sign), self.files, f"{slug}-photo.png"))
        pics = [p or (None, None) for p in self.each(plain, residual, notes, one)]
        return (pics[0][0], pics[1][0], "\n\n".join(notes), pics[0][1], pics[1][1],  # the first three as before
                faithfulness_fig.curves_figure(curves, method))

    def faithfulness(self, image, plain, residual, target, sign, metrics, ig_steps, nt_samples, nt_stdev,
                     occlusion_window, stage):
        """Every method's deletion and insertion AUC on the upload, for both nets (and Captum's
        infidelity and sensitivity if `metrics`): the methods x nets chart, a table, notes."""
        sliders = dict(ig_steps=ig_steps, nt_samples=nt_samples, nt_stdev=nt_stdev,
                       occlusion_window=occlusion_window, stage=stage)
        self._explain_args(plain, residual, attribution.METHODS, target, "blend", sign, **sliders)  # before any work
        if not isinstance(metrics, bool):
            raise UserError("metrics must be true or false")
        arr, _ = self.load(image)
        notes, rows, table = [], {}, []

        def one(name, served):
            cls, p = self._target(served, arr, target)
            x, idx = inputs(served, arr), CLASSES.index(cls)
            t = time.perf_counter()
            maps, seconds = faithfulness.attribute_all(served.model, x, idx, list(attribution.METHODS), sliders)
            res = faithfulness.score(served.model, x, idx, maps, sign)
            rows[name] = {"kind": served.spec.kind, **faithfulness.one_image(res["curves"])}
            for m, c in res["curves"].items():
                extra = faithfulness.captum_metrics(served.model, x, idx, m, maps[m], sliders) \
                    if metrics and m in maps else {}
                table.append([m, name, round(c["deletion_auc"], 3), round(c["insertion_auc"], 3),
                              *(round(extra[k], 3) if extra else None for k in ("infidelity", "sensitivity")),
                              round(1000 * seconds[m]) if m in seconds else None])
            notes.append(f"`{name}`: every method for **{cls}** (p = {p:.2f}) in {time.perf_counter() - t:.1f} s")
        self.each(plain, residual, notes, one)
        return faithfulness_fig.methods_figure(rows, "Faithfulness of each method on this image"), table, "\n\n".join(notes)

    def architecture(self, image, plain, residual):
        """The pair's per-block figure; each net's feature maps of the upload (None without an upload,
        or for an unavailable model); notes naming each unavailable model and why."""
        check_pair(plain, residual)
        rows = {n: introspection.architecture(models.build(n)) for n in (plain, residual)}
        arr = self.load(image)[0] if image is not None else None
        notes = []

        def maps(name, served):
            if arr is None:
                return None
            fm = introspection.feature_maps(served.model, inputs(served, arr))
            return figures.feature_map_figure(fm, title=f"{name}: feature maps of the uploaded image")
        fm_p, fm_r = self.each(plain, residual, notes, maps)
        kind = {n: models.get_spec(n).kind for n in rows}
        return figures.architecture_figure(rows, kind), fm_p, fm_r, "\n\n".join(notes)

    def gradient_flow(self, image, source, weights, depth, bn="batch"):
        if source not in ("uploaded image", "test batch") or weights not in ("trained", "init"):
            raise UserError("source must be 'uploaded image' or 'test batch'; weights 'trained' or 'init'")
        if not isinstance(bn, str) or bn not in BN_MODES:
            raise UserError(f"bn must be one of {list(BN_MODES)}")
        depth = check_depth(depth)
        arr = self.load(image)[0] if source == "uploaded image" else None
        flows, by_name, notes = {}, {}, []
        for _, served in self._pair(*models.pair(depth), notes, weights):
            if served is None:
                continue
            if arr is None:
                x_u8, y = self.zoo.test_sample()
            else:  # the model's own prediction as the label
                probs, _ = run_classify(served, arr)
                x_u8, y = arr[None], [CLASSES.index(max(probs, key=probs.get))]
            flow = introspection.gradient_flow(served.model, inputs(served, x_u8), torch.as_tensor(y),
                                               bn_mode=BN_MODES[bn])
            flows[served.label] = by_name[served.name] = {**flow, "kind": served.spec.kind}
        if not flows:
            raise UserError("Neither model is available with trained weights at this depth; choose weights 'init'.")
        notes += text.flow_notes(by_name)
        settings = f", depth {depth}<br>{weights} weights, {source},<br>{bn} BN statistics"  # lines that fit a phone
        return (figures.gradient_flow_figure(flows, "conv", "Conv weight gradients" + settings),
                figures.gradient_flow_figure(flows, "blocks", "Block output gradients" + settings), "\n\n".join(notes))

    def warm_up(self, plain: str, residual: str, image: str | None):
        """Queue classify, explain with each attribution method (the page's other defaults) and
        architecture once, with `image` (an example) as the upload, as background work on the
        worker, one job per step, each logged. Nothing waits for it. (Gradient flow has no
        first-call cost to speak of: bench/app_latency.py.)"""
        if image is None:
            log.info("warm-up: skipped, no example image to send")
            return
        upload = {"path": image}
        steps = [("classify", lambda: self.classify(upload, plain, residual))]
        steps += [(f"explain {m}", lambda m=m: self.explain(upload, plain, residual, **{**EXPLAIN, "method": m}))
                  for m in attribution.METHODS]
        steps.append(("architecture", lambda: self.architecture(upload, plain, residual)))
        t0 = time.perf_counter()
        log.info("warm-up: %d steps for %s + %s queued (requests go first)", len(steps), plain, residual)

        def step(i, name, fn):
            t = time.perf_counter()
            try:
                fn()
                log.info("warm-up: %s in %.0f ms", name, 1000 * (time.perf_counter() - t))
            except Exception as e:  # logged; the page works without it
                log.warning("warm-up: %s failed: %s", name, e)
            if i == len(steps) - 1:
                log.info("warm-up: done in %.1f s", time.perf_counter() - t0)
        for i, (name, fn) in enumerate(steps):
            self.worker.submit(step, i, name, fn, priority=BACKGROUND)
