"""The dashboard's page: five tabs on the uploaded image, each also a public API (gradio_client):
classify, explain (and its faithfulness scores of every method), corrupt, architecture,
gradient_flow (their service: core.serving.lab and core.serving.corrupt); then the research tabs of
research_tabs.py (results, curves, layer_responses, lesion, landscape, shattered,
faithfulness_study, robustness, vgg_vs_resnet). Layout and wiring only: every handler is a service
method passed through handlers.reply (the service's UserError becomes Gradio's error), runs on one
worker thread (core.serving.worker), and writes its output files whole (core.serving.files); the
page's own text is text.py's, and page.py's script keeps each figure at its component's width.
"""
import gradio as gr

from core.engine import corruptions, models
from core.engine.data import CLASSES
from core.research import attribution
from core.serving import images, robustness_text
from core.serving.corrupt import CONTROLS as CORRUPT
from core.serving.corrupt import MAX_SEED, Corrupt
from core.serving.lab import BN_MODES, EXPLAIN, FLOW, PLAIN, RESIDUAL, Lab, examples
from core.serving.worker import Worker
from core.serving.zoo import Zoo
from core.settings import Settings
from core.ui import page, text
from core.ui.handlers import reply
from core.ui.research_tabs import research_tabs

MAX_FILE_SIZE = images.MAX_BYTES


try:  # on Hugging Face ZeroGPU hardware, request a GPU slot per call; elsewhere a no-op
    from spaces import GPU as _gpu  # type: ignore
except ImportError:
    def _gpu(fn):
        return fn


def _choices(zoo: Zoo, names):
    return [(f"{n}" + ("" if zoo.untrained_mode() or n in zoo.shipped() else " (no checkpoint yet)"), n)
            for n in names]


def build(settings: Settings) -> tuple[gr.Blocks, Lab]:
    """The whole dashboard over the checkpoints of `settings`, and its image handlers. Every handler
    that runs a model runs on the Lab's one worker thread; output files go to Gradio's cache."""
    zoo = Zoo(settings)
    attribution.import_captum()  # before the worker can import it beside Gradio's own matplotlib import
    lab = Lab(zoo, gr.utils.get_upload_folder(), Worker(), uploads=gr.utils.get_upload_folder())

    def on_worker(fn):
        return _gpu(reply(lab.worker.wrap(fn)))
    with gr.Blocks(title="ResNet lab") as demo:
        gr.Markdown("# ResNet lab: why skip connections matter\nPlain vs residual CIFAR-10 networks of He et al., "
                    "*Deep Residual Learning for Image Recognition* (CVPR 2016).")
        gr.Markdown(text.banner(zoo.shipped()), elem_id="banner")
        with gr.Tabs(overflow_behavior="wrap", elem_id="groups"):
            with gr.Tab(text.GROUPS[0], elem_id="explore"):
                _explore(zoo, lab, on_worker, zoo.default_depth())
            with gr.Tab(text.GROUPS[1], elem_id="evidence") as evidence:
                research_tabs(zoo, lab.worker, lab.files, evidence)
        demo.load(None, js=page.FIT_PLOTS, api_visibility="private", queue=False)  # figures follow their width
        demo.load(None, js=page.PIXELATED, api_visibility="private", queue=False)  # 32x32 images drawn as pixels
    return demo, lab


def _about(key: str):
    """A tab's introduction (what to look at) and its longer explanation, folded."""
    gr.Markdown(text.INTRO[key])
    with gr.Accordion("About this view", open=False):
        gr.Markdown(text.ABOUT[key])


