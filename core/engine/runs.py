"""The record of one training run: where it stands, its history, and what each save writes.

Shared by the single-model set-up (core/engine/train.py), the packed one (core/engine/train_packed.py)
and their one loop (core/engine/loop.py), so a run's folder is the same whichever trained it:
`Run.open` resumes it (refusing a different recipe, data or BN scope: bn_images, what each BN
normalised over), `Run.log` appends a history row
(running train loss/error since the last row, test and val error), `Run.save` writes the
checkpoint folder with metrics and, while unfinished, the resume state in torch.optim.SGD's layout
(`optim.{i}.momentum_buffer` for the i-th parameter, plus param_groups), which either trainer can
resume. A resumed run's metrics keep "launches": the commit, dirty flag and device of each launch and
the iteration it started at, the first one's provenance_note included (tests/test_train.py).
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.engine import checkpoints
from core.engine.data import NORMALIZATION
from core.engine.evaluate import MEASURES, error_rate
from core.settings import commit_from_env

LAUNCH_KEYS = ("commit", "dirty", "device")  # what a resumed run's "launches" record keeps of each launch


def provenance(device: torch.device) -> dict:
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        try:
            r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
            return r.stdout.strip() if r.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""

    # GIT_COMMIT wins: a copied tree (a GPU lease) can carry stale git metadata
    commit = commit_from_env() or git("rev-parse", "HEAD") or "unknown"
    cuda = device.type == "cuda"
    return {"device": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
            "device_type": device.type, "commit": commit,
            "dirty": None if commit_from_env() else bool(git("status", "--porcelain")),
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "cuda": torch.version.cuda if cuda else None,
                         "cudnn": torch.backends.cudnn.version() if cuda else None}}


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def run_meta(device: torch.device, fast_cuda: bool, compile_model, parallel: dict) -> dict:
    """What every save of a run records about how it was trained (both trainers); parallel:
    Dist.record(batch), the ranks and what BN normalises over."""
    return {"precision": "bf16-autocast" if fast_cuda else "fp32", "compiled": compile_model,
            "parallel": parallel, **provenance(device)}


def data_id(train_set, eval_sets) -> dict:
    return {"train_images": len(train_set[1]), "eval_sets": sorted(eval_sets)}


def bn_images(parallel: dict | None, batch_size: int) -> int:
    """How many images each BN normalises over in a run (its "parallel" record; None: a run of the
    single-process trainer from before the record, the whole batch). Resuming must keep it."""
    return parallel["bn_images"] if parallel else batch_size


@dataclass(frozen=True)
class RunSpec:
    """What one run trains: a model (core.engine.models name), its seed, and its folder (default:
    OUT/NAME for core.engine.train.train, folder_for(OUT, NAME, seed) in a pack)."""
    name: str
    seed: int = 0
    folder: str | Path | None = None


def folder_for(out_dir, name: str, seed: int = 0) -> Path:
    """OUT/NAME for seed 0 (the served run); OUT/seeds/NAME-seedS for other seeds, which the app and
    list_folders() do not list (only folders with a config.json directly under OUT are)."""
    return Path(out_dir) / name if seed == 0 else Path(out_dir) / "seeds" / f"{name}-seed{seed}"


@dataclass
class Run:
    name: str
    folder: Path
    recipe: object  # core.engine.recipe.Recipe
    seed: int
    base: dict  # the metrics every save repeats: recipe, seed, data, precision, provenance, ...
    warming: bool
    it: int = 0
    wall: float = 0.0
    history: list = field(default_factory=list)
    warm_end: int | None = None
    saved: dict | None = None  # the resume tensors (optimiser state, "acc"), when resumed
    groups: list | None = None  # the saved param_groups, when resumed
    extra: dict = field(default_factory=dict)  # more records kept in metrics and resume state ("packed")
    done: dict | None = None  # the metrics of a run found finished (then there is nothing to train)

    @classmethod
    def open(cls, name, folder, recipe, seed, train_set, eval_sets, resume, warming, meta: dict):
        """A Run at iteration 0, or resumed from `folder`; if `folder` holds a finished run and resume
        is set, a Run whose `done` holds its metrics. meta: precision, compiled, provenance fields."""
        folder = Path(folder)
        saved = checkpoints.load_train_state(folder) if resume else None
        if not resume and (folder / checkpoints.STATE_JSON).is_file():
            print(f"{name}: {folder} holds an unfinished run; starting over (pass --resume to continue it)")
        if resume and saved is None and (folder / checkpoints.METRICS).is_file():
            done = checkpoints.read_json(folder / checkpoints.METRICS)
            print(f"{name}: {folder} holds a finished run ({done.get('iterations')} iterations); nothing to resume")
            return cls(name, folder, recipe, seed, {}, warming, done=done)
        run = cls(name, folder, recipe, seed, {}, warming)
        if saved is not None:
            tensors, info = saved
            want = json.loads(json.dumps({**dataclasses.asdict(recipe), **data_id(train_set, eval_sets),
                                          "bn_images": bn_images(meta.get("parallel"), recipe.batch_size)}))
            was = {**info["recipe"], **info["data"],
                   "bn_images": bn_images(info.get("parallel"), info["recipe"]["batch_size"])}
            diff = {k: (v, want.get(k)) for k, v in was.items() if want.get(k) != v}
            if diff:
                raise ValueError(f"{name}: the run in {folder} differs in {diff} (was, now); resume it with the "
                                 "same flags (bn_images: the same ranks and --sync-bn), or train into a new --out")
            run.saved, run.groups = tensors, info["param_groups"]
            run.it, run.wall, run.history = info["iter"], info["wall_s"], info["history"]
            run.warming, run.warm_end, run.seed = info["warming"], info["warmup_end"], info["seed"]
            run.extra = {k: info[k] for k in ("packed", "launches") if k in info}
            run.note_launch(folder, meta)
            print(f"{name}: resuming at iteration {run.it:,} of {recipe.iters:,} from {folder}")
        run.base = {"recipe": dataclasses.asdict(recipe), "seed": run.seed, "data": data_id(train_set, eval_sets),
                    **meta, "normalization": NORMALIZATION}
        return run

    def resume_model(self, model):
        """Load the resumed run's weights into `model` (nothing if the run starts fresh)."""
        if self.saved is not None:
            dtype = next(model.parameters()).dtype
            model.load_state_dict(checkpoints.load(self.folder, dtype=dtype).model.state_dict())

    def log(self, model, loss_sum: float, err_sum: float, eval_sets: dict, device, lr: float) -> dict:
        """Append the history row of iteration self.it (sums over the steps since the last row)."""
        n = (self.it - (self.history[-1]["iter"] if self.history else 0)) * self.recipe.batch_size
        row = {"iter": self.it, "train_loss": loss_sum / n, "train_err": 100 * err_sum / n,
               "test_err": error_rate(model, *eval_sets["test"], NORMALIZATION, device)}
        if "val" in eval_sets:
            row["val_err"] = error_rate(model, *eval_sets["val"], NORMALIZATION, device)
        row.update(lr=lr, wall_s=round(self.wall, 3))
        self.history.append(row)
        return row

    def note_launch(self, folder: Path, meta: dict):
        """A resumed run's "launches" record: which commit and device trained from which iteration (the
        metrics' own "commit" is the latest launch's). On the first resume the iterations before are
        read from the folder's metrics.json, its provenance_note included. Runs never resumed keep none."""
        launches = self.extra.setdefault("launches", [])
        if not launches:
            before = checkpoints.read_json(folder / checkpoints.METRICS) if (folder / checkpoints.METRICS).is_file() else {}
            launches.append({"from_iter": 0, **{k: before.get(k) for k in LAUNCH_KEYS},
                             **{k: before[k] for k in ("provenance_note",) if k in before}})
        launches.append({"from_iter": self.it, **{k: meta.get(k) for k in LAUNCH_KEYS}})

    def note_pack(self, others: list[str], impl: str | None, k: int):
        """Open (or continue) this launch's entry in the "packed" record (k=1: trained alone again).
        Runs never packed keep no record."""
        phases = self.extra.get("packed")
        if phases is None and k == 1:
            return
        entry = {"from_iter": self.it, "impl": impl, "k": k, "with": others}
        phases = self.extra.setdefault("packed", [])
        if not phases or {**phases[-1], "from_iter": self.it} != entry:
            phases.append(entry)

    @property
    def finished(self) -> bool:
        return self.it >= self.recipe.iters

    def save(self, model, train_set, device, train_eval: bool, state, bar=None) -> dict:
        """Write the folder after the last log(); state(): (optimiser tensors incl. "acc", param_groups),
        called only while the run is unfinished. Returns the metrics as written."""
        row, it = self.history[-1], self.it
        metrics = {**self.base, **self.extra, "iterations": it, "finished": self.finished,
                   "test_error_pct": row["test_err"], "train_error_pct": None,
                   "train_error_running_pct": row["train_err"], "train_loss_running": row["train_loss"],
                   "wall_time_s": round(self.wall, 1),
                   "img_per_s": round((it * self.recipe.batch_size) / max(self.wall, 1e-9), 1),
                   "warmup_until_iter": self.warm_end}
        if "val_err" in row:
            metrics["val_error_pct"] = row["val_err"]
        if self.finished:
            if bar is not None:
                bar.close()
            if train_eval:
                metrics["train_error_pct"] = error_rate(model, *train_set, NORMALIZATION, device,
                                                        desc=f"{self.name} train error")
        train_state = None
        if not self.finished:
            tensors, groups = state()
            train_state = (tensors, {"iter": it, "wall_s": self.wall, "history": self.history,
                                     "warming": self.warming, "warmup_end": self.warm_end, "seed": self.seed,
                                     "param_groups": groups, "recipe": self.base["recipe"],
                                     "data": self.base["data"], "parallel": self.base.get("parallel"),
                                     **self.extra})
        return checkpoints.save(self.folder, model, metrics, self.history, NORMALIZATION, train_state=train_state)

    def summary(self, metrics: dict) -> str:
        pct = lambda v: "n/a" if v is None else f"{v:.2f}%"  # noqa: E731
        return (f"{self.name}: {self.it:,} iterations in {metrics['wall_time_s']:.1f} s "
                f"({metrics['img_per_s']:,.0f} img/s), {MEASURES['train_err_eval']} "
                f"{pct(metrics['train_error_pct'])}, {MEASURES['train_err_running']} "
                f"{metrics['train_error_running_pct']:.2f}%, test error "
                f"{metrics['test_error_pct']:.2f}% -> {self.folder}")


def optim_tensors(state: dict) -> tuple[dict, list]:
    """torch.optim.SGD state_dict -> (flat tensors "optim.{i}.{key}", param_groups)."""
    tensors = {f"optim.{i}.{k}": v for i, s in state["state"].items() for k, v in s.items() if torch.is_tensor(v)}
    return tensors, state["param_groups"]


def optim_state(tensors: dict, groups: list) -> dict:
    """The inverse of optim_tensors: a state_dict for torch.optim.SGD.load_state_dict."""
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, i, k = key.split(".", 2)
            state.setdefault(int(i), {})[k] = v
    return {"state": state, "param_groups": groups}
