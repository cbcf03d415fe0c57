"""PLACEHOLDER: the dashboard (plain vs residual predictions, Captum attributions, feature maps,
gradient flow) is the next issue. This page only says so, and lists the checkpoints it would load.

    python app.py        # http://127.0.0.1:7860

Starts without touching the network: it reads only the local checkpoints/ folder.
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home at start

import gradio as gr  # noqa: E402

from core import checkpoints  # noqa: E402


def shipped_summary() -> str:
    folders = checkpoints.list_folders()
    if not folders:
        return "No checkpoints have been shipped yet: GPU training is a later issue."
    return "Checkpoints found: " + ", ".join(f"`{f.name}`" for f in folders)


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="ResNet lab (placeholder)") as demo:
        gr.Markdown(
            "# ResNet lab: plain vs residual networks on CIFAR-10\n"
            "**Placeholder.** The dashboard of He et al., *Deep Residual Learning for Image "
            "Recognition* (CVPR 2016) lands in the next issue. The engine (`core/`) is here: "
            "models, data, training, checkpoints, evaluation.\n\n" + shipped_summary()
        )
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.launch()