def _explore(zoo: Zoo, lab: Lab, on_worker, d: int):
    """The image tabs: one upload, one pair of models, five views of them."""
    plain_d, residual_d = models.pair(d)
    shown = examples()
    with gr.Row():
        image = gr.Image(type="filepath", label="Image (any size; the nets see 32×32)", height=260,
                         sources=["upload", "clipboard"], elem_id="upload")
        with gr.Column():
            depth = gr.Radio(list(models.DEPTHS), value=d, label="Depth (sets both models)")
            plain = gr.Dropdown(_choices(zoo, PLAIN), value=plain_d, label="Plain model")
            residual = gr.Dropdown(_choices(zoo, RESIDUAL), value=residual_d, label="Residual model")
    if shown:
        gr.Examples(shown, inputs=image, examples_per_page=16)
    depth.input(lambda v: models.pair(int(v)), depth, [plain, residual], api_visibility="private",
                queue=False)
    with gr.Tabs(overflow_behavior="wrap"):
        with gr.Tab("Classify"):
            _about("classify")
            go = gr.Button("Classify", variant="primary", elem_id="classify-btn")
            with gr.Row():
                seen = gr.Image(label="What the nets see (32×32)", height=140, interactive=False)
                lab_p = gr.Label(num_top_classes=5, label="Plain", elem_id="label-plain")
                lab_r = gr.Label(num_top_classes=5, label="Residual", elem_id="label-residual")
            info = gr.Markdown(elem_id="classify-info")
            go.click(on_worker(lab.classify), [image, plain, residual], [lab_p, lab_r, seen, info], api_name="classify",
                     preprocess=False, concurrency_id="models")
        with gr.Tab("Explain"):
            _about("explain")
            with gr.Row():
                method = gr.Dropdown(list(attribution.METHODS), value=EXPLAIN["method"], label="Method")
                target = gr.Dropdown(["predicted", *CLASSES], value=EXPLAIN["target"], label="Target class")
                display = gr.Radio(list(attribution.DISPLAYS), value=EXPLAIN["display"], label="Display")
                sign = gr.Radio(list(attribution.SIGNS), value=EXPLAIN["sign"], label="Sign")
            with gr.Accordion("Method parameters", open=False):
                lim = attribution.LIMITS
                with gr.Row():
                    ig_steps = gr.Slider(*lim["ig_steps"], value=EXPLAIN["ig_steps"], step=1, label="IG steps")
                    nt_samples = gr.Slider(*lim["nt_samples"], value=EXPLAIN["nt_samples"], step=1,
                                           label="SmoothGrad samples")
                    nt_stdev = gr.Slider(*lim["nt_stdev"], value=EXPLAIN["nt_stdev"], step=0.05,
                                         label="SmoothGrad noise (std)")
                    occ = gr.Slider(*lim["occlusion_window"], value=EXPLAIN["occlusion_window"], step=1,
                                    label="Occlusion window (px)")
                    stage = gr.Dropdown(list(attribution.STAGES), value=EXPLAIN["stage"], label="Grad-CAM stage")
            run = gr.Button("Explain", variant="primary", elem_id="explain-btn")
            with gr.Row():
                att_p = gr.Image(label="Plain (what it saw, 32×32)", height=260, elem_id="attr-plain")
                photo_p = gr.Image(label="Plain, on your photo (the square: what the nets saw)", height=260,
                                   elem_id="photo-plain")
            with gr.Row():
                att_r = gr.Image(label="Residual (what it saw, 32×32)", height=260, elem_id="attr-residual")
                photo_r = gr.Image(label="Residual, on your photo (the square: what the nets saw)", height=260,
                                   elem_id="photo-residual")
            att_info = gr.Markdown(elem_id="explain-info")
            curves = gr.Plot(label="Deletion and insertion curves", show_label=False, elem_id="faith-curves")
            controls = [method, target, display, sign, ig_steps, nt_samples, nt_stdev, occ, stage]
            run.click(on_worker(lab.explain), [image, plain, residual, *controls],
                      [att_p, att_r, att_info, photo_p, photo_r, curves], api_name="explain",
                      preprocess=False, concurrency_id="models")
            gr.Markdown(text.FAITHFULNESS_DEFINITION)
            with gr.Row():
                metrics = gr.Checkbox(value=False, label="also Captum's infidelity and sensitivity (slower)")
                score = gr.Button("Score every method", variant="primary", elem_id="faith-btn")
            faith_plot = gr.Plot(label="Every method, both nets", show_label=False, elem_id="faith-methods")
            faith_table = gr.Dataframe(headers=text.FAITH_HEADERS, label="Every method, both nets",
                                       elem_id="faith-live-table")
            faith_info = gr.Markdown(elem_id="faith-info")
            score.click(on_worker(lab.faithfulness), [image, plain, residual, target, sign, metrics, ig_steps,
                                                      nt_samples, nt_stdev, occ, stage],
                        [faith_plot, faith_table, faith_info], api_name="faithfulness", preprocess=False,
                        concurrency_id="models")
        with gr.Tab("Corrupt"):
            _about("corrupt")
            with gr.Row():
                corruption = gr.Dropdown([(c.title, c.name) for c in corruptions.CORRUPTIONS.values()],
                                         value=CORRUPT["corruption"], label="Corruption")
                severity = gr.Slider(1, 5, value=CORRUPT["severity"], step=1, label="Severity (CIFAR-10-C's levels)")
                seed = gr.Number(value=CORRUPT["seed"], precision=0, minimum=0, maximum=MAX_SEED,
                                 label="Seed (noise and elastic)")
            corrupt_btn = gr.Button("Corrupt", variant="primary", elem_id="corrupt-btn")
            with gr.Row():
                corrupted = gr.Image(label="Corrupted: what the nets see (32×32)", height=160, interactive=False,
                                     elem_id="corrupt-seen")
                cor_p = gr.Label(num_top_classes=5, label="Plain", elem_id="corrupt-plain")
                cor_r = gr.Label(num_top_classes=5, label="Residual", elem_id="corrupt-residual")
            cor_plot = gr.Plot(label="Confidence across severities", show_label=False, elem_id="corrupt-plot")
            cor_info = gr.Markdown(elem_id="corrupt-info")
            with gr.Accordion("The corruptions and their levels", open=False):
                gr.Markdown(robustness_text.levels_markdown())
            corrupt = Corrupt(lab)
            cor_in, cor_out = [image, plain, residual, corruption, severity, seed], [corrupted, cor_p, cor_r, cor_plot,
                                                                                    cor_info]
            corrupt_btn.click(on_worker(corrupt.corrupt), cor_in, cor_out, api_name="corrupt", preprocess=False,
                              concurrency_id="models")
            for control in (severity.release, corruption.input, seed.submit):  # a control moved: re-run on the upload
                control(on_worker(corrupt.on_change), cor_in, cor_out, api_visibility="private", preprocess=False,
                        concurrency_id="models")
        with gr.Tab("Architecture"):
            _about("architecture")
            gr.Markdown(text.BLOCK_DIAGRAM)
            show = gr.Button("Show architecture", variant="primary", elem_id="arch-btn")
            # the figures' own titles say what each shows: no label floating over them
            arch = gr.Plot(label="Per block: output shape, parameters, FLOPs", show_label=False, elem_id="arch-plot")
            with gr.Row():
                fm_p = gr.Plot(label="Plain: feature maps", show_label=False)
                fm_r = gr.Plot(label="Residual: feature maps", show_label=False)
            arch_info = gr.Markdown(elem_id="arch-info")
            show.click(on_worker(lab.architecture), [image, plain, residual], [arch, fm_p, fm_r, arch_info],
                       api_name="architecture", preprocess=False, concurrency_id="models")
        with gr.Tab("Gradient flow"):
            _about("gradient_flow")
            with gr.Row():
                src = gr.Radio(["test batch", "uploaded image"], value=FLOW["source"], label="Input")
                weights = gr.Radio(["init", "trained"], value=FLOW["weights"], label="Weights")
                gdepth = gr.Radio(list(models.DEPTHS), value=FLOW["depth"], label="Depth")
                bn = gr.Radio(list(BN_MODES), value=FLOW["bn"], label="BN statistics (batch: as in training)")
            flow_btn = gr.Button("Compute gradient flow", variant="primary", elem_id="flow-btn")
            flow_conv = gr.Plot(label="Conv weights", show_label=False, elem_id="flow-plot")
            flow_blocks = gr.Plot(label="Block outputs", show_label=False)
            flow_info = gr.Markdown(elem_id="flow-info")
            flow_btn.click(on_worker(lab.gradient_flow), [image, src, weights, gdepth, bn], [flow_conv, flow_blocks, flow_info],
                           api_name="gradient_flow", preprocess=False, concurrency_id="models")
