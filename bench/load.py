"""Load: N concurrent gradio_client users x M requests each against `python app.py`, mixing classify
and explain (Saliency / Grad-CAM / Integrated Gradients 16 steps) on the example images.

    python bench/load.py [--users 20] [--requests 10]

Reports failures, p50/p95 latency per kind and overall, throughput, and the server's peak resident
memory (VmHWM from /proc). Requests queue: the app runs model events one at a time (2 vCPU), so
latency here is mostly waiting; the queue holds 64, enough for 20 users. Numbers go in the README.
"""
import argparse
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from app_latency import start_app  # noqa: E402


def user(url, n, seed, out, images):
    from gradio_client import Client, handle_file
    rng = random.Random(seed)
    client = Client(url, verbose=False)
    for i in range(n):
        img = handle_file(str(rng.choice(images)))
        kind = "classify" if i % 2 == 0 else "explain"
        t = time.perf_counter()
        try:
            if kind == "classify":
                client.predict(img, "plain20", "resnet20", api_name="/classify")
            else:
                method = rng.choice(["Saliency", "Grad-CAM", "Integrated Gradients"])
                client.predict(img, "plain20", "resnet20", method, "predicted", "blend", "absolute", 16, 4, 0.15, 8,
                               "layer3", api_name="/explain")
            out.append((kind, time.perf_counter() - t, None))
        except Exception as e:  # counted, never hidden
            out.append((kind, time.perf_counter() - t, f"{type(e).__name__}: {e}"[:200]))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))] if values else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--requests", type=int, default=10)
    args = ap.parse_args()
    images = sorted((ROOT / "assets" / "examples").glob("*.[pj]*g"))
    proc, url, _, _ = start_app({})
    out = []
    try:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=user, args=(url, args.requests, s, out, images)) for s in range(args.users)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 1024
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait()
    fails = [o for o in out if o[2]]
    print(f"{args.users} users x {args.requests} requests = {len(out)} requests in {wall:.1f} s "
          f"({len(out) / wall:.1f} req/s); failures: {len(fails)}; server alive after: {alive}\n")
    print("| requests | n | p50 | p95 |\n|---|---|---|---|")
    for kind in ("classify", "explain", "all"):
        lat = [o[1] for o in out if not o[2] and (kind == "all" or o[0] == kind)]
        print(f"| {kind} | {len(lat)} | {pct(lat, 0.5):.2f} s | {pct(lat, 0.95):.2f} s |")
    print(f"\nserver peak RSS (VmHWM): {peak:.0f} MiB; mean service time per request: "
          f"{wall / max(len(out), 1) * 1000:.0f} ms")
    for f in fails[:10]:
        print("FAILED:", f)


if __name__ == "__main__":
    main()
