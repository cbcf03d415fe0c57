"""ResNet lab: plain vs residual CIFAR-10 nets side by side (He et al., CVPR 2016, Sec. 4.2).

    python app.py        # http://127.0.0.1:7860 (a Hugging Face Space runs this file as it is)

Four tabs on the uploaded image, each also a public API (gradio_client): classify, explain,
architecture, gradient_flow; then the research tabs of app_research.py (results, curves,
layer_responses, lesion, landscape, shattered, vgg_vs_resnet).
This file only wires: images are decoded by serving.images, models served by serving.zoo, attributions
by serving.attribution, analysis by engine.introspection, plots by figures.dashboard. Starts without touching
the network; models load on first use (README: start-up time and latencies, from bench/).
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home at start

from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from ui.research_tabs import check_depth as _depth, research_tabs  # noqa: E402
from serving import attribution, images, zoo
from figures import dashboard as figures
from engine import introspection, models  # noqa: E402
from engine.data import CLASSES  # noqa: E402

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "assets" / "examples"
DEPTHS = [20, 32, 44, 56, 110]
BN_MODES = {"batch": "train", "running": "eval"}  # BN statistics: of the batch (as in training), or stored
PLAIN = [n for n in models.list_models() if n.startswith("plain")]
RESIDUAL = [n for n in models.list_models() if n.startswith("resnet")]
MAX_FILE_SIZE = images.MAX_BYTES
QUEUE_SIZE = int(os.environ.get("RESNET_LAB_QUEUE") or 64)  # waiting requests; past it: "queue is full"
TEXT = {
    "classify": "Both nets have the same layers and the same parameters; the residual one only adds each "
                "block's input to its output, y = F(x) + x. In the paper (Table 6, Fig. 6) that is the "
                "difference between ResNet-56 at 6.97% test error and a plain-56 that is worse than plain-20, "
                "on the training set too: the degradation problem. Each side shows its own measured error.",
    "explain": "Which pixels drive each net's score for the target class. Gradient methods (Saliency, "
               "SmoothGrad, Guided Backprop) are fast and noisy; Integrated Gradients and DeepLift satisfy "
               "completeness (attributions sum to the score change from the mean-colour baseline); Grad-CAM "
               "shows where a stage looks, at that stage's resolution; Occlusion measures it by masking.",
    "architecture": "Three stages of 3×3 convolutions on 32×32, 16×16 and 8×8 maps with 16, 32 and 64 filters: "
                    "each time the map halves the filters double, so every block costs about the same FLOPs. "
                    "Plain and residual twins are identical in shape, parameters and FLOPs; option-A shortcuts "
                    "are parameter-free (option B adds 1×1 projections where the shape changes).",
    "gradient_flow": "The norm of the loss gradient at each conv layer and block output, from the last layer "
                     "back to the first, on a log axis. The identity path carries gradients back unchanged "
                     "(∂(F(x)+x)/∂x = ∂F/∂x + I); a plain net must pass them through every layer. With batch "
                     "statistics, as in training, a fresh deep plain net's gradients do not vanish here: they "
                     "grow by orders of magnitude towards the input, while the ResNet's stay level. That fits "
                     "the paper (Sec. 4.1): its BN plain nets had no vanishing gradients, and it calls "
                     "degradation an optimisation difficulty. Running statistics at init do not normalise, "
                     "so there the ResNet's sums blow up instead.",
}


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


def _served(name: str, weights: str = "trained"):
    """(Served, None) or (None, the reason it is unavailable)."""
    try:
        return zoo.get(name, weights), None
    except zoo.ModelUnavailable as e:
        return None, str(e)


def _both(plain: str, residual: str, notes: list):
    """(name, Served or None) for the pair; an unavailable model adds its reason to `notes`."""
    for name in (plain, residual):
        served, why = _served(name)
        if served is None:
            notes.append(f"`{name}`: unavailable. {why}")
        yield name, served


def _check_pair(plain: str, residual: str):
    if not isinstance(plain, str) or not isinstance(residual, str) or plain not in PLAIN or residual not in RESIDUAL:
        raise gr.Error(f"Pick a plain model from {PLAIN} and a residual one from {RESIDUAL}.")


@_gpu
def classify(image, plain, residual):
    _check_pair(plain, residual)
    arr, small = _load(image)
    labels, notes = [], []
    for name, served in _both(plain, residual, notes):
        if served is None:
            labels.append(None)
            continue
        probs, sec = zoo.classify(served, arr)
        labels.append(probs)
        notes.append(f"{served.describe()}; {1000 * sec:.1f} ms")
    return labels[0], labels[1], small.resize((128, 128), 0), "\n\n".join(notes)


@_gpu
def explain(image, plain, residual, method, target, display, sign, ig_steps, nt_samples, nt_stdev,
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
    pics, notes = [], []
    for name, served in _both(plain, residual, notes):
        if served is None:
            pics.append(None)
            continue
        probs, _ = zoo.classify(served, arr)
        cls = max(probs, key=probs.get) if target == "predicted" else target
        attr, sec = attribution.attribute(served.model, zoo.inputs(served, arr), method, CLASSES.index(cls), **params)
        pics.append(attribution.render(attr, arr.transpose(1, 2, 0), display, sign))
        notes.append(f"`{name}`: {method} for **{cls}** (p = {probs[cls]:.2f}) in {1000 * sec:.0f} ms")
    return pics[0], pics[1], "\n\n".join(notes)


@_gpu
def architecture(image, plain, residual):
    _check_pair(plain, residual)
    rows = {n: introspection.architecture(models.build(n)) for n in (plain, residual)}
    arr = _load(image)[0] if image is not None else None
    maps = []
    for name in (plain, residual):
        served, why = _served(name)
        if arr is None or served is None:
            maps.append(None)
            continue
        fm = introspection.feature_maps(served.model, zoo.inputs(served, arr))
        maps.append(figures.feature_map_figure(fm, title=f"{name}: feature maps of the uploaded image"))
    return figures.architecture_figure(rows), maps[0], maps[1]


@_gpu
def gradient_flow(image, source, weights, depth, bn="batch"):
    if source not in ("uploaded image", "test batch") or weights not in ("trained", "init"):
        raise gr.Error("source must be 'uploaded image' or 'test batch'; weights 'trained' or 'init'")
    if not isinstance(bn, str) or bn not in BN_MODES:
        raise gr.Error(f"bn must be one of {list(BN_MODES)}")
    depth = _depth(depth)
    flows, notes = {}, []
    for name in (f"plain{depth}", f"resnet{depth}"):
        served, why = _served(name, weights)
        if served is None:
            notes.append(f"`{name}`: unavailable. {why}")
            continue
        if source == "test batch":
            x_u8, y = zoo.test_sample()
        else:
            arr = _load(image)[0]
            x_u8, y = arr[None], [zoo.classify(served, arr)[0]]
            y = [CLASSES.index(max(y[0], key=y[0].get))]  # the model's own prediction as the label
        flow = introspection.gradient_flow(served.model, zoo.inputs(served, x_u8), torch.as_tensor(y),
                                           bn_mode=BN_MODES[bn])
        flows[f"{name} ({'trained' if served.trained else 'init'})"] = flow
        first = flow["conv"][-1]
        notes.append(f"`{name}`: loss {flow['loss']:.3g}; gradient norm at `{first[0]}` (first conv) "
                     f"{first[1]:.3g}; first/last conv ratio {introspection.early_late_ratio(flow):.3g}")
    if not flows:
        raise gr.Error("Neither model is available with trained weights at this depth; choose weights 'init'.")
    if len(flows) == 2:
        a, b = (list(flows.values())[i]["conv"][-1][1] for i in (0, 1))
        notes.append(f"First-conv gradient, plain / residual: **{a / b:.3g}**")
    title = f"Gradient norms, depth {depth}, {weights} weights, {source}, {bn} BN statistics"
    return (figures.gradient_flow_figure(flows, "conv", title + " (conv weights)"),
            figures.gradient_flow_figure(flows, "blocks", title + " (block outputs)"), "\n\n".join(notes))


def _default_depth() -> int:
    trained = set(zoo.shipped())
    both = [d for d in DEPTHS if {f"plain{d}", f"resnet{d}"} <= trained]
    return 56 if zoo.untrained_mode() or not both or 56 in both else both[-1]


def _choices(names):
    return [(f"{n}" + ("" if zoo.untrained_mode() or n in zoo.shipped() else " (no checkpoint yet)"), n)
            for n in names]


def banner() -> str:
    if zoo.untrained_mode():
        return ("## ⚠ No trained checkpoints found\nEvery model below runs on **freshly initialised "
                "weights**: predictions and attributions are meaningless until checkpoints are added "
                "to `checkpoints/`.")
    return "Trained checkpoints: " + ", ".join(f"`{n}`" for n in zoo.shipped())


def build_demo() -> gr.Blocks:
    d = _default_depth()
    examples = sorted(str(p) for p in EXAMPLES.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with gr.Blocks(title="ResNet lab") as demo:
        gr.Markdown("# ResNet lab: why skip connections matter\nPlain vs residual CIFAR-10 networks of He et al., "
                    "*Deep Residual Learning for Image Recognition* (CVPR 2016), on the same image.")
        gr.Markdown(banner(), elem_id="banner")
        with gr.Row():
            image = gr.Image(type="filepath", label="Image (any size; the nets see 32×32)", height=260,
                             sources=["upload", "clipboard"], elem_id="upload")
            with gr.Column():
                depth = gr.Radio(DEPTHS, value=d, label="Depth (sets both models)")
                plain = gr.Dropdown(_choices(PLAIN), value=f"plain{d}", label="Plain model")
                residual = gr.Dropdown(_choices(RESIDUAL), value=f"resnet{d}", label="Residual model")
        if examples:
            gr.Examples(examples, inputs=image, examples_per_page=16)
        depth.input(lambda v: (f"plain{v}", f"resnet{v}"), depth, [plain, residual], api_visibility="private",
                    queue=False)
        with gr.Tab("Classify"):
            gr.Markdown(TEXT["classify"])
            go = gr.Button("Classify", variant="primary", elem_id="classify-btn")
            with gr.Row():
                seen = gr.Image(label="What the nets see (32×32)", height=140, interactive=False)
                lab_p = gr.Label(num_top_classes=5, label="Plain", elem_id="label-plain")
                lab_r = gr.Label(num_top_classes=5, label="Residual", elem_id="label-residual")
            info = gr.Markdown(elem_id="classify-info")
            go.click(classify, [image, plain, residual], [lab_p, lab_r, seen, info], api_name="classify",
                     preprocess=False, concurrency_id="models")
        with gr.Tab("Explain"):
            gr.Markdown(TEXT["explain"])
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
            run.click(explain, [image, plain, residual, method, target, display, sign, ig_steps, nt_samples,
                                nt_stdev, occ, stage], [att_p, att_r, att_info], api_name="explain",
                      preprocess=False, concurrency_id="models")
        with gr.Tab("Architecture"):
            gr.Markdown(TEXT["architecture"])
            gr.Markdown(BLOCK_DIAGRAM)
            show = gr.Button("Show architecture", variant="primary", elem_id="arch-btn")
            arch = gr.Plot(label="Per block: output shape, parameters, FLOPs", elem_id="arch-plot")
            with gr.Row():
                fm_p = gr.Plot(label="Plain: feature maps")
                fm_r = gr.Plot(label="Residual: feature maps")
            show.click(architecture, [image, plain, residual], [arch, fm_p, fm_r], api_name="architecture",
                       preprocess=False, concurrency_id="models")
        with gr.Tab("Gradient flow"):
            gr.Markdown(TEXT["gradient_flow"])
            with gr.Row():
                src = gr.Radio(["test batch", "uploaded image"], value="test batch", label="Input")
                weights = gr.Radio(["init", "trained"], value="init", label="Weights")
                gdepth = gr.Radio(DEPTHS, value=110, label="Depth")
                bn = gr.Radio(list(BN_MODES), value="batch", label="BN statistics (batch: as in training)")
            flow_btn = gr.Button("Compute gradient flow", variant="primary", elem_id="flow-btn")
            flow_conv = gr.Plot(label="Conv weights", elem_id="flow-plot")
            flow_blocks = gr.Plot(label="Block outputs")
            flow_info = gr.Markdown(elem_id="flow-info")
            flow_btn.click(gradient_flow, [image, src, weights, gdepth, bn], [flow_conv, flow_blocks, flow_info],
                           api_name="gradient_flow", preprocess=False, concurrency_id="models")
        research_tabs()
    return demo


BLOCK_DIAGRAM = """
```
 x ──► conv3×3 ─► BN ─► ReLU ─► conv3×3 ─► BN ──► (+) ─► ReLU ─► y = ReLU(F(x) + x)
 │                                                 ▲
 └───────────── identity shortcut (ResNet only) ───┘     plain net: y = ReLU(F(x))
```"""

zoo.set_threads()  # the real CPU quota, denormals flushed
demo = build_demo()

def serve_address() -> tuple[str, int]:
    """Where to listen: $GRADIO_SERVER_NAME, else all interfaces on a Hugging Face Space ($SPACE_ID) and
    localhost anywhere else (nothing public by default); port $PORT, else $GRADIO_SERVER_PORT, else 7860."""
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    return host, int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)


if __name__ == "__main__":
    host, port = serve_address()
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1).launch(
        server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE, show_error=False)
