"""Self-describing checkpoint folders: save, load (never unpickling), verify.

A checkpoint is a folder, `checkpoints/NAME/`, holding
    model.safetensors   the state_dict (the layout of the common CIFAR ResNet reference code)
    config.json         model name, architecture spec, normalisation, classes: enough to rebuild it
    metrics.json        train/test error in percent, iterations, recipe, seed, device, wall time,
                        versions, commit, and the sha256 of model.safetensors
    history.csv         the training log (iteration, loss, errors, lr, wall time)
    README.md           (shipped folders) the model card, written from the three files above by
                        core/hub/cards.py (`resnet-lab-cards`); a save does not write it
and, while a run is unfinished, train_state.safetensors + train_state.json for --resume.
model.safetensors + config.json at the folder root is the layout huggingface_hub's
PyTorchModelHubMixin writes and reads (tests/test_checkpoints.py loads one with from_pretrained),
so a folder can be pushed to the Hub unchanged; the engine does not import
huggingface_hub, because the GPU machines that train the zoo do not have it.

Every save writes a complete new folder next to the old one and swaps it in with two renames, so a
kill at any moment leaves a loadable folder (load() reads .NAME.new/.NAME.old if the kill fell
between the renames; the next save or --resume finishes the swap; readers never rename). Every load
problem (missing file, truncated or garbage weights, wrong architecture, shape mismatch, sha256
mismatch, bad JSON) raises one CheckpointError naming the file and the first bad key.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core.engine import models
from core.engine.data import CLASSES, NORMALIZATION
from core.settings import PROJECT

WEIGHTS, CONFIG, METRICS, HISTORY = "model.safetensors", "config.json", "metrics.json", "history.csv"
STATE_TENSORS, STATE_JSON = "train_state.safetensors", "train_state.json"
FORMAT_VERSION = 1
DEFAULT_ROOT = PROJECT / "checkpoints"


class CheckpointError(Exception):
    """A checkpoint file is missing, corrupt, or does not match what it claims to be."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


@dataclass
class Checkpoint:
    path: Path
    model: torch.nn.Module
    config: dict
    metrics: dict

    @property
    def name(self) -> str:
        return self.config["model"]

    @property
    def normalization(self) -> dict:
        return self.config["normalization"]


def make_config(name: str, normalization: dict = NORMALIZATION) -> dict:
    spec = models.get_spec(name)
    return {"model": name, "format_version": FORMAT_VERSION, "arch": spec.to_dict(),
            "widths": list(models.WIDTHS), "input_size": [3, 32, 32], "classes": list(CLASSES),
            "normalization": normalization}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def history_csv(rows: list[dict]) -> bytes:
    if not rows:
        return b""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def read_history(folder) -> list[dict]:
    """The training log as a list of dicts with float values (empty if there is none)."""
    path = Path(folder) / HISTORY
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else None for k, v in row.items()} for row in csv.DictReader(f)]


