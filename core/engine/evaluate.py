"""Error rates of checkpoint folders on CIFAR-10, next to the paper's Table 6.

    python -m core.engine.evaluate [--checkpoints DIR] [--models NAME ...] [--train-error] [--data-dir DIR]

Evaluates each folder (default checkpoints/) on the 10,000 test images (single view, no
augmentation, normalised as its config.json says) and, with --train-error, on the 50,000 training
images (train_err_eval: MEASURES names it "train error (eval pass, clean)", as against the
running error over augmented batches that training logs). results_df() holds model, layers,
params, measured errors in percent, the errors the checkpoint's metrics.json recorded at training
time, the paper's Table 6 value, and the setup (ranks × images per rank, and BN's scope: "1×128",
"2×64, BN per rank"). The table is
printed and written as CSV and Markdown: to assets/results.{csv,md} for the shipped checkpoints/,
else into the evaluated folder.

Imports pandas lazily: the trainer uses error_rate() on GPU machines that have no pandas.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from core.engine import checkpoints, models
from core.engine.data import eval_batches, load_split
from core.engine.distributed import describe
from core.engine.progress import progress_bar
from core.settings import PROJECT

PAPER_TABLE6 = {  # test error %, He et al. 2016, Table 6 (option A); 110: best of 5 runs
    "resnet20": 8.75, "resnet32": 7.51, "resnet44": 7.17, "resnet56": 6.97,
    "resnet110": 6.43, "resnet1202": 7.93,
}
PAPER_NOTES = {"resnet110": "best of 5 runs; mean 6.61±0.16"}
MEASURES = {  # the one name of each error measure: column key -> what the views, tables and docs/results.md call it
    "train_err_running": "train error (running, augmented, as in Fig. 6)",  # metrics' train_error_running_pct
    "train_err_eval": "train error (eval pass, clean)",  # metrics' train_error_pct
    "test_err": "test error",
}
ASSETS = PROJECT / "assets"


@torch.no_grad()
def wrong_mask(model, images, labels, norm=None, device="cpu", batch_size: int = 1000,
               desc: str | None = None) -> torch.Tensor:
    """Per image, whether `model` (switched to eval mode, then restored) gets its top-1 wrong: a bool
    tensor on `device`, from uint8 images."""
    was_training = model.training
    dtype = next(model.parameters()).dtype  # float32, or float64 in tests
    model.eval()
    masks = []
    batches = eval_batches(images, labels, batch_size, device, norm)
    if desc:
        batches = progress_bar(batches, total=math.ceil(len(labels) / batch_size), desc=desc, leave=False)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # true fp32 on GPUs too, so CPU re-evaluation agrees
    try:
        for x, y in batches:
            if torch.device(device).type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            masks.append(model(x.to(dtype)).argmax(1) != y)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
        model.train(was_training)
    return torch.cat(masks) if masks else torch.zeros(0, dtype=torch.bool, device=device)


def error_rate(model, images, labels, norm=None, device="cpu", batch_size: int = 1000,
               desc: str | None = None) -> float:
    """Top-1 error in percent of `model` (switched to eval mode, then restored) on uint8 images,
    counted on `device`."""
    return 100.0 * wrong_mask(model, images, labels, norm, device, batch_size, desc).sum().item() / len(labels)


def evaluate_folder(folder, test=None, train=None, device="cpu") -> dict:
    """One results row for a checkpoint folder; `test`/`train` are (images, labels) or None."""
    ck = checkpoints.load(folder, device)
    spec = models.get_spec(ck.name)
    row = {"model": ck.name, "layers": spec.depth, "params": models.count_params(ck.model),
           "train_err_eval": math.nan, "test_err": math.nan}
    if train is not None:
        row["train_err_eval"] = error_rate(ck.model, *train, ck.normalization, device, desc=f"{ck.name} train")
    if test is not None:
        row["test_err"] = error_rate(ck.model, *test, ck.normalization, device, desc=f"{ck.name} test")
    m = ck.metrics
    row.update({"recorded_train_err_eval": m.get("train_error_pct"), "recorded_test_err": m.get("test_error_pct"),
                "iters": m.get("iterations"), "setup": setup(m), "device": m.get("device")})
    return row


COLUMNS = ["model", "layers", "params", "train_err_eval", "test_err", "recorded_train_err_eval",
           "recorded_test_err", "paper_err", "paper_note", "iters", "setup", "device"]


def setup(metrics: dict) -> str:
    """How a run split its batches: ranks x images per rank, and BN's scope ("2×64, BN per rank")."""
    return describe(metrics.get("parallel"), metrics.get("recipe", {}).get("batch_size", 128))


def results_df(rows: list[dict], columns=COLUMNS):
    """The one Table-6 frame builder (this CLI's and core.research.study's): `columns` of `rows`, with
    paper_err / paper_note from PAPER_TABLE6 by model name; integer columns stay integers where a
    row has no value."""
    import pandas as pd

    rows = [{"paper_err": PAPER_TABLE6.get(r["model"], math.nan), "paper_note": PAPER_NOTES.get(r["model"], ""),
             **r} for r in rows]
    df = pd.DataFrame(rows, columns=columns)
    for col in ("iters", "iterations"):
        if col in df:
            df[col] = df[col].astype("Int64")
    return df


def to_markdown(df, digits: int = 2) -> str:
    """A GitHub Markdown table (pandas' to_markdown would add a dependency for ten lines)."""
    def cell(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.astype(object).itertuples(index=False)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m core.engine.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", default=str(checkpoints.DEFAULT_ROOT), help="folder of checkpoint folders")
    ap.add_argument("--models", nargs="+", help="only these (default: every folder found)")
    ap.add_argument("--train-error", action="store_true", help="also evaluate on the 50,000 training images")
    ap.add_argument("--data-dir", help="folder holding cifar-10-batches-bin/ (default $CIFAR10_DIR, data/)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", help="folder for results.csv/.md (default assets/ for checkpoints/, else DIR)")
    args = ap.parse_args(argv)
    from core.engine.data import DataMissingError

    root = Path(args.checkpoints)
    folders = checkpoints.list_folders(root)
    if args.models:
        folders = [root / m for m in args.models]
    if not folders:
        raise SystemExit(f"no checkpoint folders (with config.json) in {root}")
    try:
        test = load_split("test", args.data_dir)
        train = load_split("train", args.data_dir) if args.train_error else None
    except DataMissingError as e:
        raise SystemExit(str(e)) from None
    try:
        rows = [evaluate_folder(f, test, train, args.device) for f in folders]
    except checkpoints.CheckpointError as e:
        raise SystemExit(f"error: {e}") from None
    df = results_df(rows)
    print(to_markdown(df), end="")
    default_root = root.resolve() == checkpoints.DEFAULT_ROOT.resolve()
    out = Path(args.out) if args.out else (ASSETS if default_root else root)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "results.csv", index=False)
    (out / "results.md").write_text(to_markdown(df))
    print(f"wrote {out / 'results.csv'} and {out / 'results.md'}")


if __name__ == "__main__":
    main()
