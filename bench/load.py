"""Load: concurrent gradio_client users against `python app.py`, in two scenarios, idle and busy.

    python -m bench.load [--pairs 20 110] [--users 1 20] [--requests 6] [--json OUT.json] [--root CHECKOUT]

Scenarios, each in a fresh app, for each pair (20: the shipped checkpoints; 110: an empty checkpoint
folder, i.e. untrained mode, the same compute) and each user count (1: idle; 20: busy):
- same: every user sends the same example image to classify, explain (the page's defaults:
  Integrated Gradients, 50 steps) and architecture in turn, as the visitors of a Space who click
  the same example. This is the burst that broke Gradio's shared output files (tests/test_load.py).
- mixed: each request takes a random example image, and explain a random method with the page's
  other parameters; each user goes round the endpoints from a different one.
Every user has its own client and download folder and downloads every output file. Idle runs
send at least 15 requests. Before the users start, one untimed call per endpoint loads the pair
(first-call costs are bench/app_latency.py's part).
Reports failures, p50/p95 latency per endpoint, throughput and the server's peak resident memory
(VmHWM from /proc, over the whole launch). Requests queue: model events run one at a time on the
app's worker thread, so under 20 users latency is mostly waiting. Users start once the app's
logged warm-up is done. --root runs another checkout's app.py (`git worktree add /tmp/old REV`):
the "before" of a change. Numbers go in docs/measurements.md.
"""
import argparse
import json
import random
import tempfile
import threading
import time
from pathlib import Path

from bench.app_latency import EXPLAIN, METHODS, start_app, stop, wait_warm

ROOT = Path(__file__).resolve().parent.parent

ENDPOINTS = ("classify", "explain", "architecture")


def user(url, pair, scenario, n, seed, images, out, folder):
    from gradio_client import Client, handle_file
    rng = random.Random(seed)
    client = Client(url, verbose=False, download_files=str(folder))
    for i in range(n):
        if scenario == "same":
            image, endpoint, method = images[0], ENDPOINTS[i % 3], EXPLAIN[0]
        else:
            image, endpoint, method = rng.choice(images), ENDPOINTS[(i + seed) % 3], rng.choice(METHODS)
        extra = (method, *EXPLAIN[1:]) if endpoint == "explain" else ()
        t = time.perf_counter()
        try:
            client.predict(handle_file(str(image)), *pair, *extra, api_name=f"/{endpoint}")
            out.append((endpoint, time.perf_counter() - t, None))
        except Exception as e:  # counted, never hidden
            out.append((endpoint, time.perf_counter() - t, f"{type(e).__name__}: {e}"[:200]))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))] if values else float("nan")


def run(url, pair, scenario, users, requests, images, tmp):
    out = []
    threads = [threading.Thread(target=user, args=(url, pair, scenario, requests, s, images, out,
                                                   Path(tmp) / f"{scenario}-{users}-{s}")) for s in range(users)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    res = {"requests": len(out), "wall_s": wall, "req_per_s": len(out) / wall,
           "failures": [o[2] for o in out if o[2]]}
    for kind in (*ENDPOINTS, "all"):
        lat = [o[1] for o in out if not o[2] and kind in ("all", o[0])]
        res[kind] = {"n": len(lat), "p50": pct(lat, 0.5), "p95": pct(lat, 0.95)}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, nargs="+", default=[20, 110])
    ap.add_argument("--users", type=int, nargs="+", default=[1, 20])
    ap.add_argument("--requests", type=int, default=6, help="per user")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py runs (default: this one)")
    args = ap.parse_args()
    images = sorted((ROOT / "assets" / "examples").glob("*.[pj]*g"))
    images.insert(0, ROOT / "assets" / "examples" / "photo_cat.jpg")  # the "same" image
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for depth in args.pairs:
            pair = (f"plain{depth}", f"resnet{depth}")
            env = {} if (ROOT / "checkpoints" / pair[0]).is_dir() else {"RESNET_LAB_CHECKPOINTS": tmp}
            for scenario in ("same", "mixed"):
                log = Path(tmp) / f"{depth}-{scenario}.log"
                proc, url, _, _ = start_app(env, args.root, log)
                try:
                    wait_warm(args.root, log)  # the app's warm-up, done before the first user
                    run(url, pair, "same", 1, 3, images, tmp)  # loads the pair: untimed
                    for users in args.users:
                        n = args.requests if users > 1 else max(args.requests, 15)
                        rows.append({"pair": " + ".join(pair), "scenario": scenario, "users": users,
                                     **run(url, pair, scenario, users, n, images, tmp)})
                    status = Path(f"/proc/{proc.pid}/status").read_text()
                    peak = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM")) / 1024
                    for r in rows[-len(args.users):]:
                        r["peak_rss_mib"], r["alive"] = peak, proc.poll() is None
                finally:
                    stop(proc)
    if args.json:
        args.json.write_text(json.dumps({"root": str(args.root), "requests_per_user": args.requests, "rows": rows},
                                        indent=1) + "\n")
    print(f"{args.requests} requests per user (idle: at least 15); latency p50 / p95 in s\n")
    print("| pair | scenario | users | requests | failures | req/s | classify | explain | architecture | all "
          "| server peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lat = " | ".join(f"{r[k]['p50']:.2f} / {r[k]['p95']:.2f}" for k in (*ENDPOINTS, "all"))
        print(f"| {r['pair']} | {r['scenario']} | {r['users']} | {r['requests']} | {len(r['failures'])} | "
              f"{r['req_per_s']:.1f} | {lat} | {r['peak_rss_mib']:.0f} MiB |")
    for r in rows:
        for f in r["failures"][:5]:
            print("FAILED:", r["pair"], r["scenario"], r["users"], f)


if __name__ == "__main__":
    main()
