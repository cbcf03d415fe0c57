"""The models the app serves: which are trained, loading each once, and classifying.

- `Zoo(settings)` serves the checkpoint folders under settings.checkpoints. A model with a folder is
  served with its GPU-trained weights and its measured errors; a model without one is unavailable
  (ModelUnavailable, with the reason), and a damaged folder makes only that model unavailable.
- With no checkpoints at all, every model runs on fresh He-initialised weights (seed 0) and
  `untrained_mode()` says so, so the app can say so prominently.
- Models load on first use and stay cached in the Zoo; nothing is read when this module is
  imported or a Zoo is made, and nothing touches the network.
- classify() runs a copy with every BN folded into its conv (fold_bn): the same outputs as the
  model to float rounding (held by tests/test_zoo.py for plain, option-A and option-B nets of
  depth 20 to 110), fewer operations.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from core.engine import checkpoints, models
from core.engine.data import CLASSES, NORMALIZATION, load_sample, normalize
from core.settings import Settings

WEIGHTS = ("trained", "init")


class ModelUnavailable(Exception):
    """A model the app cannot serve right now; str(e) says why, for the user."""


@dataclass
class Served:
    name: str
    model: torch.nn.Module
    trained: bool  # False: fresh He initialisation
    normalization: dict
    metrics: dict = field(default_factory=dict)

    @property
    def spec(self) -> models.ModelSpec:
        return models.get_spec(self.name)

    @functools.cached_property
    def fast(self) -> torch.nn.Module:
        """An inference copy with every BN folded into its conv. Used to classify only; attributions
        and analysis use `model`, which has every module intact."""
        return fold_bn(self.model)

    @property
    def label(self) -> str:
        """"resnet56 (trained)" or "resnet56 (init)": the name of this model's series in a figure."""
        return f"{self.name} ({'trained' if self.trained else 'init'})"


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


class Zoo:
    """The served models of one checkpoint folder (settings.checkpoints), loaded lazily, cached."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = Path(settings.checkpoints)
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str], Served] = {}
        self._listing: tuple[str, ...] | None = None
        self._opening: int | None = None
        self._trained: tuple[str, ...] | None = None

    def shipped(self) -> list[str]:
        """Names with a checkpoint folder under the root; listed once, not on every request."""
        if self._listing is None:
            self._listing = tuple(f.name for f in checkpoints.list_folders(self.root))
        return list(self._listing)

    def default_depth(self) -> int:
        """The depth every view opens on: checkpoints.opening_pair's (the deepest pair where both nets
        trained; a pair with a net that did not train, plain110, is shown but not opened on), else 56,
        the paper's headline pair. Read once."""
        if self._opening is None:
            pair = checkpoints.opening_pair(self.root)
            self._opening = models.get_spec(pair[0]).depth if pair else 56
        return self._opening

    def trained(self) -> list[str]:
        """The shipped nets that trained (checkpoints.trained_names); read once."""
        if self._trained is None:
            self._trained = tuple(checkpoints.trained_names(self.root))
        return list(self._trained)

    def untrained_mode(self) -> bool:
        """True when no checkpoint is shipped at all: then every model runs on fresh weights."""
        return not self.shipped()

    def test_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The shipped batch of CIFAR-10 test images (settings.sample): uint8 N x 3 x 32 x 32, labels."""
        return load_sample(Path(self.settings.sample))

    def get(self, name: str, weights: str = "trained") -> Served:
        """The served model: weights "trained" (its checkpoint) or "init" (fresh He initialisation)."""
        try:
            models.get_spec(name)
        except KeyError as e:
            raise ModelUnavailable(str(e).strip('"')) from None
        if weights not in WEIGHTS:
            raise ModelUnavailable(f"weights must be one of {WEIGHTS}, not {weights!r}")
        if weights == "trained" and not self.untrained_mode() and name not in self.shipped():
            raise ModelUnavailable(checkpoints.not_shipped(name, self.shipped()))
        key = (name, "init" if self.untrained_mode() else weights)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = self._load(*key)
            return self._loaded[key]

    def _load(self, name: str, weights: str) -> Served:
        if weights == "init":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                return Served(name, models.build(name).eval(), False, NORMALIZATION)
        try:
            ck = checkpoints.load(self.root / name)
        except checkpoints.CheckpointError as e:
            raise ModelUnavailable(checkpoints.damaged(name, e)) from None
        return Served(name, ck.model.eval(), True, ck.normalization, ck.metrics)

    def pair(self, plain: str, residual: str, weights: str = "trained") -> list[tuple[str, Served | None, str]]:
        """[(name, Served or None, why unavailable or "")] for the two models of a comparison."""
        out = []
        for name in (plain, residual):
            try:
                out.append((name, self.get(name, weights), ""))
            except ModelUnavailable as e:
                out.append((name, None, str(e)))
        return out


def inputs(served: Served, images_uint8: np.ndarray) -> torch.Tensor:
    """N x 3 x 32 x 32 (or 3 x 32 x 32) uint8 -> the normalised float batch this model expects."""
    x = torch.as_tensor(np.ascontiguousarray(images_uint8))
    return normalize(x[None] if x.dim() == 3 else x, served.normalization)


@contextlib.contextmanager
def one_thread():
    """torch's intra-op threads set to 1 inside, restored after: one 32x32 image is too little work
    to split across cores, and the split costs more than it gains as soon as anything else (the
    server's event loop, a client) wants a core (docs/measurements.md, latency: bench/app_latency.py)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def classify(served: Served, image_uint8: np.ndarray) -> tuple[dict[str, float], float]:
    """({class: probability} for all 10 classes, model seconds) for one 3 x 32 x 32 uint8 image,
    on one thread (one_thread)."""
    torch.set_flush_denormal(True)  # per thread: servers call from worker threads
    x = inputs(served, image_uint8)
    t = time.perf_counter()
    with torch.inference_mode(), one_thread():
        p = torch.softmax(served.fast(x)[0], 0)
    return {c: float(v) for c, v in zip(CLASSES, p)}, time.perf_counter() - t
