"""Where things are, and how many threads: one small, frozen object passed down from the entry points.

The app and `python -m core.research.precompute` build theirs with `Settings.from_env()`; below them,
serving, research, figures and ui take a Settings (or the paths it holds) as an argument and read
neither the environment nor another module's globals. The engine's own CLIs (train, evaluate,
data, checkpoints) keep their flags; core.engine.data.find_data_dir resolves --data-dir, else
$CIFAR10_DIR, else data/.

    checkpoints  folder of checkpoint folders ($RESNET_LAB_CHECKPOINTS, else checkpoints/); empty or
                 absent: the app runs every model on fresh weights (untrained mode)
    data_dir     folder holding cifar-10-batches-bin/ ($CIFAR10_DIR, else data/), for the CLIs
    research     the precomputed research views (assets/research/)
    sample       the shipped test sample (assets/cifar_test_sample.npz, 80 CIFAR-10 test images)
    threads      torch threads ($RESNET_LAB_THREADS, else None: the CPU quota)

cpu_quota() is the real CPU budget (cgroup v2 cpu.max, else cgroup v1 cfs quota, else the affinity
mask): a Space's 2 vCPU on a many-core host must not run 64 threads. set_threads() applies it.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

PROJECT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    checkpoints: Path = PROJECT / "checkpoints"  # = core.engine.checkpoints.DEFAULT_ROOT
    data_dir: Path | None = None
    research: Path = PROJECT / "assets" / "research"
    sample: Path = PROJECT / "assets" / "cifar_test_sample.npz"
    threads: int | None = None

    @classmethod
    def from_env(cls, environ=None, **overrides) -> Settings:
        """Settings from $RESNET_LAB_CHECKPOINTS, $CIFAR10_DIR and $RESNET_LAB_THREADS (unset or
        empty: the defaults), then `overrides` (None values ignored, e.g. an absent CLI flag)."""
        env = os.environ if environ is None else environ
        s = cls(checkpoints=Path(env.get("RESNET_LAB_CHECKPOINTS") or cls.checkpoints),
                data_dir=Path(env["CIFAR10_DIR"]) if env.get("CIFAR10_DIR") else None,
                threads=int(env["RESNET_LAB_THREADS"]) if env.get("RESNET_LAB_THREADS") else None)
        return replace(s, **{k: Path(v) if k != "threads" else int(v)
                             for k, v in overrides.items() if v is not None})


def cpu_quota(cgroup: Path = Path("/sys/fs/cgroup"), affinity: int | None = None) -> int:
    """CPUs this process may really use: the cgroup v2 (cpu.max) or v1 (cpu/cpu.cfs_quota_us) quota,
    rounded up, if one is set and below the affinity mask (default: os.sched_getaffinity)."""
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = affinity
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        try:
            quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
            period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
            if quota > 0:
                n = min(n, math.ceil(quota / period))
        except (OSError, ValueError):
            pass
    return max(1, n)


def set_threads(n: int | None = None) -> int:
    """Threads = n, else the CPU quota; also flush denormals to zero: a fresh deep plain net in eval
    mode shrinks its activations into denormal floats, which made it 10-100x slower."""
    n = int(n or cpu_quota())
    torch.set_num_threads(n)
    torch.set_flush_denormal(True)
    return n
