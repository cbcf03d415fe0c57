"""ResNet lab: plain vs residual CIFAR-10 nets side by side (He et al., CVPR 2016, Sec. 4.2).

    python app.py        # http://127.0.0.1:7860 (a Hugging Face Space runs this file as it is)

Wiring only: the settings come from the environment (core/settings.py), the page from
core/ui/dashboard.py, and the launch from core/ui/launch.py. Importing this file does no work:
`python app.py` builds and launches the demo, then warms the default pair up in the background
(logged; $RESNET_LAB_LOG sets the level), and `app.demo` (what `gradio app.py` and Spaces tooling
look up) builds it on first access, without the warm-up. Nothing touches the network; models load
on first use.
"""
from core.settings import Settings, SettingsError, quiet_gradio

quiet_gradio()  # before gradio is imported: no calls home

from core.ui.launch import configure_logging, from_settings, serve  # noqa: E402


def __getattr__(name):  # `app.demo`: built on first access (PEP 562), so importing app does no work
    if name == "demo":
        globals()["demo"] = from_settings(Settings.from_env())[0]
        return globals()["demo"]
    raise AttributeError(f"module 'app' has no attribute {name!r}")


def main():
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        raise SystemExit(str(e)) from None
    configure_logging(settings.log_level)
    serve(*from_settings(settings), settings)


if __name__ == "__main__":
    main()
