"""The project's settings: one small, frozen object, built once by an entry point and passed down.

This is the one module of core/ that reads the environment (besides core.engine.distributed, which
reads what torchrun sets where the process group starts). app.py builds its Settings with
`Settings.from_env()`, `python -m core.research.precompute` with its flags as overrides; below
them, serving, research, figures and ui take a Settings (or the paths it holds) as an argument.
The engine's own CLIs keep their flags and resolve the CIFAR-10 folder with data_root().

    checkpoints  folder of checkpoint folders ($RESNET_LAB_CHECKPOINTS, else checkpoints/); empty or
                 absent: the app runs every model on fresh weights (untrained mode)
    data_dir     folder holding cifar-10-batches-bin/ ($CIFAR10_DIR, else None: data/)
    research     the precomputed research views (assets/research/)
    sample       the shipped test sample (assets/cifar_test_sample.npz, 80 CIFAR-10 test images)
    threads      torch threads ($RESNET_LAB_THREADS, else None: the CPU quota)
    host, port   where the app listens: $GRADIO_SERVER_NAME, else all interfaces on a Hugging Face
                 Space ($SPACE_ID set) and localhost anywhere else; $PORT, else $GRADIO_SERVER_PORT,
                 else 7860
    queue        waiting requests the app's queue holds ($RESNET_LAB_QUEUE, default 64)
    log_level    the app's log level ($RESNET_LAB_LOG: debug, info, warning or error; default info)

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
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A setting from the environment that cannot be used; the message names the variable."""


def _int(env, name: str, default: int | None) -> int | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"${name} must be an integer, not {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    checkpoints: Path = PROJECT / "checkpoints"  # = core.engine.checkpoints.DEFAULT_ROOT
    data_dir: Path | None = None
    research: Path = PROJECT / "assets" / "research"
    sample: Path = PROJECT / "assets" / "cifar_test_sample.npz"
    threads: int | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    queue: int = 64
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ=None, **overrides) -> Settings:
        """Settings from the environment variables above (unset or empty: the defaults), then
        `overrides` (None values ignored, e.g. an absent CLI flag)."""
        env = os.environ if environ is None else environ
        level = (env.get("RESNET_LAB_LOG") or cls.log_level).strip().lower()
        if level not in LOG_LEVELS:
            raise SettingsError(f"$RESNET_LAB_LOG must be debug, info, warning or error, not {level!r}")
        s = cls(checkpoints=Path(env.get("RESNET_LAB_CHECKPOINTS") or cls.checkpoints),
                data_dir=Path(env["CIFAR10_DIR"]) if env.get("CIFAR10_DIR") else None,
                threads=_int(env, "RESNET_LAB_THREADS", None),
                host=env.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if env.get("SPACE_ID") else cls.host),
                port=_int(env, "PORT", None) or _int(env, "GRADIO_SERVER_PORT", cls.port),
                queue=_int(env, "RESNET_LAB_QUEUE", cls.queue), log_level=level)
        paths = {"checkpoints", "data_dir", "research", "sample"}
        return replace(s, **{k: Path(v) if k in paths else v for k, v in overrides.items() if v is not None})


def data_root(data_dir: str | os.PathLike | None = None, environ=None) -> Path:
    """The folder that holds CIFAR-10 (and CIFAR-10-C): data_dir (a --data-dir flag), else
    $CIFAR10_DIR, else <project>/data. The one place the engine's CLIs resolve it."""
    env = os.environ if environ is None else environ
    return Path(data_dir or env.get("CIFAR10_DIR") or PROJECT / "data")


def commit_from_env(environ=None) -> str | None:
    """$GIT_COMMIT: the commit a run's provenance records when the tree has no git metadata (a GPU
    machine's copy); None when unset."""
    env = os.environ if environ is None else environ
    return env.get("GIT_COMMIT") or None


def child_env(defaults: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment for a child process: this one's, with `defaults` where unset, and `extra`."""
    return {**(defaults or {}), **os.environ, **extra}


def quiet_gradio() -> None:
    """No calls home: Gradio's analytics off (unless set otherwise) before gradio is imported."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


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
    mode shrinks its activations into denormal floats, which made it far slower (docs/measurements.md)."""
    n = int(n or cpu_quota())
    torch.set_num_threads(n)
    torch.set_flush_denormal(True)
    return n
