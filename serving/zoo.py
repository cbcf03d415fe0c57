"""The models the app serves: which are trained, loading each once, classifying, and the CPU budget.

- A model with a shipped checkpoint (checkpoints/NAME/) is served with its GPU-trained weights and
  its measured test error; a model without one is "unavailable" (a clear reason, never a crash), and
  a corrupt folder makes only that model unavailable.
- With no checkpoints at all, every model runs on fresh He-initialised weights (seed 0) and
  `untrained_mode()` says so, so the app can say so prominently.
- Models load lazily (first use) and stay cached; nothing is read at import, nothing touches the
  network. torch's thread count follows the real CPU quota (cgroup cpu.max, else the affinity mask):
  a Space's 2 vCPU on a many-core host must not run 64 threads.
Classification runs on a copy with BN folded into the convs (fold_bn). Model time for one image on
the 2-core dev machine, resnet110 + plain110: 15.8 ms folded, 17.3 ms unfolded (bench/app_latency.py).
"""
from __future__ import annotations

import copy
import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from engine import checkpoints, models
from engine.data import CLASSES, NORMALIZATION, normalize

SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "cifar_test_sample.npz"
# where the checkpoint folders are: $RESNET_LAB_CHECKPOINTS, else checkpoints/ (an empty folder = untrained mode)
ROOT = Path(os.environ.get("RESNET_LAB_CHECKPOINTS") or checkpoints.DEFAULT_ROOT)


class ModelUnavailable(Exception):
    """A model the app cannot serve right now; str(e) says why, for the user."""


@dataclass
class Served:
    name: str
    model: torch.nn.Module
    trained: bool  # False: fresh He initialisation
    normalization: dict
    metrics: dict = field(default_factory=dict)

    @functools.cached_property
    def fast(self) -> torch.nn.Module:
        """An inference copy with every BN folded into its conv (same outputs to ~1e-5, ~30% fewer ops).
        Used to classify only; attributions and analysis use `model`, which has every module intact."""
        return fold_bn(self.model)

    @property
    def test_error(self) -> float | None:
        return self.metrics.get("test_error_pct")

    def describe(self) -> str:
        if not self.trained:
            return f"`{self.name}`: **untrained** (fresh He initialisation, seed 0)"
        m = self.metrics
        return (f"`{self.name}`: test error **{m['test_error_pct']:.2f}%** (train {m['train_error_pct']:.2f}%), "
                f"{m['iterations']:,} iterations on {m.get('device', '?')}")


