"""Latency of the dashboard on this machine: model time, attribution time, cold start, end to end.

    python bench/app_latency.py [--requests 30]

1. Model time to classify one image with plain110 and resnet110 (median of 50), unfolded and with
   BN folded into the convs (what the app runs).
2. Attribution time on resnet110 (median of 5): Grad-CAM (layer3), Saliency, Integrated Gradients
   (50 steps), through serving.attribution, as the Explain tab calls it.
3. Cold start: `python app.py` from process start to the page answering, and to the first
   successful classify through gradio_client (models load lazily, so this includes loading).
4. End to end: --requests classify calls through gradio_client, p50/p95, twice: the shipped pair at
   the deepest depth trained, and plain110 + resnet110 (an empty checkpoint folder: untrained mode,
   the same compute).
Model timings are weight-independent, so fresh He-initialised weights stand in for missing ones.
Prints a Markdown table for the README.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from engine import models  # noqa: E402
from engine.settings import Settings, set_threads  # noqa: E402
from serving import attribution, zoo  # noqa: E402
from tests.support import free_port  # noqa: E402


def median_ms(fn, n):
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * statistics.median(ts)


def start_app(env_extra):
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", **env_extra}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url, t0, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                raise RuntimeError("app.py did not start")
            time.sleep(0.05)


def e2e(url, pair, n, image):
    from gradio_client import Client, handle_file
    c = Client(url, verbose=False)
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        c.predict(handle_file(image), *pair, api_name="/classify")
        ts.append(time.perf_counter() - t)
    ts.sort()
    return 1000 * ts[len(ts) // 2], 1000 * ts[int(0.95 * (len(ts) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=30)
    args = ap.parse_args()
    settings = Settings.from_env()
    threads = set_threads(settings.threads)
    served = zoo.Zoo(settings)
    rows = []
    x_u8 = served.test_sample()[0][0]
    pair = [served.get(n, "init") for n in models.pair(110)]
    xs = [zoo.inputs(s, x_u8) for s in pair]
    with torch.inference_mode():
        rows.append(("classify plain110 + resnet110, model time (BN unfolded)",
                     f"{median_ms(lambda: [s.model(x) for s, x in zip(pair, xs)], 50):.1f} ms"))
        rows.append(("classify plain110 + resnet110, model time (BN folded: the app)",
                     f"{median_ms(lambda: [s.fast(x) for s, x in zip(pair, xs)], 50):.1f} ms"))
    net = pair[1].model
    for method, params in (("Grad-CAM", {"stage": "layer3"}), ("Saliency", {}),
                           ("Integrated Gradients", {"ig_steps": 50})):
        p = attribution.check_params(method, **params)
        ms = median_ms(lambda: attribution.attribute(net, xs[1], method, 3, **p), 5)
        rows.append((f"{method} on resnet110" + (" (50 steps)" if "ig_steps" in params else ""), f"{ms:.0f} ms"))
    image = str(ROOT / "assets" / "examples" / "photo_cat.jpg")
    shipped = models.deepest_pair(served.shipped())
    for label, env, names in ((f"shipped {' + '.join(shipped or ())}", {}, shipped),
                              ("plain110 + resnet110 (untrained mode)", {"RESNET_LAB_CHECKPOINTS": None},
                               models.pair(110))):
        if shipped is None and not env:
            continue
        with tempfile.TemporaryDirectory() as empty:
            env = {k: (v or empty) for k, v in env.items()}
            proc, url, t0, serve_s = start_app(env)
            try:
                from gradio_client import Client, handle_file
                Client(url, verbose=False).predict(handle_file(image), *names, api_name="/classify")
                first_s = time.perf_counter() - t0
                p50, p95 = e2e(url, names, args.requests, image)
            finally:
                proc.terminate()
                proc.wait()
        rows.append((f"cold start to page served ({label})", f"{serve_s:.1f} s"))
        rows.append((f"cold start to first classify answered ({label})", f"{first_s:.1f} s"))
        rows.append((f"classify end to end via gradio_client, {label}: p50 / p95",
                     f"{p50:.0f} / {p95:.0f} ms"))
    print(f"torch {torch.__version__}, {threads} threads (CPU quota), {args.requests} requests per pair\n")
    print("| measurement | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
