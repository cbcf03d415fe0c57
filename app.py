"""ResNet lab: plain vs residual CIFAR-10 nets side by side (He et al., CVPR 2016, Sec. 4.2).

    python app.py        # http://127.0.0.1:7860 (a Hugging Face Space runs this file as it is)

Four tabs on the uploaded image, each also a public API (gradio_client): classify, explain,
architecture, gradient_flow; then the research tabs of ui/research_tabs.py (results, curves,
layer_responses, lesion, landscape, shattered, vgg_vs_resnet).
This file only wires: images are decoded by serving.images, models served by serving.zoo,
attributions by serving.attribution, analysis by engine.introspection, plots by figures/, text by
ui/text.py. Importing it does no work: `python app.py` builds and launches the demo, and `app.demo`
(what `gradio app.py` and Spaces tooling look up) builds it on first access. Nothing touches the
network; models load on first use.
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home at start

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from engine import introspection, models  # noqa: E402
from engine.data import CLASSES  # noqa: E402
from engine.settings import Settings, set_threads  # noqa: E402
from figures import dashboard as figures  # noqa: E402
from serving import attribution, images  # noqa: E402
from serving.zoo import Zoo, classify as run_classify, inputs  # noqa: E402
from ui import text  # noqa: E402
from ui.research_tabs import check_depth, research_tabs  # noqa: E402

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "assets" / "examples"
BN_MODES = {"batch": "train", "running": "eval"}  # BN statistics: of the batch (as in training), or stored
PLAIN = [n for n in models.list_models() if models.get_spec(n).kind == "plain"]
RESIDUAL = [n for n in models.list_models() if models.get_spec(n).kind == "residual"]
MAX_FILE_SIZE = images.MAX_BYTES


try:  # on Hugging Face ZeroGPU hardware, request a GPU slot per call; elsewhere a no-op
    from spaces import GPU as _gpu  # type: ignore  # noqa: E402
except ImportError:
    def _gpu(fn):
        return fn


def _source(payload) -> Path:
    """The uploaded file's path, only from Gradio's upload cache or the shipped examples."""
    if payload is None:
        raise gr.Error("Upload an image first, or pick one of the examples.")
    raw = payload.get("path") if isinstance(payload, dict) else payload
    if not isinstance(raw, str) or not raw:
        raise gr.Error("That upload could not be read; upload the image again.")
    path = Path(raw).resolve()
    allowed = [Path(gr.utils.get_upload_folder()).resolve(), EXAMPLES.resolve()]
    if not any(path.is_relative_to(a) for a in allowed) or not path.is_file():
        raise gr.Error("That file is not an upload of this session; upload the image again.")
    return path


def _load(payload):
    try:
        return images.load(_source(payload))
    except images.ImageError as e:
        raise gr.Error(str(e)) from None


def _check_pair(plain: str, residual: str):
    if not isinstance(plain, str) or not isinstance(residual, str) or plain not in PLAIN or residual not in RESIDUAL:
        raise gr.Error(f"Pick a plain model from {PLAIN} and a residual one from {RESIDUAL}.")


class Lab:
    """The four image tabs' handlers over one Zoo."""

    def __init__(self, zoo: Zoo):
        self.zoo = zoo

    def _pair(self, plain, residual, notes: list, weights: str = "trained"):
        """(name, Served or None) for the pair; an unavailable model adds its reason to `notes`."""
        for name, served, why in self.zoo.pair(plain, residual, weights):
            if served is None:
                notes.append(text.unavailable(name, why))
            yield name, served

    def _each(self, plain, residual, notes: list, fn) -> list:
        """[fn(name, served) for both models of the pair], None for one that is unavailable."""
        return [None if served is None else fn(name, served) for name, served in self._pair(plain, residual, notes)]

    def classify(self, image, plain, residual):
        _check_pair(plain, residual)
        arr, small = _load(image)
        notes = []

        def one(name, served):
            probs, sec = run_classify(served, arr)
            notes.append(f"{text.describe(served)}; {1000 * sec:.1f} ms")
            return probs
        labels = self._each(plain, residual, notes, one)
        return labels[0], labels[1], small.resize((128, 128), 0), "\n\n".join(notes)

    def explain(self, image, plain, residual, method, target, display, sign, ig_steps, nt_samples, nt_stdev,
                occlusion_window, stage):
        _check_pair(plain, residual)
        if display not in attribution.DISPLAYS or sign not in attribution.SIGNS:
            raise gr.Error(f"display must be one of {attribution.DISPLAYS}; sign one of {attribution.SIGNS}")
        if target != "predicted" and target not in CLASSES:
            raise gr.Error(f"target must be 'predicted' or one of {', '.join(CLASSES)}")
        try:
            params = attribution.check_params(method, ig_steps=ig_steps, nt_samples=nt_samples, nt_stdev=nt_stdev,
                                              occlusion_window=occlusion_window, stage=stage)
        except attribution.AttributionError as e:
            raise gr.Error(str(e)) from None
        arr, _ = _load(image)
        notes = []

        def one(name, served):
            probs, _ = run_classify(served, arr)
            cls = max(probs, key=probs.get) if target == "predicted" else target
            attr, sec = attribution.attribute(served.model, inputs(served, arr), method, CLASSES.index(cls), **params)
            notes.append(f"`{name}`: {method} for **{cls}** (p = {probs[cls]:.2f}) in {1000 * sec:.0f} ms")
            return attribution.render(attr, arr.transpose(1, 2, 0), display, sign)
        pics = self._each(plain, residual, notes, one)
        return pics[0], pics[1], "\n\n".join(notes)

    def architecture(self, image, plain, residual):
        _check_pair(plain, residual)
        rows = {n: introspection.architecture(models.build(n)) for n in (plain, residual)}
        arr = _load(image)[0] if image is not None else None
        maps = []
        for name, served, _ in self.zoo.pair(plain, residual):
            if arr is None or served is None:
                maps.append(None)
                continue
            fm = introspection.feature_maps(served.model, inputs(served, arr))
            maps.append(figures.feature_map_figure(fm, title=f"{name}: feature maps of the uploaded image"))
        kind = {n: models.get_spec(n).kind for n in rows}
        return figures.architecture_figure(rows, kind), maps[0], maps[1]

    def gradient_flow(self, image, source, weights, depth, bn="batch"):
        if source not in ("uploaded image", "test batch") or weights not in ("trained", "init"):
            raise gr.Error("source must be 'uploaded image' or 'test batch'; weights 'trained' or 'init'")
        if not isinstance(bn, str) or bn not in BN_MODES:
            raise gr.Error(f"bn must be one of {list(BN_MODES)}")
        depth = check_depth(depth)
        arr = _load(image)[0] if source == "uploaded image" else None
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
            raise gr.Error("Neither model is available with trained weights at this depth; choose weights 'init'.")
        notes += text.flow_notes(by_name)
        title = f"Gradient norms, depth {depth}, {weights} weights, {source}, {bn} BN statistics"
        return (figures.gradient_flow_figure(flows, "conv", title + " (conv weights)"),
                figures.gradient_flow_figure(flows, "blocks", title + " (block outputs)"), "\n\n".join(notes))


