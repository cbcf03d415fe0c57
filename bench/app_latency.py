"""Latency of the dashboard on this machine: model time, attribution time, cold start, first clicks
after the warm-up, and classify end to end with a server-side profile.

    python -m bench.app_latency [--requests 30] [--root CHECKOUT] [--json OUT.json]

1. Model time to classify one image with plain110 and resnet110 (median of 50), unfolded and with
   BN folded into the convs (what the app runs); then folded on a second thread while the first
   thread's OpenMP team still exists (what a pool of request threads does), with the CPU quota of
   intra-op threads and with one (what the app's classify uses).
2. Attribution time on resnet110 (median of 5): Grad-CAM (layer3), Saliency, Integrated Gradients
   (50 steps), through core.research.attribution, as the Explain tab calls it.
3. Cold start: `python app.py` from process start to the page answering, and to the first
   successful classify through gradio_client (models load lazily, so this includes loading).
4. First clicks: once the app's log says "warm-up: done" (a checkout without a warm-up: as soon as
   the page is served), the first call of each image endpoint at the page's defaults (classify,
   explain with each method, architecture, gradient_flow) against the median of 5 more; the
   median of each over 3 fresh launches.
5. Classify end to end through gradio_client, --requests calls, p50/p95, for the shipped pair at
   the deepest depth trained and for plain110 + resnet110 (an empty checkpoint folder: untrained
   mode, the same compute), with the median of each server-side span: Gradio's upload, queue wait,
   preprocess, handler call and postprocess ($GRADIO_PROFILING), and inside the handler call (from
   the app's $RESNET_LAB_LOG=debug span lines) the wait for the worker thread, decoding, each
   model (also read from the reply's notes) and the file write. "client and transport" is the
   end-to-end p50 less the server's spans: HTTP, SSE, the download and gradio_client itself.
--root runs another checkout's app.py (`git worktree add /tmp/old REV`) for parts 3-5: the "before"
of a change (spans that checkout does not log are left out). Model timings are weight-independent,
so fresh He-initialised weights stand in for missing ones. Prints Markdown tables for docs/measurements.md.
"""
import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from core.research import attribution
from core.serving.lab import EXPLAIN as PAGE
from core.serving.lab import FLOW

ROOT = Path(__file__).resolve().parent.parent

