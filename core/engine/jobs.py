"""`python -m core.engine.train --jobs K`: each model of the command line in its own process, K at a time.

The child processes run the same command for one model each (the flags minus --model and --jobs);
their output goes to OUT/NAME.log; on the CPU they share the cores (OMP_NUM_THREADS = cores / K
unless set). The exit status is 1 if any of them failed (tests/test_train.py runs two).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.settings import child_env


def run_jobs(args, argv):
    """Train each model in its own process, `args.jobs` at a time; logs go to OUT/NAME.log."""
    rest, skip = [], False
    for a in argv:  # the same flags, minus --model and --jobs
        if a in ("--model", "--jobs"):
            skip = True
        elif a.startswith("--"):
            skip = False
        if not skip:
            rest.append(a)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    pending, running, failed = list(args.model), [], []
    while pending or running:
        while pending and len(running) < args.jobs:
            name = pending.pop(0)
            log = open(Path(args.out) / f"{name}.log", "w")
            cmd = [sys.executable, "-m", "core.engine.train", "--model", name, *rest]
            # on the CPU, share the cores instead of oversubscribing them
            env = child_env({"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // args.jobs))}
                            if args.device == "cpu" else None)
            running.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
            print(f"started {name} (log: {log.name})")
        time.sleep(1)
        for job in [j for j in running if j[1].poll() is not None]:
            running.remove(job)
            job[2].close()
            print(f"{job[0]}: {'done' if job[1].returncode == 0 else f'FAILED (exit {job[1].returncode})'}")
            if job[1].returncode:
                failed.append(job[0])
    return 1 if failed else 0
