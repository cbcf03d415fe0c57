"""Model cards: each checkpoint folder's README.md, generated from its config.json, metrics.json and
history.csv, so that a folder pushed as a model repo (push.py) says what it is.

    resnet-lab-cards            # (re)write the card of every shipped folder, seeds included
    resnet-lab-cards --check    # exit 1 naming every card that is missing or out of date

The metadata (huggingface_hub's ModelCardData): the library, `datasets: [cifar10]`, the measured
test and training error as model-index results, and the paper's arXiv id. The text: the recipe,
the training log, and where the run differs from the paper, each read from the folder's own
files, so a retrained folder gets a stale card that tests/test_hub.py reports.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from core.engine import checkpoints, models
from core.engine.evaluate import MEASURES, PAPER_NOTES, PAPER_TABLE6
from core.engine.runs import bn_images

CARD = "README.md"
ARXIV = "1512.03385"
LOG_EVERY = 8000  # iterations between the rows of the card's training log
PAPER_WARMUP = 400  # iterations: "0.01 to warm up the training until the training error is below 80% (about 400 iterations)"


def card_folders(root=checkpoints.DEFAULT_ROOT) -> list[Path]:
    """Every shipped checkpoint folder: root/NAME and root/seeds/NAME-seedS."""
    root = Path(root)
    return checkpoints.list_folders(root) + checkpoints.list_folders(root / "seeds")


def _metadata(name: str, metrics: dict) -> ModelCardData:
    spec = models.get_spec(name)
    results = [EvalResult(task_type="image-classification", task_name="Image classification", dataset_type="cifar10",
                          dataset_name="CIFAR-10", dataset_split=split, metric_type="error",
                          metric_name=f"{MEASURES[key].capitalize()}, %", metric_value=metrics[field])
               for split, key, field in (("test", "test_err", "test_error_pct"), ("train", "train_err_eval", "train_error_pct"))
               if metrics.get(field) is not None]
    return ModelCardData(library_name="pytorch", datasets=["cifar10"], metrics=["error"], pipeline_tag="image-classification",
                         tags=["image-classification", "cifar10", spec.kind, "resnet-paper", f"arxiv:{ARXIV}"],
                         model_name=name, eval_results=results)


def _recipe(recipe: dict, metrics: dict, spec: models.ModelSpec) -> list[str]:
    drops = ", ".join(f"{int(f * recipe['iters']):,}" for f in recipe["lr_steps"])
    lines = [f"- SGD, batch {recipe['batch_size']}, momentum {recipe['momentum']}, weight decay {recipe['weight_decay']}, "
             f"{recipe['iters']:,} iterations; learning rate {recipe['lr']}, divided by {1 / recipe['lr_decay']:g} "
             f"at iterations {drops} (recipe `{recipe['name']}`).",
             f"- Augmentation: {'4-pixel padding, random 32×32 crops and horizontal flips' if recipe['augment'] else 'none'}; "
             f"{metrics['data']['train_images']:,} training images; seed {metrics['seed']}."]
    if spec.depth >= recipe.get("warmup_min_depth", 10**9):
        end = metrics.get("warmup_until_iter")
        lines.append(f"- Warm-up: learning rate {recipe['warmup_lr']} until the running training error fell below "
                     f"{recipe['warmup_until_err']:g}% (checked over {recipe['warmup_check']} batches): "
                     + (f"it ended at iteration {end:,}." if end is not None else "it never ended."))
    world = (metrics.get("parallel") or {}).get("world_size", 1)
    procs = "one process" if world == 1 else f"{world} processes"
    lines.append(f"- Trained on {metrics['device']} in {metrics['precision']}, {procs}, BN over "
                 f"{_bn(metrics)} images; {metrics['wall_time_s']:,} s of training; commit `{metrics['commit'][:12]}`.")
    launches = metrics.get("launches", [])
    if len(launches) > 1:
        lines.append("- Resumed across launches, from iterations "
                     + ", ".join(f"{x['from_iter']:,} (commit `{x['commit'][:12]}`)" for x in launches) + ".")
    for pack in metrics.get("packed", []):
        lines.append(f"- From iteration {pack['from_iter']:,} it trained packed with {', '.join(pack['with'])}: both "
                     "nets in one step on the GPU (`core/engine/packed.py`).")
    return lines


def _bn(metrics: dict) -> int:
    return bn_images(metrics.get("parallel"), metrics["recipe"]["batch_size"])


def _log(history: list[dict]) -> list[str]:
    rows = [r for r in history if int(r["iter"]) % LOG_EVERY == 0]
    if history and (not rows or rows[-1] is not history[-1]):
        rows.append(history[-1])
    out = ["| iteration | learning rate | training loss (running) | training error (running) % | test error % |",
           "|---|---|---|---|---|"]
    out += [f"| {int(r['iter']):,} | {r['lr']:g} | {r['train_loss']:.4f} | {r['train_err']:.2f} | {r['test_err']:.2f} |"
            for r in rows]
    return out


def _differences(name: str, metrics: dict, config: dict, spec: models.ModelSpec) -> list[str]:
    lines = []
    paper = PAPER_TABLE6.get(name)
    if paper is not None:
        note = f" ({PAPER_NOTES[name]})" if name in PAPER_NOTES else ""
        lines.append(f"- Test error {metrics['test_error_pct']:.2f}% against the paper's {paper:.2f}%{note}: "
                     f"{metrics['test_error_pct'] - paper:+.2f} points.")
    else:
        lines.append("- The paper gives this net's errors as curves only (Fig. 6), not in Table 6.")
    if metrics["precision"] != "fp32":
        lines.append(f"- Precision: {metrics['precision']}; the paper's 2015 training predates bf16 (fp32).")
    bn = _bn(metrics)
    if bn != 64:
        lines.append(f"- Batch norm over {bn} images; the paper split each batch of 128 over two GPUs (64 each).")
    if config["normalization"]["kind"] != "per_pixel":
        lines.append(f"- Input normalisation: {config['normalization']['kind'].replace('_', '-')} mean and std "
                     "(config.json); the paper subtracts the per-pixel mean.")
    end = metrics.get("warmup_until_iter")
    if end is not None and end != PAPER_WARMUP:
        lines.append(f"- The warm-up ended at iteration {end:,}; the paper's lasted about {PAPER_WARMUP}.")
    lines.append("- docs/deviations.md in the project repository lists every difference of the code.")
    return lines


def render(folder) -> str:
    """The card of one checkpoint folder, from its files alone."""
    folder = Path(folder)
    config = checkpoints.read_json(folder / checkpoints.CONFIG)
    metrics = checkpoints.read_json(folder / checkpoints.METRICS)
    name = config["model"]
    spec = models.get_spec(name)
    what = (f"identity shortcuts (option {spec.shortcut}), y = F(x) + x" if spec.residual
            else "no shortcuts: the plain baseline of the same depth and width")
    title = name if folder.name == name else f"{name}, seed {metrics['seed']} ({folder.name})"
    body = [f"# {title} on CIFAR-10", "",
            f"The {spec.depth}-layer {spec.kind} net of He et al., *Deep Residual Learning for Image Recognition* "
            f"(CVPR 2016, [arXiv:{ARXIV}](https://arxiv.org/abs/{ARXIV})), Section 4.2: {3 * spec.blocks_per_stage} "
            f"blocks of two 3×3 convolutions in three stages of {', '.join(map(str, config['widths']))} channels, {what}.",
            "", "## Results", "",
            "| measure | % |", "|---|---|"]
    body += [f"| {MEASURES[key]} | {metrics[field]:.2f} |" for key, field in
             (("test_err", "test_error_pct"), ("train_err_eval", "train_error_pct")) if metrics.get(field) is not None]
    body += ["", "## Recipe", "", *_recipe(metrics["recipe"], metrics, spec),
             "", "## Training log", "", *_log(checkpoints.read_history(folder)),
             "", "## Where it differs from the paper", "", *_differences(name, metrics, config, spec),
             "", "## Use", "",
             "The files: `model.safetensors` (the weights), `config.json` (the architecture and the input "
             "normalisation), `metrics.json` (the run, with the weights' sha256) and `history.csv` (the full log). "
             "With the resnet-lab package installed:", "",
             "```python", "from huggingface_hub import snapshot_download", "from core.engine import checkpoints", "",
             "ck = checkpoints.load(snapshot_download(REPO_ID))  # REPO_ID: this repository; checks the sha256",
             "ck.model  # an eval-mode torch module: normalised 32x32 images in, 10 logits out", "```", ""]
    return str(ModelCard(f"---\n{_metadata(name, metrics).to_yaml()}\n---\n\n" + "\n".join(body)))


def up_to_date(folder: Path) -> bool:
    """The folder's card exists and is what render() writes (False too if its files cannot be read)."""
    try:
        return (folder / CARD).is_file() and (folder / CARD).read_text() == render(folder)
    except (checkpoints.CheckpointError, KeyError, ValueError):
        return False


def stale(root=checkpoints.DEFAULT_ROOT) -> list[Path]:
    """The folders whose card is missing or out of date."""
    return [f for f in card_folders(root) if not up_to_date(f)]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="resnet-lab-cards", description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", default=str(checkpoints.DEFAULT_ROOT), help="the checkpoints folder")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a card is missing or out of date")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale(args.root)
        for folder in bad:
            print(f"out of date: {folder / CARD}")
        sys.exit(f"{len(bad)} card(s) out of date: run resnet-lab-cards" if bad else 0)
    for folder in card_folders(args.root):
        (folder / CARD).write_text(render(folder))
        print(f"wrote {folder / CARD}")


if __name__ == "__main__":
    main()
