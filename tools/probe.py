"""The GPU probe: which way of training the zoo gives the most resnet20-equivalent img/s here.

    python -m tools.probe --out DIR [--budget 240] [--device cuda] [--quick]
    python -m tools.probe one --models resnet56 plain56 [--k 4] [--impl grouped] [--mode eager] [--steps 160]

Units. "img_per_s" counts every image of every member. "r20_img_per_s" weighs each image by its
net's cost against resnet20, (depth - 2) / 18 (each block costs the same FLOPs in every stage, and
resnet20 has 9 blocks): the unit of the first lease's rate (docs/measurements.md) and of issue 14's 275k target. A rate is
steady state, between the middle and the last history rows of a run, so start-up, torch.compile
and evaluation are left out. A "jobs" candidate starts J processes together on the same work and
adds their rates (their steady stretches overlap; that is how the first lease's --jobs ran).

Candidates, each in its own process (a crash or hang costs only itself), in this order while the
budget lasts; results are written to probe.json after each one:
  micro   bf16 channels_last 3x3 conv, forward + backward, batch 128: one grouped conv of G groups
          x C channels per group (G = 2/4/8/16, C = 16/32/64 on 32/16/8-pixel maps, as in the
          nets) against G separate convs (the issue asked: public evidence on cuDNN's grouped
          convolutions is mixed)
  single  one net, one process, eager and reduce-overhead (today's path; the baseline)
  pack    K = 2/4/8 nets in one packed step (core/engine/train_packed.py), grouped and vmap, eager and
          reduce-overhead, at depth 56, then the best K at depths 20 and 110
  jobs    J = 3 processes of one net (today's --jobs), and J = 2 processes of a K = 2 pack, each
          also under MPS (nvidia-cuda-mps-control -d; quit cleanly after) when the daemon exists
  (see candidates() for the order: what a backlog of twins can use comes first)
`choose()` reads probe.json and returns the plan that tools/lease.py trains with: pack size K,
processes J, compile mode, implementation, MPS, and seconds per step as a function of depth.
Needs only torch, numpy, safetensors (the GPU machines' packages).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def r20_cost(depth: int) -> float:
    """Cost of one image through a depth-N net, in resnet20 images."""
    return (depth - 2) / 18


def members(depth: int, k: int, impl: str) -> list[tuple[str, int]]:
    """K runs of one depth: twins by seed (resnet, plain, resnet seed 1, ...); vmap packs one kind."""
    names = [f"resnet{depth}"] if impl == "vmap" else [f"resnet{depth}", f"plain{depth}"]
    return [(names[i % len(names)], i // len(names)) for i in range(k)]


def one(depth: int, k: int, impl: str, mode: str, steps: int, device: str, images: int) -> dict:
    """Train K nets of `depth` for `steps` steps on random images; the steady-state rates."""
    import numpy as np

    from core.engine.checkpoints import read_history
    from core.engine.train import Options, Recipe, RunSpec, train
    from core.engine.train_packed import train_packed

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, len(x))
    recipe = Recipe(iters=steps, eval_every=max(steps // 8, 1))
    runs = members(depth, k, impl)
    compile_model = False if mode == "eager" else mode
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        kw = dict(train_eval=False, bar=False, compile_model=compile_model)
        if k == 1:
            train(RunSpec(runs[0][0]), recipe, (x, y), {"test": (x[:1000], y[:1000])}, tmp, Options(device=device, **kw))
        else:
            train_packed([RunSpec(n, s) for n, s in runs], recipe, (x, y), {"test": (x[:1000], y[:1000])}, tmp,
                         Options(device=device, impl=impl, **kw))
        h = read_history(Path(tmp) / runs[0][0])
    a, b = h[len(h) // 2 - 1], h[-1]
    sec = (b["wall_s"] - a["wall_s"]) / (b["iter"] - a["iter"])
    return {"depth": depth, "k": k, "impl": impl, "mode": mode, "s_per_step": sec,
            "img_per_s": round(k * recipe.batch_size / sec, 1),
            "r20_img_per_s": round(k * recipe.batch_size * r20_cost(depth) / sec, 1),
            "startup_s": round(time.perf_counter() - start - sec * steps, 1)}


def micro(device: str, reps: int) -> list[dict]:
    """Grouped conv vs separate convs, forward + backward, bf16 channels_last (fp32 on CPU)."""
    import torch
    import torch.nn.functional as F

    cuda = device == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32

    def timed(fn):
        for _ in range(3):
            fn()
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        if cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / reps * 1e3

    out = []
    for c, hw in ((16, 32), (32, 16), (64, 8)):
        for g in (2, 4, 8, 16):
            def leaf(*shape):
                t = torch.randn(*shape, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
                return t.requires_grad_()
            xs, ws = [leaf(128, c, hw, hw) for _ in range(g)], [leaf(c, c, 3, 3) for _ in range(g)]
            xg, wg = leaf(128, g * c, hw, hw), leaf(g * c, c, 3, 3)

            def separate():
                sum(F.conv2d(x, w, padding=1).float().sum() for x, w in zip(xs, ws)).backward()

            def grouped():
                F.conv2d(xg, wg, padding=1, groups=g).float().sum().backward()
            ms_sep, ms_grp = timed(separate), timed(grouped)
            out.append({"channels_per_group": c, "map": hw, "groups": g, "separate_ms": round(ms_sep, 4),
                        "grouped_ms": round(ms_grp, 4), "speedup": round(ms_sep / ms_grp, 2)})
            print(json.dumps(out[-1]), flush=True)
    return out


def mps_env() -> dict:
    """Where the MPS daemon and its clients meet (writable folders under the temp dir)."""
    env = {}
    for var, sub in (("CUDA_MPS_PIPE_DIRECTORY", "pipe"), ("CUDA_MPS_LOG_DIRECTORY", "log")):
        env[var] = str(Path(tempfile.gettempdir()) / "mps" / sub)
        Path(env[var]).mkdir(parents=True, exist_ok=True)
    return env


def mps(start: bool, env: dict) -> str | None:
    """Start (or quit) the MPS control daemon; None when it worked, else why not."""
    try:
        if start:  # the daemon forks; it must not hold our pipes
            r = subprocess.run(["nvidia-cuda-mps-control", "-d"], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        else:
            r = subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", env=env, capture_output=True, text=True,
                               timeout=30)
            time.sleep(2)
        return None if r.returncode == 0 else f"exit {r.returncode}: {(getattr(r, 'stdout', '') or '').strip()[:200]}"
    except (OSError, subprocess.SubprocessError) as e:
        return f"{type(e).__name__}: {e}"


def run_candidate(cand: dict, args, timeout: float) -> dict:
    """Run J processes of `one` together; their summed rates (or the error)."""
    cmd = [sys.executable, "-m", "tools.probe", "one", "--depth", str(cand["depth"]), "--k", str(cand["k"]),
           "--impl", cand["impl"], "--mode", cand["mode"], "--steps", str(args.steps), "--device", args.device,
           "--images", str(args.images)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if cand.get("mps"):
        env.update(mps_env())
        err = mps(True, env)
        if err:
            mps(False, env)  # in case it half-started
            return {**cand, "error": f"MPS: {err}"}
    res, errors = [], []
    with tempfile.TemporaryDirectory() as tmp:  # output to files: J pipes read one by one could fill and block
        logs = [open(Path(tmp) / f"{i}.log", "w+") for i in range(cand["jobs"])]
        procs = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True) for log in logs]
        deadline = time.time() + timeout
        for p, log in zip(procs, logs):
            try:
                p.wait(timeout=max(deadline - time.time(), 1))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # the run and anything it started (compile workers)
                p.wait()
                errors.append(f"timed out after {timeout:.0f} s")
                continue
            log.seek(0)
            out = log.read()
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            if p.returncode == 0 and lines:
                res.append(json.loads(lines[-1]))
            else:
                errors.append(f"exit {p.returncode}: {out.strip()[-300:]}")
        for log in logs:
            log.close()
    if cand.get("mps"):
        err = mps(False, env)
        if err:
            errors.append(f"MPS quit: {err}")
    if errors or not res:
        return {**cand, "error": "; ".join(errors) or "no result"}
    return {**cand, "s_per_step": max(r["s_per_step"] for r in res),
            "img_per_s": round(sum(r["img_per_s"] for r in res), 1),
            "r20_img_per_s": round(sum(r["r20_img_per_s"] for r in res), 1),
            "startup_s": max(r["startup_s"] for r in res)}


def candidates(quick: bool) -> list[dict]:
    c = lambda depth, k=1, impl="grouped", mode="reduce-overhead", jobs=1, mps=False: dict(  # noqa: E731
        depth=depth, k=k, impl=impl, mode=mode, jobs=jobs, mps=mps)
    if quick:  # a CPU smoke run: every kind of candidate, eager, depth 20
        return [c(20, mode="eager"), c(20, 2, mode="eager"), c(20, 2, "vmap", mode="eager"), c(20, jobs=2, mode="eager")]
    # most useful first (a compiled candidate pays a long start-up: docs/measurements.md): what the backlog of twins
    # can use (K <= 2), today's path as the baseline, then larger packs (for seeds), vmap, MPS
    return [c(56, 2, mode="eager"), c(56, 8, mode="eager"), c(56), c(56, 2), c(56, 2, jobs=2), c(56, jobs=3),
            c(56, 4), c(56, 8), c(56, 4, "vmap", mode="eager"), c(56, 2, jobs=2, mps=True),
            c(56, jobs=3, mps=True), c(56, 8, "vmap"), c(56, mode="eager"), c(56, 4, mode="eager"),
            c(110, "best"), c(20, "best")]


def probe(args) -> dict:
    import torch

    from core.engine.runs import provenance

    t0 = time.perf_counter()
    result = {"device": provenance(torch.device(args.device))["device"], "torch": torch.__version__,
              "steps": args.steps, "batch": 128, "unit": "r20_img_per_s: images x (depth-2)/18 per second",
              "micro": [], "runs": []}

    def write():  # data/probe.json is where tools/lease.py train looks: not for a --quick smoke run
        for path in [Path(args.out) / "probe.json"] + ([] if args.quick else [ROOT / "data" / "probe.json"]):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=1))

    result["micro"] = micro(args.device, args.reps)
    write()
    for cand in candidates(args.quick):
        left = args.budget - (time.perf_counter() - t0)
        if left < 20:
            result["skipped"] = result.get("skipped", 0) + 1
            continue
        if cand["k"] == "best":  # the fastest single-process pack size at depth 56, at another depth
            packs = [r for r in result["runs"] if "error" not in r and r["jobs"] == 1 and r["depth"] == 56]
            if not packs:
                continue
            best = max(packs, key=lambda r: r["r20_img_per_s"])
            cand = {**cand, "k": best["k"], "impl": best["impl"], "mode": best["mode"]}
        res = run_candidate(cand, args, min(left, args.cap))
        result["runs"].append(res)
        print(json.dumps(res), flush=True)
        write()
    result["choice"] = {k: v for k, v in choose(result).items() if k != "sec"}
    write()
    return result


def choose(probe_result: dict | None, depth: int = 56, max_k: int | dict | None = None) -> dict:
    """The plan with the highest r20 rate at `depth` (else at any depth), and its seconds per step.
    max_k: only plans whose packs the queue can fill: K at most this (or max_k[impl]).

    Returns {"k", "jobs", "mode", "impl", "mps", "r20_img_per_s", "startup_s", "sec": depth -> s}.
    Without a probe: one net per process, eager, no estimates (sec is None).
    """
    runs = [r for r in (probe_result or {}).get("runs", []) if "error" not in r and "depth" in r
            and (max_k is None or r["k"] <= (max_k.get(r["impl"], 1) if isinstance(max_k, dict) else max_k))]
    if not runs:  # (a probe.json from before packing has no "depth": it is not used)
        return {"k": 1, "jobs": 1, "mode": "eager", "impl": "grouped", "mps": False, "sec": None, "startup_s": None}
    pool = [r for r in runs if r["depth"] == depth] or runs
    best = max(pool, key=lambda r: r["r20_img_per_s"])
    key = lambda r: (r["k"], r["jobs"], r["mode"], r["impl"], r.get("mps", False))  # noqa: E731
    pts = sorted({r["depth"]: r for r in runs if key(r) == key(best)}.items())
    if len(pts) >= 2:
        (d1, r1), (d2, r2) = pts[0], pts[-1]
        slope = (r2["s_per_step"] - r1["s_per_step"]) / (d2 - d1)
        sec = lambda d: max(r1["s_per_step"] + slope * (d - d1), 1e-4)  # noqa: E731
    else:
        (d1, r1), = pts
        sec = lambda d: r1["s_per_step"] * r20_cost(d) / r20_cost(d1)  # noqa: E731
    return {"k": best["k"], "jobs": best["jobs"], "mode": best["mode"], "impl": best["impl"],
            "mps": best.get("mps", False), "r20_img_per_s": best["r20_img_per_s"],
            "startup_s": max(r["startup_s"] for _, r in pts) * 1.5, "sec": sec}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    o = sub.add_parser("one", help="one timed run; prints a JSON line")
    o.add_argument("--depth", type=int, default=56)
    o.add_argument("--k", type=int, default=1)
    o.add_argument("--impl", default="grouped", choices=["grouped", "vmap"])
    o.add_argument("--mode", default="eager", choices=["eager", "reduce-overhead", "default"])
    for p in (ap, o):
        p.add_argument("--steps", type=int, default=160, help="steps per run")
        p.add_argument("--device", default="cuda")
        p.add_argument("--images", type=int, default=20_000, help="random training images per run")
    ap.add_argument("--out", help="folder for probe.json")
    ap.add_argument("--budget", type=float, default=240, help="seconds for the whole probe")
    ap.add_argument("--cap", type=float, default=150, help="seconds at most per candidate")
    ap.add_argument("--reps", type=int, default=50, help="micro-benchmark repetitions")
    ap.add_argument("--quick", action="store_true", help="a smoke run: depth 20, eager only")
    args = ap.parse_args(argv)
    if args.cmd == "one":
        print(json.dumps(one(args.depth, args.k, args.impl, args.mode, args.steps, args.device, args.images)))
        return
    if not args.out:
        ap.error("--out is required")
    probe(args)


if __name__ == "__main__":
    main()