def _fsync_write(path: Path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _siblings(dest: Path) -> tuple[Path, Path]:
    return dest.parent / f".{dest.name}.new", dest.parent / f".{dest.name}.old"


def write_folder(dest, files: dict[str, bytes]):
    """Replace folder `dest` by one holding exactly `files`, atomically as seen by load()."""
    dest = Path(dest)
    new, old = _siblings(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover(dest)
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    for name, data in files.items():
        _fsync_write(new / name, data)
    _fsync_dir(new)
    if dest.exists():
        shutil.rmtree(old, ignore_errors=True)  # a leftover from a kill during the last cleanup
        os.replace(dest, old)
    os.replace(new, dest)
    _fsync_dir(dest.parent)
    shutil.rmtree(old, ignore_errors=True)


def readable(dest) -> Path:
    """Where the last complete save of `dest` is: NAME itself, or after a kill between the two
    renames of a save, .NAME.new (complete: it is only renamed after its fsync) or .NAME.old."""
    dest = Path(dest)
    new, old = _siblings(dest)
    if dest.is_dir() or not old.is_dir():
        return dest
    return new if new.is_dir() else old


def recover(dest) -> None:
    """For the writer only: finish a swap that a kill interrupted (readers use readable())."""
    dest = Path(dest)
    src = readable(dest)
    if src != dest:
        os.replace(src, dest)
        shutil.rmtree(_siblings(dest)[1], ignore_errors=True)


def save(dest, model: models.CifarResNet, metrics: dict, history: list[dict] | None = None,
         normalization: dict = NORMALIZATION, train_state: tuple[dict, dict] | None = None) -> dict:
    """Write a checkpoint folder; returns the metrics as written (with weights_sha256)."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    weights = st_save(state, metadata={"format": "pt"})  # one key: safetensors orders a map randomly
    metrics = {**metrics, "model": model.spec.name, "weights_sha256": sha256_bytes(weights)}
    files = {WEIGHTS: weights, CONFIG: _json(make_config(model.spec.name, normalization)),
             METRICS: _json(metrics)}
    if history:
        files[HISTORY] = history_csv(history)
    if train_state is not None:
        tensors, info = train_state
        files[STATE_TENSORS] = st_save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()})
        files[STATE_JSON] = _json(info)
    write_folder(dest, files)
    return metrics


def _json(obj) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(path, "missing file") from None
    except OSError as e:
        raise CheckpointError(path, f"cannot be read ({e})") from None


def read_json(path: Path) -> dict:
    try:
        obj = json.loads(_read_bytes(path))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(path, f"not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(path, "expected a JSON object")
    return obj


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], bytes]:
    data = _read_bytes(path)
    try:
        return st_load(data), data
    except Exception as e:  # safetensors raises its own error type for truncated/garbage files
        raise CheckpointError(path, f"not a readable safetensors file, truncated or corrupt ({e})") from None


def _check_config(path: Path, config: dict) -> models.ModelSpec:
    for key, kind in (("model", str), ("arch", dict), ("normalization", dict)):
        if not isinstance(config.get(key), kind):
            raise CheckpointError(path, f"key {key!r} is missing or not a {kind.__name__}")
    try:
        spec = models.get_spec(config["model"])
    except KeyError as e:
        raise CheckpointError(path, f"key 'model': {e.args[0]}") from None
    for key, want in spec.to_dict().items():
        if config["arch"].get(key) != want:
            raise CheckpointError(path, f"key 'arch.{key}' is {config['arch'].get(key)!r}, "
                                        f"but {spec.name} has {want!r}")
    return spec


def check_state(path: Path, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], name: str):
    """Raise CheckpointError for the first key that is missing, unexpected or of the wrong shape."""
    for key, ref in expected.items():
        if key not in state:
            raise CheckpointError(path, f"missing key {key!r} (wrong architecture for {name}?)")
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CheckpointError(path, f"key {key!r} has shape {tuple(state[key].shape)}, "
                                        f"{name} expects {tuple(ref.shape)}")
    for key in state:
        if key not in expected:
            raise CheckpointError(path, f"unexpected key {key!r} (wrong architecture for {name}?)")


def load(folder, device="cpu", check_sha: bool = True, dtype: torch.dtype = torch.float32) -> Checkpoint:
    """Load a checkpoint folder into an eval-mode model; raises CheckpointError on any problem.
    dtype: of the model built (float64 keeps a float64 test run's weights exact on resume)."""
    folder = Path(folder)
    src = readable(folder)  # reads never rename: a trainer may be writing this folder right now
    if not src.is_dir():
        raise CheckpointError(folder, "checkpoint folder not found")
    config = read_json(src / CONFIG)
    spec = _check_config(src / CONFIG, config)
    metrics = read_json(src / METRICS)
    state, raw = read_safetensors(src / WEIGHTS)
    if check_sha:
        want = metrics.get("weights_sha256")
        if want is None:
            raise CheckpointError(src / METRICS, "missing key 'weights_sha256'")
        got = sha256_bytes(raw)
        if got != want:
            raise CheckpointError(src / WEIGHTS, f"sha256 {got} does not match "
                                                    f"metrics.json's weights_sha256 {want}")
    model = models.CifarResNet(spec).to(dtype)
    check_state(src / WEIGHTS, state, model.state_dict(), spec.name)
    model.load_state_dict(state)
    return Checkpoint(folder, model.to(device).eval(), config, metrics)


def load_train_state(folder) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The resume state of an unfinished run, or None if the run finished (or never saved)."""
    folder = Path(folder)
    recover(folder)  # the trainer is the folder's writer
    if not (folder / STATE_JSON).is_file():
        return None
    tensors, _ = read_safetensors(folder / STATE_TENSORS)
    return tensors, read_json(folder / STATE_JSON)


def list_folders(root=DEFAULT_ROOT) -> list[Path]:
    """Checkpoint folders under root (those with a config.json), sorted by registry order."""
    root = Path(root)
    found = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
             and (p / CONFIG).is_file()] if root.is_dir() else []
    order = {n: i for i, n in enumerate(models.list_models())}
    return sorted(found, key=lambda p: (order.get(p.name, len(order)), p.name))


@dataclass
class Record:
    """What a checkpoint folder says about its run, without loading the weights."""
    spec: models.ModelSpec
    metrics: dict
    seeds: list[dict]  # metrics of further seeds, if any: NAME/seeds/*.json, ROOT/seeds/NAME-seed*/metrics.json
    history: list[dict]

    @property
    def runs(self) -> list[dict]:
        return [self.metrics] + self.seeds


def records(root=DEFAULT_ROOT) -> list[Record]:
    """One Record per readable folder under root, in registry order. A broken folder is left out:
    loading it (load(), or the app's zoo) is what reports it."""
    out = []
    for folder in list_folders(root):
        src = readable(folder)
        try:
            spec = models.get_spec(read_json(src / CONFIG)["model"])
            metrics = read_json(src / METRICS)
            seeds = [read_json(p) for p in sorted((src / "seeds").glob("*.json"))]
            seeds += [read_json(p) for p in sorted(Path(root).glob(f"seeds/{folder.name}-seed*/{METRICS}"))]
        except (CheckpointError, KeyError):
            continue
        out.append(Record(spec, metrics, seeds, read_history(src)))
    return out


def trained_names(root=DEFAULT_ROOT) -> list[str]:
    """The shipped nets that trained (models.trained on the training error of their metrics.json)."""
    return [r.spec.name for r in records(root) if models.trained(r.metrics.get("train_error_pct"))]


def trained_pairs(root=DEFAULT_ROOT) -> list[int]:
    """The depths of models.DEPTHS whose plain and residual nets are both shipped and trained, shallow first."""
    ok = set(trained_names(root))
    return [d for d in models.DEPTHS if set(models.pair(d)) <= ok]


def opening_pair(root=DEFAULT_ROOT) -> tuple[str, str] | None:
    """The pair the app's views open on: the deepest shipped pair where both nets trained (where the
    paper's point shows), else the deepest shipped pair, else None."""
    trained = trained_pairs(root)
    return models.pair(trained[-1]) if trained else models.deepest_pair(f.name for f in list_folders(root))


def not_shipped(name: str, shipped) -> str:
    """Why a model has no trained weights to show: the one wording the app and the stored views use."""
    return (f"{name} has no trained checkpoint yet (it comes with a later GPU run); "
            f"trained now: {', '.join(shipped) or 'none'}")


def damaged(name: str, error: Exception) -> str:
    return f"{name} is unavailable: its checkpoint is damaged ({error})"


def verify(root=DEFAULT_ROOT) -> list[tuple[Path, str | None]]:
    """(folder, None if OK else the error) for every checkpoint folder under root."""
    out = []
    for folder in list_folders(root):
        try:
            load(folder)
            out.append((folder, None))
        except CheckpointError as e:
            out.append((folder, str(e)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m core.engine.checkpoints", description="checkpoint tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="load every checkpoint folder and check its sha256")
    v.add_argument("root", nargs="?", default=str(DEFAULT_ROOT))
    args = ap.parse_args(argv)
    results = verify(args.root)
    if not results:
        print(f"no checkpoint folders in {args.root}")
    for folder, err in results:
        print(f"OK    {folder}" if err is None else f"FAIL  {err}")
    bad = sum(err is not None for _, err in results)
    if results:
        print(f"{len(results) - bad}/{len(results)} checkpoints OK")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
