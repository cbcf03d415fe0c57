"""The benchmarks' tables in docs/measurements.md, made from their JSON under bench/results/.

Each function takes file names (relative to bench/results/) and returns a Markdown table; tools/docs.py
writes it between `<!-- KEY FILE... -->` and `<!-- /KEY -->`. A "before" file is the same bench run
against an older checkout (`--root`), shown beside the "after" one.
"""
from __future__ import annotations

import json

from core.engine import corruptions
from core.settings import PROJECT

# The speed targets the latency issue set: for the bench's in-process rows (by its label), for cold
# start to the page served, and for classify end to end (p50, through gradio_client).
LATENCY_TARGETS = {
    "classify plain110 + resnet110, model time (BN folded: the app)": "≤ 20 ms",
    "Grad-CAM on resnet110": "≤ 30 ms",
    "Saliency on resnet110": "≤ 50 ms",
    "Integrated Gradients on resnet110 (50 steps)": "≤ 0.75 s",
}
SERVED_TARGET, CLASSIFY_P50_TARGET = "≤ 10 s", "≤ 150 ms"
# The rows of the classify profile: the bench's key, and its label ("· " marks a span inside the handler call).
PROFILE = [("p50", "p50"), ("p95", "p95"), ("upload", "upload"), ("queue wait", "queue wait"),
           ("Gradio preprocess", "Gradio preprocess"), ("handler call", "handler call"),
           ("worker wait", "· wait for the worker thread"), ("decode", "· decode and crop to 32×32"),
           ("model plain", "· model, plain"), ("model residual", "· model, residual"), ("write", "· PNG write"),
           ("Gradio postprocess", "Gradio postprocess"), ("client and transport", "client and transport")]


def _read(name: str) -> dict:
    return json.loads((PROJECT / "bench" / "results" / name).read_text())


def _header(*cells: str) -> list[str]:
    return ["| " + " | ".join(cells) + " |", "|" + "---|" * len(cells)]


def app_latency(after: str) -> str:
    """python -m bench.app_latency: model and attribution times in process, cold start, classify's p50."""
    d = _read(after)
    rows = [(k, v, LATENCY_TARGETS.get(k, "")) for k, v in d["in process"].items()]
    for pair, p in d["classify"].items():
        rows += [(f"process start to page served ({pair})", f"{p['serve_s']:.1f} s", SERVED_TARGET),
                 (f"process start to first classify answered ({pair})", f"{p['first_s']:.1f} s", ""),
                 (f"classify end to end via gradio_client ({pair}), p50", f"{p['p50']:.0f} ms", CLASSIFY_P50_TARGET)]
    return "\n".join(_header("measurement", "result", "target") + [f"| {k} | {v} | {t} |" for k, v, t in rows])


def app_profile(before: str, after: str) -> str:
    """python -m bench.app_latency: classify's spans in ms, before and after, for each pair profiled."""
    old, new = _read(before)["classify"], _read(after)["classify"]
    pairs = list(new)
    lines = _header("classify end to end, ms", *(f"{p} {when}" for p in pairs for when in ("before", "after")))

    def ms(profile: dict, key: str) -> str:
        return f"{profile[key]:.1f}" if key in profile else ""

    for key, label in PROFILE:
        lines.append(f"| {label} | " + " | ".join(f"{ms(old.get(p, {}), key)} | {ms(new[p], key)}" for p in pairs) + " |")
    return "\n".join(lines)


def first_clicks(before: str, after: str) -> str:
    """python -m bench.app_latency: the first call of each kind against the median of 5 more, in ms."""
    old, new = _read(before)["first clicks"], _read(after)["first clicks"]
    lines = _header("first call of its kind", "before: first / warm", "ratio", "after: first / warm", "ratio")

    def cell(pair) -> str:
        return f"{pair[0]:.0f} / {pair[1]:.0f} ms | {pair[0] / pair[1]:.2f}" if pair else " | "

    lines += [f"| {kind} | {cell(old.get(kind))} | {cell(first)} |" for kind, first in new.items()]
    return "\n".join(lines)


