"""The app's classify (every shipped pair) and Integrated Gradients against Gradio's own floor, measured
in the same run on this machine.

    python -m bench.floor [--requests 30] [--json OUT.json]

The floor is a separate minimal Gradio app started here (not an endpoint of the product): one event
that takes the same inputs as classify (the uploaded photo and two model names) and returns a string
at once, on the same queue settings. What any Gradio request costs here (upload, queue, SSE, the
client) is in it; what classify costs beyond it is the product's. For each shipped pair, classify
through gradio_client: p50 and p95 of --requests calls after one warm call, and p50 as a ratio to
the floor's p50; then explain with Integrated Gradients (50 steps, the page's default) on the
deepest pair, p50 of 5. Both apps run as users start them, one after the other, on a quiet machine
(anything else running skews both). Goals (issue 42): the deepest pair's classify at most 1.4x the
floor, IG on it within 3 s. Prints a Markdown table; --json writes the numbers.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.app_latency import IMAGE, ROOT, free_port, start_app, stop, wait_warm
from core.engine import checkpoints, models
from core.serving.lab import EXPLAIN

FLOOR_APP = """
import gradio as gr
with gr.Blocks() as demo:
    image, plain, residual = gr.Image(type="filepath"), gr.Textbox(), gr.Textbox()
    out = gr.Textbox()
    gr.Button().click(lambda i, p, r: "ok", [image, plain, residual], out, api_name="floor", preprocess=False)
demo.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""
GOALS = {"classify_ratio": 1.4, "ig_s": 3.0}


def timed(client, args, api_name, n) -> list[float]:
    client.predict(*args, api_name=api_name)  # one warm call
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.predict(*args, api_name=api_name)
        out.append(1000 * (time.perf_counter() - t))
    return out


def summary(ms: list[float]) -> dict:
    q = statistics.quantiles(ms, n=20) if len(ms) > 1 else ms * 19
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(q[18], 1), "n": len(ms)}


def floor(n: int) -> dict:
    from gradio_client import Client, handle_file
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "import sys\n" + FLOOR_APP, str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        url, t0 = f"http://127.0.0.1:{port}/", time.perf_counter()
        while True:
            try:
                client = Client(url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise RuntimeError("the floor app did not start") from None
                time.sleep(0.2)
        return summary(timed(client, (handle_file(IMAGE), "plain20", "resnet20"), "/floor", n))
    finally:
        stop(proc)


def product(n: int, log: Path) -> dict:
    from gradio_client import Client, handle_file
    proc, url, _, _ = start_app({}, log=log)
    try:
        wait_warm(ROOT, log)
        client = Client(url, verbose=False)
        shipped = {f.name for f in checkpoints.list_folders()}
        pairs = [d for d in models.DEPTHS if set(models.pair(d)) <= shipped]
        out = {f"classify {d}": summary(timed(client, (handle_file(IMAGE), *models.pair(d)), "/classify", n))
               for d in pairs}
        if pairs:
            args = (handle_file(IMAGE), *models.pair(pairs[-1]), "Integrated Gradients", *list(EXPLAIN.values())[1:])
            out[f"explain IG 50 steps {pairs[-1]}"] = summary(timed(client, args, "/explain", 5))
        return out
    finally:
        stop(proc)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    base = floor(a.requests)
    rows = product(a.requests, Path(os.environ.get("TMPDIR", "/tmp")) / "bench-floor-app.log")
    for r in rows.values():
        r["ratio_to_floor"] = round(r["p50_ms"] / base["p50_ms"], 2)
    print(f"| request | p50 ms | p95 ms | p50 / floor |\n|---|---|---|---|\n"
          f"| floor (a no-op Gradio app) | {base['p50_ms']} | {base['p95_ms']} | 1.00 |")
    for name, r in rows.items():
        print(f"| {name} | {r['p50_ms']} | {r['p95_ms']} | {r['ratio_to_floor']:.2f} |")
    if a.json:
        a.json.write_text(json.dumps({"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                                      "date": time.strftime("%Y-%m-%d"), "goals": GOALS, "floor": base,
                                      "app": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
