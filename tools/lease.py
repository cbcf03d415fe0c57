"""One GPU lease, scripted: probe the ways of training, then train the backlog against a deadline.

    python -m tools.lease probe --out DIR [--budget 240]     # tools/probe.py: packs, jobs, MPS, micro
    python -m tools.lease train --out DIR --budget S [--models resnet56 plain56 ...]
                                [--resume-from checkpoints/.unfinished] [--pack K] [--jobs J] [--compile MODE]

A lease is 15 device-minutes in all, one command at most 10 minutes, and only 8 files come back, so:
- `probe` runs tools/probe.py, which times the real trainers on random images for each way of
  using the GPU (one net per process, K nets per packed step, J processes, MPS) and writes
  probe.json (to DIR and to data/, where a later call on the same warm machine finds it);
- `train` takes the probe's fastest plan in resnet20-equivalent img/s at depth 56, among those whose
  packs the queue can fill (the backlog has twins, so K <= 2 unless seeds join) (pack size K,
  processes J, compile mode, pack implementation, MPS; each can be forced by a flag, which drops
  the estimates unless the probe measured that plan), turns the queue into units (a pack of
  up to K models of one depth, in queue order; core.engine.train --pack trains each as one process) and
  starts units `J` at a time while at least --min-left seconds remain (with --fit: only if its
  estimate, seconds per step fitted to depth, still fits). Every 20 s it packs finished checkpoint
  folders into DIR/ckpt-N.tar (<= 15 MiB each); at the deadline it stops what is still running
  (each run has saved its resumable state within its last 500 iterations) and packs those into
  DIR/unfinished-N.tar, so a timeout loses nothing that was saved. Logs and a summary go to
  DIR/logs.tar. A net already finished with the same --seed (shipped in checkpoints/NAME, or in
  checkpoints/seeds/NAME-seedS for seed S > 0, or in --resume-from) is not trained again. Needs only
  what core.engine.train needs (torch, numpy, safetensors).
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
import time
from pathlib import Path

from core.engine import models

ROOT = Path(__file__).resolve().parent.parent

BACKLOG: list[str] = []  # issue 13's zoo has shipped: name --models (and --seed S for another seed)
MODES = ["eager", "reduce-overhead", "default"]  # "eager" = bf16 autocast + channels_last, no compile
TAR_LIMIT = 15 * 2**20  # bytes per returned file (the tool returns files of at most 16 MiB)


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


def finished(folder: Path, seed: int | None = None) -> bool:
    """The run in `folder` finished (and, if `seed` is given, with that seed)."""
    try:
        m = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return m.get("finished") is True and (seed is None or m.get("seed") == seed)


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


def units(models: list[str], k: int, impl: str = "grouped") -> list[list[str]]:
    """The queue as training processes: models that can share a pack, in queue order, k at a time."""
    from core.engine.train_packed import plan

    return [[name for name, _ in group] for group in plan([(m, 0) for m in models], impl, k)] if k > 1 \
        else [[m] for m in models]


def train_queue(args) -> dict:
    import torch

    from core.engine.runs import folder_for, provenance
    from tools.probe import choose

    t0 = time.time()
    deadline = t0 + args.budget
    out, work = Path(args.out), Path(args.work)
    ckpt = work / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    pfile = ROOT / "data" / "probe.json"
    probed = json.loads(pfile.read_text()) if pfile.is_file() else None
    here = provenance(torch.device(args.device))["device"]
    # a net already finished with this seed, shipped or in --resume-from (the latter named if both), is not trained again
    # (shipped: checkpoints/NAME for seed 0, checkpoints/seeds/NAME-seedS for the others; --resume-from: DIR/NAME)
    def places(n):
        resumed = [Path(args.resume_from) / n] if args.resume_from else []
        return [folder_for(ROOT / "checkpoints", n, args.seed), *resumed]
    already = {n: str(f) for n in args.models for f in places(n) if finished(f, args.seed)}
    args.models = [n for n in args.models if n not in already]
    if not args.models:
        sys.exit(f"nothing to train: {already or 'no --models'} (seed {args.seed}); name --models, or another --seed")
    if probed and probed.get("device") != here:  # a probe of another machine says nothing about this one
        print(f"ignoring {pfile}: it probed {probed.get('device')!r}, this is {here!r}", flush=True)
        probed = None
    fill = {impl: max(len(u) for u in units(args.models, len(args.models), impl))  # the largest packs the
            for impl in ("grouped", "vmap")}  # queue can make
    plan = choose(probed, max_k=fill)
    forced = {"mode": args.compile, "k": args.pack, "jobs": args.jobs, "impl": args.pack_impl}
    if any(v is not None and plan[key] != v for key, v in forced.items()):
        plan = {**plan, **{key: v for key, v in forced.items() if v is not None}, "sec": None,  # not what was probed
                "r20_img_per_s": None}
    mode, k, jobs = plan["mode"], plan["k"], plan["jobs"]
    iters = args.iters or 64_000
    if args.fit and plan["sec"] is None:
        sys.exit("--fit needs a probe of the same plan: run `tools/lease.py probe` first on this machine")
    queue = units(args.models, k, plan["impl"])
    depth = lambda unit: models.get_spec(unit[0]).depth  # noqa: E731
    est = {tuple(u): (plan["startup_s"] + iters * plan["sec"](depth(u))) * 1.08 if plan["sec"] else 0.0 for u in queue}
    resume = set()
    for name in args.models if args.resume_from else []:  # unfinished runs from an earlier lease
        src = Path(args.resume_from) / name
        if (src / "train_state.json").is_file():
            shutil.copytree(src, ckpt / name, dirs_exist_ok=True)
            resume.add(name)
    summary = {"plan": {key: v for key, v in plan.items() if key != "sec"}, "iters": iters, "seed": args.seed,
               "budget_s": args.budget, "units": queue, "estimate_s": {"+".join(u): round(v) for u, v in est.items()},
               "events": []}

    def event(text):
        summary["events"].append(f"{time.time() - t0:7.1f}s {text}")
        print(summary["events"][-1], flush=True)

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "10",
           "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs))}
    if plan["mps"]:
        from tools.probe import mps, mps_env

        env.update(mps_env())
        err = mps(True, env)
        event(f"MPS daemon {'started' if err is None else f'failed ({err}); going on without it'}")
    summary["already_finished"] = already
    event(f"plan {summary['plan']}; resuming {sorted(resume) or 'none'}; already finished (not trained): "
          f"{already or 'none'}; estimated seconds per unit: "
          f"{summary['estimate_s'] if plan['sec'] else 'none (no probe of this plan)'}")
    pending, running, done, skipped, retried = [tuple(u) for u in queue], {}, [], [], set()
    started_as = {}  # unit -> the compile mode it was started with
    last_pack = 0.0
    while pending or running:
        for unit, proc in list(running.items()):
            if proc.poll() is not None:
                del running[unit]
                ok = proc.returncode == 0 and all(finished(ckpt / n) for n in unit)
                event(f"{'+'.join(unit)} {'finished' if ok else f'FAILED (exit {proc.returncode})'}")
                if ok:
                    done.extend(unit)
                elif started_as[unit] != "eager" and unit not in retried:  # a compile failure: the rest go eager
                    retried.add(unit)
                    mode = "eager"
                    log = work / f"{'+'.join(unit)}.log"
                    log.rename(log.with_suffix(".failed.log"))
                    pending.insert(0, unit)
                    event(f"retrying {'+'.join(unit)} and all later units without torch.compile")
                else:
                    skipped.append(unit)
        left = deadline - time.time()
        committed = sum(max(est[u] * (1 - min(progress(ckpt / n) for n in u) / iters), 0) for u in running)
        for unit in list(pending):
            if len(running) >= jobs:
                break
            if (committed + est[unit] < left) if args.fit else left > args.min_left:
                pending.remove(unit)
                cmd = [sys.executable, "-m", "core.engine.train", "--model", *unit, "--device", args.device,
                       "--out", str(ckpt), "--seed", str(args.seed), "--iters", str(iters)]
                cmd += ["--pack", "--pack-impl", plan["impl"]] if len(unit) > 1 else []
                cmd += ["--resume"] if unit in retried or resume & set(unit) else []
                cmd += ["--compile", mode] if mode != "eager" else []
                cmd += ["--no-train-eval"] if args.no_train_eval else []
                running[unit] = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                                                 stdout=open(work / f"{'+'.join(unit)}.log", "w"),
                                                 stderr=subprocess.STDOUT)
                committed += est[unit]
                started_as[unit] = mode
                event(f"started {'+'.join(unit)} (estimate {est[unit]:.0f} s, {left:.0f} s left)")
            elif not running:
                pending.remove(unit)
                skipped.append(unit)
                why = (f"estimate {est[unit]:.0f} s > {left:.0f} s left" if args.fit
                       else f"{left:.0f} s left, not over --min-left {args.min_left:.0f} s")
                event(f"skipped {'+'.join(unit)}: {why}")
        if time.time() >= deadline:
            break
        if time.time() - last_pack > 20:
            pack(out, ckpt, done, "ckpt", 4)
            last_pack = time.time()
        time.sleep(2)
    for unit, proc in running.items():  # out of time: stop; their last saves (<= 500 iterations ago) stay
        os.killpg(proc.pid, signal.SIGTERM)
    for unit, proc in running.items():
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        event(f"stopped {'+'.join(unit)} at iterations {[progress(ckpt / n) for n in unit]}")
    if plan["mps"]:
        event(f"MPS daemon quit: {mps(False, env) or 'ok'}")
    cut = [n for u in [*running, *skipped] for n in u if (ckpt / n).is_dir()]  # stopped, or failed after saving
    stopped = [n for n in cut if not finished(ckpt / n) and (ckpt / n / "train_state.json").is_file()]
    done += [n for n in cut if finished(ckpt / n) and n not in done]  # e.g. a pack's early finisher
    summary.update(plan={**summary["plan"], "mode": mode}, finished=done, unfinished=stopped,
                   not_started=[n for u in pending + skipped for n in u if n not in done])
    summary["files"] = pack(out, ckpt, done, "ckpt", 4)
    summary["files"] += pack(out, ckpt, stopped, "unfinished", 3)
    summary["metrics"] = {n: {key: m.get(key) for key in ("iterations", "test_error_pct", "train_error_pct",
                                                         "wall_time_s", "img_per_s", "device", "packed")}
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
    ap.add_argument("--jobs", type=int, help="train: processes at once (default: the probe's choice)")
    ap.add_argument("--pack", type=int, metavar="K", help="train: models per packed process (default: the probe's)")
    ap.add_argument("--pack-impl", choices=["grouped", "vmap"], help="train: force the pack implementation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, help="probe: steps per run (160); train: steps per model (64,000)")
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
        from tools.probe import main as probe

        probe(["--out", args.out, "--budget", str(args.budget), "--device", args.device,
               "--steps", str(args.iters or 160)])
    else:
        train_queue(args)


if __name__ == "__main__":
    main()