def load(before: str, after: str) -> str:
    """python -m bench.load: each scenario's throughput, latency per event and the server's memory peak."""
    old = {(r["pair"], r["scenario"], r["users"]): r for r in _read(before)["rows"]}
    events = ("classify", "explain", "architecture")
    lines = _header("pair", "scenario", "users", "requests", "failures (before)", "req/s (before)",
                    *(f"{e} p50 / p95" for e in events), "server peak RSS (before)")
    for r in _read(after)["rows"]:
        o = old.get((r["pair"], r["scenario"], r["users"]), {})
        users = f"{r['users']} (idle)" if r["users"] == 1 else str(r["users"])
        times = " | ".join(f"{r[e]['p50']:.2f} / {r[e]['p95']:.2f} s" for e in events)
        lines.append(f"| {r['pair']} | {r['scenario']} | {users} | {r['requests']} | {len(r['failures'])} "
                     f"({len(o['failures']) if o else '—'}) | {r['req_per_s']:.1f} ({o.get('req_per_s', float('nan')):.1f}) "
                     f"| {times} | {r['peak_rss_mib']:.0f} ({o.get('peak_rss_mib', float('nan')):.0f}) MiB |")
    return "\n".join(lines)


def gpu_probe(name: str) -> str:
    """tools/probe.py's first GPU probe: img/s per model and compile mode, single process."""
    runs = _read(name)["runs"]
    modes = list(dict.fromkeys(r["mode"] for r in runs))
    rate = {(r["model"], r["mode"]): r["img_per_s"] for r in runs}
    lines = _header("model", *(f"{m} img/s" for m in modes))
    lines += [f"| {m} | " + " | ".join(f"{rate[m, mode]:,.0f}" for mode in modes) + " |"
              for m in dict.fromkeys(r["model"] for r in runs)]
    return "\n".join(lines)


def floor(name: str) -> str:
    """python -m bench.floor: each request's p50 and p95 against Gradio's floor (a no-op app)."""
    d = _read(name)
    lines = _header("request (gradio_client)", "calls", "p50 ms", "p95 ms", "p50 / floor")
    lines.append(f"| floor: a no-op Gradio app, classify's inputs | {d['floor']['n']} | {d['floor']['p50_ms']:.1f} "
                 f"| {d['floor']['p95_ms']:.1f} | 1.00 |")
    lines += [f"| {what} | {r['n']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['ratio_to_floor']:.2f} |"
              for what, r in d["app"].items()]
    return "\n".join(lines)


def corrupt_cost(name: str) -> str:
    """python -m bench.corrupt_cost: ms per corruption, one image and the whole Corrupt click."""
    lines = _header("corruption", "one 32×32 image, severity 3", "the click, depth 20", "the click, depth 110")
    lines += [f"| {corruptions.CORRUPTIONS[r['corruption']].title} | {r['one_ms']:.2f} | {r['click_20_ms']:.0f} "
              f"| {r['click_110_ms']:.0f} |" for r in _read(name)["rows"]]
    return "\n".join(lines)


def faithfulness_cost(name: str) -> str:
    """python -m bench.faithfulness_cost: per method and net, attribution + curves / Captum's metrics, in ms."""
    rows = _read(name)["rows"]
    nets = list(dict.fromkeys(r["model"] for r in rows))
    cell = {(r["method"], r["model"]): r for r in rows}
    lines = _header("method", *nets)
    for method in dict.fromkeys(r["method"] for r in rows if "attribution_ms" in r):
        lines.append(f"| {method} | " + " | ".join(
            "{attribution_ms:.0f} + {curves_ms:.0f} / {metrics_ms:.0f}".format(**cell[method, n]) for n in nets) + " |")
    lines.append("| Score every method (no Captum metrics) | " + " | ".join(
        f"{cell['(every method)', n]['score_every_method_ms']:.0f}" for n in nets) + " |")
    return "\n".join(lines)


TABLES = {"bench-app-latency": app_latency, "bench-app-profile": app_profile, "bench-first-clicks": first_clicks,
          "bench-load": load, "bench-gpu-probe": gpu_probe, "bench-floor": floor, "bench-corrupt-cost": corrupt_cost,
          "bench-faithfulness-cost": faithfulness_cost}