def fold_bn(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode in which each conv -> BN pair is one conv (BN replaced by Identity)."""
    fused = copy.deepcopy(model).eval()
    pairs = [("conv1", "bn1")] + [(f"{s}.{j}.conv{k}", f"{s}.{j}.bn{k}") for s in models.STAGES
                                  for j in range(len(getattr(fused, s))) for k in (1, 2)]
    pairs += [(n[:-2] + ".0", n) for n, m in fused.named_modules()
              if n.endswith("shortcut.1") and isinstance(m, torch.nn.BatchNorm2d)]
    for conv_name, bn_name in pairs:
        conv, bn = fused.get_submodule(conv_name), fused.get_submodule(bn_name)
        parent_c, _, attr_c = conv_name.rpartition(".")
        parent_b, _, attr_b = bn_name.rpartition(".")
        setattr(fused.get_submodule(parent_c), attr_c, fuse_conv_bn_eval(conv, bn))
        setattr(fused.get_submodule(parent_b), attr_b, torch.nn.Identity())
    return fused


def cpu_quota() -> int:
    """CPUs this process may really use: the cgroup v2/v1 quota if set, else the affinity mask."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        try:
            quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if quota > 0:
                n = min(n, math.ceil(quota / period))
        except (OSError, ValueError):
            pass
    return max(1, n)


def set_threads() -> int:
    """Threads = the CPU quota; also flush denormals to zero: a fresh deep plain net in eval mode
    shrinks its activations into denormal floats, which made plain110 take 100-1300 ms instead of
    ~8 ms per image here."""
    n = int(os.environ.get("RESNET_LAB_THREADS") or cpu_quota())
    torch.set_num_threads(n)
    torch.set_flush_denormal(True)
    return n


@functools.lru_cache(maxsize=1)
def _listing(root: Path) -> tuple[str, ...]:
    return tuple(f.name for f in checkpoints.list_folders(root))


def shipped() -> list[str]:
    """Names with a checkpoint folder under ROOT; listed once per ROOT, not on every request."""
    return list(_listing(Path(ROOT)))


def reset():
    """Forget loaded models and the folder listing (after ROOT or the folders under it changed)."""
    _listing.cache_clear()
    _fresh.cache_clear()
    _trained.cache_clear()


def untrained_mode() -> bool:
    """True when no checkpoint is shipped at all: then every model runs on fresh weights."""
    return not shipped()


def status(name: str) -> str:
    """'trained', 'untrained' (no checkpoints anywhere), 'missing', or 'broken: <reason>'."""
    models.get_spec(name)
    if untrained_mode():
        return "untrained"
    if name not in shipped():
        return "missing"
    try:
        get(name)
        return "trained"
    except ModelUnavailable as e:
        return f"broken: {e}"


@functools.lru_cache(maxsize=None)
def _fresh(name: str) -> Served:
    torch.manual_seed(0)
    return Served(name, models.build(name).eval(), False, NORMALIZATION)


@functools.lru_cache(maxsize=None)
def _trained(name: str) -> Served:
    ck = checkpoints.load(ROOT / name)
    return Served(name, ck.model.eval(), True, ck.normalization, ck.metrics)


def get(name: str, weights: str = "trained") -> Served:
    """The served model: weights "trained" (its checkpoint) or "init" (fresh He initialisation)."""
    try:
        models.get_spec(name)
    except KeyError as e:
        raise ModelUnavailable(str(e).strip('"')) from None
    if weights == "init" or untrained_mode():
        return _fresh(name)
    if weights != "trained":
        raise ModelUnavailable(f"weights must be 'trained' or 'init', not {weights!r}")
    if name not in shipped():
        raise ModelUnavailable(f"{name} has no trained checkpoint yet (it comes with a later GPU run); "
                               f"trained now: {', '.join(shipped())}")
    try:
        return _trained(name)
    except checkpoints.CheckpointError as e:
        raise ModelUnavailable(f"{name} is unavailable: its checkpoint is damaged ({e})") from None


def inputs(served: Served, images_uint8: np.ndarray) -> torch.Tensor:
    """N x 3 x 32 x 32 (or 3 x 32 x 32) uint8 -> the normalised float batch this model expects."""
    x = torch.as_tensor(np.ascontiguousarray(images_uint8))
    return normalize(x[None] if x.dim() == 3 else x, served.normalization)


def classify(served: Served, image_uint8: np.ndarray) -> tuple[dict[str, float], float]:
    """({class: probability} for all 10 classes, model seconds) for one 3 x 32 x 32 uint8 image."""
    torch.set_flush_denormal(True)  # per thread: servers call from worker threads
    x = inputs(served, image_uint8)
    t = time.perf_counter()
    with torch.inference_mode():
        p = torch.softmax(served.fast(x)[0], 0)
    return {c: float(v) for c, v in zip(CLASSES, p)}, time.perf_counter() - t


@functools.lru_cache(maxsize=1)
def test_sample() -> tuple[np.ndarray, np.ndarray]:
    """A fixed batch of CIFAR-10 test images shipped in assets/ (uint8 N x 3 x 32 x 32, labels)."""
    with np.load(SAMPLE) as z:
        return z["images"], z["labels"]


def make_test_sample(per_class: int = 8, data_dir=None) -> Path:
    """Write assets/cifar_test_sample.npz: the first `per_class` test images of every class."""
    from engine.data import load_split

    x, y = load_split("test", data_dir)
    idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(len(CLASSES))]))
    np.savez_compressed(SAMPLE, images=x[idx], labels=y[idx].astype(np.int64), test_indices=idx)
    return SAMPLE


if __name__ == "__main__":
    print(make_test_sample())
