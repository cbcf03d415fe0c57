"""The research tabs of the dashboard (wiring only): the paper's evidence and the work that followed.

Results (Table 6), Training curves (Fig. 6), Layer responses (Fig. 7), Lesions (Veit et al. 2016),
Loss landscape (Li et al. 2018), Shattered gradients (Balduzzi et al. 2017), VGG vs ResNet (Sec. 3.3).
Each is a public endpoint: results, curves, layer_responses, lesion, landscape, shattered,
vgg_vs_resnet. Heavy views read assets/research/ (research.precompute, stamped by checkpoint sha256);
the rest compute live on the shipped test sample. Every view says which models it is missing.
"""
import tempfile

import gradio as gr
import torch

from research import store as cache, arch_cost as imagenet, landscape, lesion, shattered, study
from figures import cost as figures_arch, probes as figures_probes, study as figures_study
from serving import zoo
from engine.data import normalize

DEPTHS = [20, 32, 44, 56, 110]
LINE_IMAGES = 32  # test-sample images for the live 1-D landscape (13 points: ~0.4 s per 20-layer net)
TEXT = {
    "results": "The paper's Table 6 beside ours. A deeper net that is worse on the **training** set too "
               "shows degradation (the plain nets, Fig. 6); one that is better on training but worse on "
               "test is overfitting (the paper's ResNet-1202). Errors are single-view, in %.",
    "curves": "The paper's Fig. 6 from our histories: training error (dashed) and test error (solid) against "
              "iterations, plain nets left, ResNets right. The lr drops at 32k and 48k iterations are the steps.",
    "layer_responses": "The paper's Fig. 7: the standard deviation of each 3×3 layer's output (after BN, before "
                       "ReLU or addition) over the 10,000 test images. The paper found residual responses "
                       "generally smaller than plain ones: residual functions are closer to zero.",
    "lesion": "Veit et al. (2016): delete one block and a ResNet barely notices, because its paths form an "
              "ensemble of shallower nets; a plain net has one path, and breaks.",
    "landscape": "Li et al. (2018): the loss along random filter-normalised directions around the trained "
                 "weights. Skip connections keep the surface smooth and convex-looking; without them deep nets "
                 "turn chaotic. The 1-D line is computed live on 32 test images; the 2-D grid was precomputed "
                 "on 500 training images.",
    "shattered": "Balduzzi et al. (2017): along a straight line between two images, the derivative of a logit. "
                 "In deep plain nets it decorrelates towards white noise (autocorrelation collapses); residual "
                 "nets keep it correlated.",
    "vgg_vs_resnet": "Why ResNet is cheaper than VGG, and why 3×3: the paper's 34-layer nets need 3.6 G "
                     "multiply-adds, 18% of VGG-19's 19.6 G. Two stacked 3×3 layers see 5×5 with 18C² "
                     "parameters against 25C² for one 5×5 layer, and add a nonlinearity.",
}


def check_depth(value) -> int:
    """A depth from the UI or an API call (int, whole float or digits), or a gr.Error."""
    try:
        depth = int(value) if float(value) == int(float(value)) else None
    except (TypeError, ValueError, OverflowError):
        depth = None
    if depth not in DEPTHS:
        raise gr.Error(f"depth must be one of {DEPTHS}, not {value!r}")
    return depth


def _missing(view_models) -> str:
    shipped = set(zoo.shipped())
    want = [f"{k}{d}" for d in DEPTHS for k in ("plain", "resnet")]
    miss = [n for n in want if n not in shipped and n not in view_models]
    return f"Not shipped yet (missing from this view): {', '.join(miss)}." if miss else ""


def _cached(view):
    data = cache.load(view)
    return data, cache.info(view)


def results():
    df = study.results_table()
    path = tempfile.NamedTemporaryFile(suffix="-results.csv", delete=False).name
    df.to_csv(path, index=False)
    return df.round(3), study.diagnosis_text(df) + "\n\n" + _missing(list(df["model"])), path


def curves(log_y=False):
    data = study.curves()
    return figures_study.curves_figure(data, log_y=bool(log_y)), _missing(list(data))


def layer_responses(sorted_=False):
    data, info = _cached("layer_responses")
    if not data:
        raise gr.Error(f"No current layer-response data: {info}")
    return figures_study.layer_responses_figure(data, sorted_=bool(sorted_)), info + "\n\n" + _missing(list(data))


def lesion_view():
    data, info = _cached("lesion")
    if not data:
        raise gr.Error(f"No current lesion data: {info}")
    return (figures_probes.lesion_figure(data), figures_probes.random_lesion_figure(data),
            lesion.DEFINITION + "\n\n" + info + "\n\n" + _missing(list(data)))


def _pair():
    trained = set(zoo.shipped())
    both = [d for d in DEPTHS if {f"plain{d}", f"resnet{d}"} <= trained]
    return (f"plain{both[-1]}", f"resnet{both[-1]}") if both else None


