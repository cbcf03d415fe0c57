"""Push one checkpoint folder to the Hub as a model repo.

    resnet-lab-push checkpoints/resnet56 USER/resnet56 --dry-run   # files, sizes, checks; offline
    resnet-lab-push checkpoints/resnet56 USER/resnet56

The folder is checked first: it loads (sha256 included), it is a finished run (no resume state),
and its model card (README.md, cards.py) is up to date. Pushed: the weights, config.json,
metrics.json, history.csv, the card and a .gitattributes with the LFS rules; the upload is one commit
that deletes whatever else the repo held. The layout is PyTorchModelHubMixin's (model.safetensors +
config.json at the root), so HubResNet.from_pretrained(repo or folder) loads it, besides
core.engine.checkpoints.load(snapshot_download(repo)).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin

from core.engine import checkpoints, models
from core.hub import cards
from core.hub.staging import Staged, copy_files, lfs_problems, upload

PUSHED = (checkpoints.WEIGHTS, checkpoints.CONFIG, checkpoints.METRICS, checkpoints.HISTORY, cards.CARD)


class HubResNet(models.CifarResNet, PyTorchModelHubMixin):
    """A CIFAR net that from_pretrained() builds from a pushed folder's config.json ("model" names the
    architecture; the other keys are the format's own)."""

    def __init__(self, model: str, **_config):
        super().__init__(models.get_spec(model))


def check_folder(folder: Path) -> list[str]:
    """Why `folder` cannot be pushed (empty when it can)."""
    try:
        ck = checkpoints.load(folder)
    except checkpoints.CheckpointError as e:
        return [str(e)]
    errors = []
    if (folder / checkpoints.STATE_JSON).exists() or not ck.metrics.get("finished", False):
        errors.append(f"{folder}: an unfinished run (resume it to the end first)")
    if not cards.up_to_date(folder):
        errors.append(f"{folder / cards.CARD} is missing or out of date: run resnet-lab-cards")
    return errors


def stage(folder, dest) -> Staged:
    """Copy the pushed files of a checkpoint folder into the empty folder dest, add .gitattributes,
    and run the checks (Staged.errors)."""
    folder = Path(folder)
    errors = check_folder(folder)
    staged = copy_files([(folder / name, name) for name in PUSHED if (folder / name).is_file()], dest, {})
    staged.errors = errors + lfs_problems(staged)
    return staged


def push(folder, repo_id: str, dest, dry_run: bool = False, private: bool = False, api=None) -> str | None:
    """Stage into dest, check, and (unless dry_run) create the model repo and upload in one commit;
    returns the commit URL. `api` is a huggingface_hub.HfApi (made here when None)."""
    return upload(stage(folder, dest), repo_id, "model", f"Upload {Path(folder).name} (resnet-lab)", dry_run, private, api)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="resnet-lab-push", description="Push a checkpoint folder to the Hub as a model repo.")
    ap.add_argument("folder", help="a finished checkpoint folder, e.g. checkpoints/resnet56")
    ap.add_argument("repo_id", help="the model repo, USER/NAME (created if it does not exist)")
    ap.add_argument("--dry-run", action="store_true", help="stage and check, print the files; upload nothing (offline)")
    ap.add_argument("--private", action="store_true", help="create the repo private")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="resnet-lab-model-") as tmp:
        push(args.folder, args.repo_id, tmp, dry_run=args.dry_run, private=args.private)


if __name__ == "__main__":
    main()