def default_depth(zoo: Zoo) -> int:
    """56 (the paper's headline pair) unless trained pairs are shipped and 56 is not among them:
    then the deepest shipped pair."""
    pair = models.deepest_pair(zoo.shipped())
    if pair is None or set(models.pair(56)) <= set(zoo.shipped()):
        return 56
    return models.get_spec(pair[0]).depth


def _choices(zoo: Zoo, names):
    return [(f"{n}" + ("" if zoo.untrained_mode() or n in zoo.shipped() else " (no checkpoint yet)"), n)
            for n in names]


def build_demo(settings: Settings) -> gr.Blocks:
    """The whole dashboard over the checkpoints of `settings`."""
    zoo = Zoo(settings)
    lab = Lab(zoo)
    d = default_depth(zoo)
    plain_d, residual_d = models.pair(d)
    examples = sorted(str(p) for p in EXAMPLES.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with gr.Blocks(title="ResNet lab") as demo:
        gr.Markdown("# ResNet lab: why skip connections matter\nPlain vs residual CIFAR-10 networks of He et al., "
                    "*Deep Residual Learning for Image Recognition* (CVPR 2016), on the same image.")
        gr.Markdown(text.banner(zoo.shipped()), elem_id="banner")
        with gr.Row():
            image = gr.Image(type="filepath", label="Image (any size; the nets see 32×32)", height=260,
                             sources=["upload", "clipboard"], elem_id="upload")
            with gr.Column():
                depth = gr.Radio(list(models.DEPTHS), value=d, label="Depth (sets both models)")
                plain = gr.Dropdown(_choices(zoo, PLAIN), value=plain_d, label="Plain model")
                residual = gr.Dropdown(_choices(zoo, RESIDUAL), value=residual_d, label="Residual model")
        if examples:
            gr.Examples(examples, inputs=image, examples_per_page=16)
        depth.input(lambda v: models.pair(int(v)), depth, [plain, residual], api_visibility="private",
                    queue=False)
        with gr.Tab("Classify"):
            gr.Markdown(text.INTRO["classify"])
            go = gr.Button("Classify", variant="primary", elem_id="classify-btn")
            with gr.Row():
                seen = gr.Image(label="What the nets see (32×32)", height=140, interactive=False)
                lab_p = gr.Label(num_top_classes=5, label="Plain", elem_id="label-plain")
                lab_r = gr.Label(num_top_classes=5, label="Residual", elem_id="label-residual")
            info = gr.Markdown(elem_id="classify-info")
            go.click(_gpu(lab.classify), [image, plain, residual], [lab_p, lab_r, seen, info], api_name="classify",
                     preprocess=False, concurrency_id="models")
        with gr.Tab("Explain"):
            gr.Markdown(text.INTRO["explain"])
            with gr.Row():
                method = gr.Dropdown(list(attribution.METHODS), value="Integrated Gradients", label="Method")
                target = gr.Dropdown(["predicted", *CLASSES], value="predicted", label="Target class")
                display = gr.Radio(list(attribution.DISPLAYS), value="blend", label="Display")
                sign = gr.Radio(list(attribution.SIGNS), value="absolute", label="Sign")
            with gr.Accordion("Method parameters", open=False):
                lim = attribution.LIMITS
                with gr.Row():
                    ig_steps = gr.Slider(*lim["ig_steps"], value=50, step=1, label="IG steps")
                    nt_samples = gr.Slider(*lim["nt_samples"], value=16, step=1, label="SmoothGrad samples")
                    nt_stdev = gr.Slider(*lim["nt_stdev"], value=0.15, step=0.05, label="SmoothGrad noise (std)")
                    occ = gr.Slider(*lim["occlusion_window"], value=8, step=1, label="Occlusion window (px)")
                    stage = gr.Dropdown(list(attribution.STAGES), value="layer3", label="Grad-CAM stage")
            run = gr.Button("Explain", variant="primary", elem_id="explain-btn")
            with gr.Row():
                att_p = gr.Image(label="Plain", height=260, elem_id="attr-plain")
                att_r = gr.Image(label="Residual", height=260, elem_id="attr-residual")
            att_info = gr.Markdown(elem_id="explain-info")
            run.click(_gpu(lab.explain), [image, plain, residual, method, target, display, sign, ig_steps, nt_samples,
                                nt_stdev, occ, stage], [att_p, att_r, att_info], api_name="explain",
                      preprocess=False, concurrency_id="models")
        with gr.Tab("Architecture"):
            gr.Markdown(text.INTRO["architecture"])
            gr.Markdown(text.BLOCK_DIAGRAM)
            show = gr.Button("Show architecture", variant="primary", elem_id="arch-btn")
            arch = gr.Plot(label="Per block: output shape, parameters, FLOPs", elem_id="arch-plot")
            with gr.Row():
                fm_p = gr.Plot(label="Plain: feature maps")
                fm_r = gr.Plot(label="Residual: feature maps")
            show.click(_gpu(lab.architecture), [image, plain, residual], [arch, fm_p, fm_r], api_name="architecture",
                       preprocess=False, concurrency_id="models")
        with gr.Tab("Gradient flow"):
            gr.Markdown(text.INTRO["gradient_flow"])
            with gr.Row():
                src = gr.Radio(["test batch", "uploaded image"], value="test batch", label="Input")
                weights = gr.Radio(["init", "trained"], value="init", label="Weights")
                gdepth = gr.Radio(list(models.DEPTHS), value=110, label="Depth")
                bn = gr.Radio(list(BN_MODES), value="batch", label="BN statistics (batch: as in training)")
            flow_btn = gr.Button("Compute gradient flow", variant="primary", elem_id="flow-btn")
            flow_conv = gr.Plot(label="Conv weights", elem_id="flow-plot")
            flow_blocks = gr.Plot(label="Block outputs")
            flow_info = gr.Markdown(elem_id="flow-info")
            flow_btn.click(_gpu(lab.gradient_flow), [image, src, weights, gdepth, bn], [flow_conv, flow_blocks, flow_info],
                           api_name="gradient_flow", preprocess=False, concurrency_id="models")
        research_tabs(zoo)
    return demo


def serve_address() -> tuple[str, int]:
    """Where to listen: $GRADIO_SERVER_NAME, else all interfaces on a Hugging Face Space ($SPACE_ID) and
    localhost anywhere else (nothing public by default); port $PORT, else $GRADIO_SERVER_PORT, else 7860."""
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    return host, int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)


def queue_size() -> int:
    """Waiting requests the queue holds ($RESNET_LAB_QUEUE, default 64); past it: "queue is full"."""
    return int(os.environ.get("RESNET_LAB_QUEUE") or 64)


def from_env() -> gr.Blocks:
    """The demo as the environment asks for it, with torch's threads set to the CPU quota (and
    denormals flushed) first."""
    settings = Settings.from_env()
    set_threads(settings.threads)
    return build_demo(settings)


def __getattr__(name):  # `app.demo`: built on first access (PEP 562), so importing app does no work
    if name == "demo":
        globals()["demo"] = from_env()
        return globals()["demo"]
    raise AttributeError(f"module 'app' has no attribute {name!r}")


if __name__ == "__main__":
    host, port = serve_address()
    from_env().queue(max_size=queue_size(), default_concurrency_limit=1).launch(
        server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE, show_error=False)