def landscape_view(kind="contour"):
    if kind not in ("contour", "surface"):
        raise gr.Error("kind must be 'contour' or 'surface'")
    pair = _pair()
    if pair is None:
        raise gr.Error("The landscape needs a trained plain/residual pair; none is shipped yet.")
    x_u8, y = zoo.test_sample()
    x_u8, y = x_u8[:LINE_IMAGES], y[:LINE_IMAGES]
    lines = {}
    for name in pair:
        try:
            served = zoo.get(name)
        except zoo.ModelUnavailable as e:
            raise gr.Error(str(e)) from None
        lines[name] = landscape.line(served.model, normalize(torch.as_tensor(x_u8), served.normalization),
                                     torch.as_tensor(y), [i / 6 - 1 for i in range(13)])
    data, info = _cached("landscape")
    surf = figures_arch.landscape_surface_figure(data, kind=kind) if data else None
    return figures_arch.landscape_line_figure(lines), surf, info


def shattered_view(weights="trained", depth=20):
    if weights not in ("trained", "init"):
        raise gr.Error("weights must be 'trained' or 'init'")
    depth = check_depth(depth)
    data, info = _cached("shattered")
    entry = (data or {}).get(f"{weights}{depth}")
    entry = entry if entry and entry["lines"] else None  # nothing stored: compute it live
    lines, notes = (entry["lines"], entry["notes"]) if entry else shattered.pair(depth, weights)
    if not lines:
        raise gr.Error("Neither model is shipped at this depth; choose weights 'init'.")
    notes = notes + [f"`{k}`: autocorrelation at lag 1 **{v['autocorr'][1]:.2f}**, lag 5 {v['autocorr'][5]:.2f}"
                     for k, v in lines.items()]
    return figures_probes.shattered_figure(lines), "\n\n".join(notes + [info if entry else "computed live"])


def vgg_vs_resnet(channels=64):
    try:
        channels = int(channels)
    except (TypeError, ValueError, OverflowError):
        channels = 0
    if not 1 <= channels <= 1024:
        raise gr.Error("channels must be between 1 and 1024")
    data, info = _cached("vgg_vs_resnet")
    rows = data["table"] if data else imagenet.table()
    stack = [imagenet.stack_vs_single(k, int(channels)) for k in range(1, 6)]
    return figures_arch.imagenet_figure(rows), figures_arch.stack_figure(stack), [[r["arch"], r["params"],
                                                                                 r["macs"]] for r in rows]


def research_tabs():
    """Add the research tabs to the gr.Blocks being built."""
    with gr.Tab("Results"):
        gr.Markdown(TEXT["results"])
        b = gr.Button("Show results", variant="primary", elem_id="results-btn")
        table = gr.Dataframe(label="Shipped checkpoints", elem_id="results-table")
        diag = gr.Markdown()
        csv = gr.File(label="Download as CSV")
        b.click(results, None, [table, diag, csv], api_name="results", concurrency_id="models")
    with gr.Tab("Training curves"):
        gr.Markdown(TEXT["curves"])
        log_y = gr.Checkbox(label="log y axis")
        b = gr.Button("Show curves", variant="primary", elem_id="curves-btn")
        plot, note = gr.Plot(elem_id="curves-plot"), gr.Markdown()
        b.click(curves, log_y, [plot, note], api_name="curves", concurrency_id="models")
    with gr.Tab("Layer responses"):
        gr.Markdown(TEXT["layer_responses"])
        srt = gr.Checkbox(label="sorted by magnitude (Fig. 7 bottom)")
        b = gr.Button("Show layer responses", variant="primary", elem_id="responses-btn")
        plot, note = gr.Plot(elem_id="responses-plot"), gr.Markdown()
        b.click(layer_responses, srt, [plot, note], api_name="layer_responses", concurrency_id="models")
    with gr.Tab("Lesions"):
        gr.Markdown(TEXT["lesion"])
        b = gr.Button("Show lesion study", variant="primary", elem_id="lesion-btn")
        p1, p2, note = gr.Plot(elem_id="lesion-plot"), gr.Plot(), gr.Markdown()
        b.click(lesion_view, None, [p1, p2, note], api_name="lesion", concurrency_id="models")
    with gr.Tab("Loss landscape"):
        gr.Markdown(TEXT["landscape"])
        kind = gr.Radio(["contour", "surface"], value="contour", label="2-D view")
        b = gr.Button("Show landscape", variant="primary", elem_id="landscape-btn")
        p1, p2, note = gr.Plot(elem_id="landscape-plot"), gr.Plot(), gr.Markdown()
        b.click(landscape_view, kind, [p1, p2, note], api_name="landscape", concurrency_id="models")
    with gr.Tab("Shattered gradients"):
        gr.Markdown(TEXT["shattered"])
        with gr.Row():
            w = gr.Radio(["trained", "init"], value="trained", label="Weights")
            d = gr.Radio(DEPTHS, value=20, label="Depth")
        b = gr.Button("Show gradients", variant="primary", elem_id="shattered-btn")
        plot, note = gr.Plot(elem_id="shattered-plot"), gr.Markdown()
        b.click(shattered_view, [w, d], [plot, note], api_name="shattered", concurrency_id="models")
    with gr.Tab("VGG vs ResNet"):
        gr.Markdown(TEXT["vgg_vs_resnet"])
        ch = gr.Slider(1, 1024, value=64, step=1, label="Channels C (for the 3×3 stack calculator)")
        b = gr.Button("Compare", variant="primary", elem_id="vgg-btn")
        p1, p2 = gr.Plot(elem_id="vgg-plot"), gr.Plot()
        tab = gr.Dataframe(headers=["arch", "params", "multiply-adds"])
        b.click(vgg_vs_resnet, ch, [p1, p2, tab], api_name="vgg_vs_resnet", concurrency_id="models")
