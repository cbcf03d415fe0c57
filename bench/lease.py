"""One GPU lease, scripted: probe the training speed, then train a queue of models against a deadline.

    python bench/lease.py probe --out DIR [--budget S]      # ~1-2 min: img/s per model x mode
    python bench/lease.py train --out DIR --budget S [--models resnet20 plain20 ...] [--jobs 2]
                                [--resume-from checkpoints/.unfinished] [--compile reduce-overhead]

A lease is 15 device-minutes in all, one command at most 10 minutes, and only 8 files come back, so:
- `probe` times core.train.train() (the real step: GPU-resident data, augmentation, SGD) on random
  images for a deep and a shallow net in eager bf16 and torch.compile modes, and writes probe.json
  (to DIR and to data/, where a later call on the same warm machine finds it);
- `train` picks the fastest mode that worked, fits the seconds per iteration to depth, and starts
  models in queue order (the issue's backlog order by default), `--jobs` at a time, while at least
  --min-left seconds remain (with --fit: only if its estimated time still fits, GPU work assumed to
  add up: concurrency hides start-up, compile and Python overhead, not GPU time). Every 20 s it packs finished checkpoint
  folders into DIR/ckpt-N.tar (<= 15 MiB each); at the deadline it stops what is still running
  (each run has saved its resumable state within its last 500 iterations) and packs those into
  DIR/unfinished.tar, so a timeout loses nothing that was saved. Logs and a summary go to
  DIR/logs.tar. Needs only what core.train needs (torch, numpy, safetensors).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BACKLOG = ["resnet20", "plain20", "resnet56", "plain56", "resnet110", "resnet32", "plain32", "resnet44",
           "plain44", "plain110"]
MODES = ["eager", "reduce-overhead", "default"]  # "eager" = bf16 autocast + channels_last, no compile
TAR_LIMIT = 15 * 2**20  # bytes per returned file (the tool returns files of at most 16 MiB)


def probe(out: Path, budget: float, iters: int, device: str) -> dict:
    import numpy as np
    import torch

    from core.checkpoints import read_history
    from core.train import Recipe, provenance, train

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20_000, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, len(x))
    recipe = Recipe(iters=iters, eval_every=iters // 4)
    plan = [("resnet20", "eager"), ("resnet20", "reduce-overhead"), ("resnet56", "reduce-overhead"),
            ("resnet56", "eager"), ("resnet20", "default"), ("resnet56", "default")]
    result = {"device": provenance(torch.device(device))["device"], "torch": torch.__version__,
              "iters": iters, "runs": []}
    t0 = time.perf_counter()
    for name, mode in plan:
        if time.perf_counter() - t0 > budget:
            break
        run = {"model": name, "mode": mode}
        torch._dynamo.reset()  # each probe compiles from scratch, within dynamo's recompile limit
        start = time.perf_counter()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                train(name, recipe, (x, y), {"test": (x[:1000], y[:1000])}, tmp, device, train_eval=False,
                      bar=False, compile_model=False if mode == "eager" else mode)
                h = read_history(Path(tmp) / name)
            a, b = h[len(h) // 2 - 1], h[-1]
            run["s_per_iter"] = (b["wall_s"] - a["wall_s"]) / (b["iter"] - a["iter"])
            run["img_per_s"] = round(recipe.batch_size / run["s_per_iter"], 1)
            run["startup_s"] = round(time.perf_counter() - start - run["s_per_iter"] * iters, 1)
        except Exception as e:  # a mode that fails here is simply not used
            run["error"] = f"{type(e).__name__}: {e}"[:500]
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
    for path in (out / "probe.json", ROOT / "data" / "probe.json"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))
    return result


def choose(probe_result: dict | None, forced: str | None):
    """(mode, seconds-per-iteration function of depth, start-up seconds) from a probe; no probe, no estimates."""
    runs = [r for r in (probe_result or {}).get("runs", []) if "error" not in r]
    if forced:
        runs = [r for r in runs if r["mode"] == forced]
        if not runs:
            return forced, None, None
    if not runs:
        return "eager", None, None
    deep = [r for r in runs if r["model"] == "resnet56"] or runs
    best = min(deep, key=lambda r: r["s_per_iter"])["mode"]
    pts = {int(r["model"][6:]): r for r in runs if r["mode"] == best}
    if len(pts) >= 2:
        (d1, r1), (d2, r2) = sorted(pts.items())[:2]
        slope = (r2["s_per_iter"] - r1["s_per_iter"]) / (d2 - d1)
        sec = lambda depth: max(r1["s_per_iter"] + slope * (depth - d1), 1e-4)  # noqa: E731
    else:
        (d1, r1), = pts.items()
        sec = lambda depth: r1["s_per_iter"] * depth / d1  # noqa: E731
    startup = max(r["startup_s"] for r in pts.values()) * 1.5  # deeper nets compile longer
    return best, sec, startup


def pack(out: Path, ckpt_root: Path, names: list[str], prefix: str, max_files: int) -> list[str]:
    """Tar the folders of `names` into out/prefix-N.tar, each at most TAR_LIMIT bytes (atomic writes)."""
    groups, size = [[]], 0
    for name in names:
        n = sum(f.stat().st_size for f in (ckpt_root / name).iterdir())
        if groups[-1] and size + n > TAR_LIMIT:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += n
    written = []
    for i, group in enumerate(groups[:max_files], 1):
        if not group:
            continue
        path = out / f"{prefix}-{i}.tar"
        tmp = path.with_suffix(".tar.tmp")
        with tarfile.open(tmp, "w") as tar:
            for name in group:
                tar.add(ckpt_root / name, arcname=name)
        os.replace(tmp, path)
        written.append(path.name)
    return written


def finished(folder: Path) -> bool:
    try:
        return json.loads((folder / "metrics.json").read_text()).get("finished") is True
    except (OSError, ValueError):
        return False


def progress(folder: Path) -> int:
    try:
        return int(json.loads((folder / "metrics.json").read_text()).get("iterations") or 0)
    except (OSError, ValueError):
        return 0


def write_logs(out: Path, work: Path, summary: dict):
    tmp = out / "logs.tar.tmp"
    with tarfile.open(tmp, "w") as tar:
        for log in sorted(work.glob("*.log")):
            tar.add(log, arcname=log.name)
        data = json.dumps(summary, indent=1).encode()
        info = tarfile.TarInfo("lease.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out / "logs.tar")


def train_queue(args) -> dict:
    t0 = time.time()
    deadline = t0 + args.budget
    out, work = Path(args.out), Path(args.work)
    ckpt = work / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    pfile = ROOT / "data" / "probe.json"
    mode, sec, startup = choose(json.loads(pfile.read_text()) if pfile.is_file() else None, args.compile)
    iters = args.iters or 64_000
    if args.fit and sec is None:
        sys.exit("--fit needs a probe: run `bench/lease.py probe` first on this machine")
    est = {m: (startup + iters * sec(int("".join(c for c in m if c.isdigit()))) * 1.08) if sec else 0.0
           for m in args.models}
    resume = set()
    for name in args.models if args.resume_from else []:  # unfinished runs from an earlier lease
        src = Path(args.resume_from) / name
        if (src / "train_state.json").is_file():
            shutil.copytree(src, ckpt / name, dirs_exist_ok=True)
            resume.add(name)
    summary = {"mode": mode, "iters": iters, "seed": args.seed, "budget_s": args.budget, "jobs": args.jobs,
               "estimate_s": {m: round(v) for m, v in est.items()}, "events": []}

    def event(text):
        summary["events"].append(f"{time.time() - t0:7.1f}s {text}")
        print(summary["events"][-1], flush=True)

    event(f"mode {mode}; resuming {sorted(resume) or 'none'}; estimated seconds per model: "
          f"{summary['estimate_s'] if sec else 'none (no probe)'}")
    pending, running, done, skipped, retried = list(args.models), {}, [], [], set()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "10",
           "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // args.jobs))}
    last_pack = 0.0
    while pending or running:
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                ok = proc.returncode == 0 and finished(ckpt / name)
                event(f"{name} {'finished' if ok else f'FAILED (exit {proc.returncode})'}")
                if ok:
                    done.append(name)
                elif mode != "eager" and name not in retried:  # a compile failure: the rest go eager
                    retried.add(name)
                    mode = "eager"
                    (work / f"{name}.log").rename(work / f"{name}.failed.log")
                    pending.insert(0, name)
                    event(f"retrying {name} and all later models without torch.compile")
                else:
                    skipped.append(name)
        left = deadline - time.time()
        committed = sum(max(est[n] * (1 - progress(ckpt / n) / iters), 0) for n in running)
        for name in list(pending):
            if len(running) >= args.jobs:
                break
            if (committed + est[name] < left) if args.fit else left > args.min_left:
                pending.remove(name)
                cmd = [sys.executable, "-m", "core.train", "--model", name, "--device", args.device,
                       "--out", str(ckpt), "--seed", str(args.seed), "--iters", str(iters)]
                cmd += ["--resume"] if name in retried | resume else []
                cmd += ["--compile", mode] if mode != "eager" else []
                cmd += ["--no-train-eval"] if args.no_train_eval else []
                running[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                                                 stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT)
                committed += est[name]
                event(f"started {name} (estimate {est[name]:.0f} s, {left:.0f} s left)")
            elif not running:
                pending.remove(name)
                skipped.append(name)
                event(f"skipped {name}: estimate {est[name]:.0f} s > {left:.0f} s left")
        if time.time() >= deadline:
            break
        if time.time() - last_pack > 20:
            pack(out, ckpt, done, "ckpt", 4)
            last_pack = time.time()
        time.sleep(2)
    for name, proc in running.items():  # out of time: stop; their last saves (<= 500 iterations ago) stay
        os.killpg(proc.pid, signal.SIGTERM)
    for name, proc in running.items():
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        event(f"stopped {name} at iteration {progress(ckpt / name)}")
    summary.update(mode=mode, finished=done, unfinished=sorted(running), not_started=[n for n in pending + skipped
                                                                             if n not in done])
    summary["files"] = pack(out, ckpt, done, "ckpt", 4)
    summary["files"] += pack(out, ckpt, [n for n in running if (ckpt / n).is_dir()], "unfinished", 3)
    summary["metrics"] = {n: {k: m.get(k) for k in ("iterations", "test_error_pct", "train_error_pct",
                                                     "wall_time_s", "img_per_s", "device")}
                          for n in done for m in [json.loads((ckpt / n / "metrics.json").read_text())]}
    event(f"done: {summary['files']}")
    write_logs(out, work, summary)
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["probe", "train"])
    ap.add_argument("--out", required=True, help="folder whose files come back ($OUT)")
    ap.add_argument("--work", default="/tmp/lease", help="where checkpoints and logs are written")
    ap.add_argument("--budget", type=float, default=500, help="seconds until everything must be packed")
    ap.add_argument("--models", nargs="+", default=BACKLOG)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, help="probe: steps per run (400); train: steps per model (64,000)")
    ap.add_argument("--compile", choices=MODES, help="train: force a mode instead of the probe's fastest")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--fit", action="store_true",
                    help="train: start a model only if its estimate fits (else: while --min-left seconds remain;"
                         " what the deadline stops is packed resumable)")
    ap.add_argument("--resume-from", metavar="DIR",
                    help="train: continue the unfinished runs in DIR/NAME (e.g. checkpoints/.unfinished)")
    ap.add_argument("--min-left", type=float, default=120, help="train: seconds a new model needs at least")
    ap.add_argument("--no-train-eval", action="store_true", help="train: skip the final training-set error")
    args = ap.parse_args(argv)
    if args.command == "probe":
        probe(Path(args.out), args.budget, args.iters or 400, args.device)
    else:
        train_queue(args)


if __name__ == "__main__":
    main()