EXPLAIN = tuple(PAGE.values())  # the page's explain arguments, in the endpoint's order (method first)
METHODS = tuple(attribution.METHODS)
IMAGE = str(ROOT / "assets" / "examples" / "photo_cat.jpg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median_ms(fn, n):
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * statistics.median(ts)


def start_app(env_extra, root=ROOT, log=None):
    """`python app.py` of `root` on a free port (output to `log`, a path, or nowhere); returns
    (process, URL, start time, seconds to the page served)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", **env_extra}
    out = open(log, "w") if log else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url, t0, time.perf_counter() - t0
        except OSError:
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                raise RuntimeError("app.py did not start")
            time.sleep(0.05)


def stop(proc):
    proc.terminate()
    proc.wait()


def in_process_rows():
    import torch

    from core.engine import models
    from core.serving import zoo
    from core.settings import Settings, set_threads
    served = zoo.Zoo(Settings.from_env())
    set_threads(served.settings.threads)
    x_u8 = served.test_sample()[0][0]
    pair = [served.get(n, "init") for n in models.pair(110)]
    xs = [zoo.inputs(s, x_u8) for s in pair]
    rows = []

    def folded(threads=None):
        with torch.inference_mode(), (zoo.one_thread() if threads == 1 else contextlib.nullcontext()):
            return median_ms(lambda: [s.fast(x) for s, x in zip(pair, xs)], 50)
    with torch.inference_mode():
        rows.append(("classify plain110 + resnet110, model time (BN unfolded)",
                     f"{median_ms(lambda: [s.model(x) for s, x in zip(pair, xs)], 50):.1f} ms"))
    rows.append(("classify plain110 + resnet110, model time (BN folded: the app)", f"{folded():.1f} ms"))
    with concurrent.futures.ThreadPoolExecutor(1) as second:  # the main thread's OpenMP team exists now
        rows.append(("the same on a second thread, after the first ran torch work",
                     f"{second.submit(folded).result():.1f} ms"))
        rows.append(("the same on that second thread with one intra-op thread (zoo.one_thread)",
                     f"{second.submit(folded, 1).result():.1f} ms"))
    for method, params in (("Grad-CAM", {"stage": "layer3"}), ("Saliency", {}),
                           ("Integrated Gradients", {"ig_steps": 50})):
        p = attribution.check_params(method, **params)
        ms = median_ms(lambda: attribution.attribute(pair[1].model, xs[1], method, 3, **p), 5)
        rows.append((f"{method} on resnet110" + (" (50 steps)" if "ig_steps" in params else ""), f"{ms:.0f} ms"))
    return rows


def calls(pair):
    """{kind: (args, api_name)} for each image endpoint at the page's defaults."""
    from gradio_client import handle_file
    out = {"classify": ((handle_file(IMAGE), *pair), "/classify")}
    for m in METHODS:
        out[f"explain {m}"] = ((handle_file(IMAGE), *pair, m, *EXPLAIN[1:]), "/explain")
    out["architecture"] = ((handle_file(IMAGE), *pair), "/architecture")
    out["gradient_flow"] = ((None, *FLOW.values()), "/gradient_flow")
    return out


def wait_warm(root, log):
    """Until the app's log says "warm-up: done" (at once for a checkout without a warm-up)."""
    launch = [Path(root) / "app.py", Path(root) / "core" / "ui" / "launch.py"]  # where the warm-up is called
    if not any(p.is_file() and "warm_up" in p.read_text() for p in launch):
        return
    deadline = time.time() + 300
    while "warm-up: done" not in log.read_text():
        if time.time() > deadline:
            raise RuntimeError(f"no warm-up: done in {log}")
        time.sleep(0.1)


def first_clicks(root, pair, tmp, launches=3):
    """{kind: (first ms, warm ms)}: in each of `launches` fresh apps, once the warm-up is done, the
    first call of each kind and the median of 5 more; the medians over the launches (one slow call
    of any kind now and then is not a first-call cost)."""
    from gradio_client import Client
    runs = []
    for i in range(launches):
        log = Path(tmp) / f"first{i}.log"
        proc, url, _, _ = start_app({}, root, log)
        try:
            wait_warm(root, log)
            c = Client(url, verbose=False)
            run = {}
            for kind, (args, api) in calls(pair).items():
                ts = []
                for _ in range(6):
                    t = time.perf_counter()
                    c.predict(*args, api_name=api)
                    ts.append(1000 * (time.perf_counter() - t))
                run[kind] = (ts[0], statistics.median(ts[1:]))
            runs.append(run)
        finally:
            stop(proc)
    return {k: tuple(statistics.median(r[k][j] for r in runs) for j in (0, 1)) for k in runs[0]}


def profile(root, pair, n, env, tmp):
    """Cold start, end-to-end p50/p95 and the median spans of n classify calls."""
    from gradio_client import Client, handle_file
    log = Path(tmp) / "profile.log"
    proc, url, t0, serve_s = start_app({**env, "GRADIO_PROFILING": "1", "RESNET_LAB_LOG": "debug"}, root, log)
    try:
        c = Client(url, verbose=False)
        c.predict(handle_file(IMAGE), *pair, api_name="/classify")
        first_s = time.perf_counter() - t0
        wait_warm(root, log)
        for _ in range(3):
            c.predict(handle_file(IMAGE), *pair, api_name="/classify")
        urllib.request.urlopen(urllib.request.Request(url + "gradio_api/profiling/clear", method="POST"))
        skip = log.read_text().count("spans classify")
        ts, models = [], []
        for _ in range(n):
            t = time.perf_counter()
            r = c.predict(handle_file(IMAGE), *pair, api_name="/classify")
            ts.append(1000 * (time.perf_counter() - t))
            models.append([float(v) for v in re.findall(r"; ([\d.]+) ms", r[3])])
        summary = json.load(urllib.request.urlopen(url + "gradio_api/profiling/summary"))
    finally:
        stop(proc)
    spans = [json.loads(line.split("spans classify ", 1)[1]) for line in log.read_text().splitlines()
             if "spans classify " in line][skip:]
    ts.sort()
    ph = {k: v["p50"] for k, v in summary["phases"].items()}
    med = {k: statistics.median(s[k] for s in spans) for k in (spans[0] if spans else {})}
    out = {"serve_s": serve_s, "first_s": first_s, "p50": ts[len(ts) // 2], "p95": ts[int(0.95 * (len(ts) - 1))],
           "upload": summary.get("upload", {}).get("p50", 0.0), "queue wait": ph["queue_wait"],
           "Gradio preprocess": ph["preprocess"], "handler call": ph["fn_call"],
           "Gradio postprocess": ph["postprocess"]}
    for i, kind in enumerate(("plain", "residual")):
        out[f"model {kind}"] = statistics.median(m[i] for m in models)
    if med:
        out.update({"worker wait": ph["fn_call"] - med["handler"], "decode": med["decode"], "write": med["write"]})
    out["client and transport"] = out["p50"] - out["upload"] - ph["total"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py runs (default: this one)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    import torch

    from core.engine import models
    from core.engine.checkpoints import list_folders
    from core.settings import Settings, cpu_quota
    result = {"torch": torch.__version__, "threads": Settings.from_env().threads or cpu_quota(),
              "root": str(args.root), "requests": args.requests}
    result["in process"] = dict(in_process_rows()) if args.root == ROOT else {}
    shipped = models.deepest_pair([f.name for f in list_folders(Path(args.root) / "checkpoints")])
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as empty:
        result["first clicks"] = first_clicks(args.root, shipped or models.pair(110), tmp)
        result["classify"] = {}
        for label, env, names in ((" + ".join(shipped or ()), {}, shipped),
                                  ("plain110 + resnet110 (untrained mode)", {"RESNET_LAB_CHECKPOINTS": empty},
                                   models.pair(110))):
            if names:
                result["classify"][label] = profile(args.root, names, args.requests, env, tmp)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"torch {result['torch']}, {result['threads']} threads, {args.requests} requests, app of {args.root}\n")
    print("| measurement | result |\n|---|---|")
    for k, v in result["in process"].items():
        print(f"| {k} | {v} |")
    for label, p in result["classify"].items():
        print(f"| cold start to page served ({label}) | {p['serve_s']:.1f} s |")
        print(f"| cold start to first classify answered ({label}) | {p['first_s']:.1f} s |")
    print("\n| classify end to end, ms | " + " | ".join(result["classify"]) + " |")
    print("|---|" + "---|" * len(result["classify"]))
    for key in next(iter(result["classify"].values())):
        if key not in ("serve_s", "first_s"):
            print(f"| {key} | " + " | ".join(f"{p.get(key, float('nan')):.1f}" for p in result["classify"].values())
                  + " |")
    print("\n| first call once the page is served (and warmed up, where the app warms up) | first | warm (median of 5) "
          "| ratio |\n|---|---|---|---|")
    for kind, (first, warm) in result["first clicks"].items():
        print(f"| {kind} | {first:.0f} ms | {warm:.0f} ms | {first / warm:.2f} |")


if __name__ == "__main__":
    main()
