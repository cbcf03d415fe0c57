"""Deploy the app as a Hugging Face Space: stage the Space's files, check them, upload them.

    resnet-lab-deploy USER/SPACE --dry-run   # the file list, sizes and checks; offline, uploads nothing
    resnet-lab-deploy USER/SPACE             # create the Space (Gradio SDK) if needed, then upload

Only the HTTP API is used (create_repo, then one upload_folder commit): it needs no git history and
stores binary files with LFS/Xet by itself, whereas a `git push` of this repository is refused (its
.safetensors files are plain git blobs, in the history too). The staged folder holds exactly
SPACE_FILES: app.py, core/, assets/, docs/ (where present), README.md, the finished checkpoints (seed
runs included; no .unfinished/ state), and two files of its own: requirements.txt with the CPU-only
torch build, and .gitattributes with the LFS rules. A redeploy deletes what is no longer in the set
(delete_patterns="*"). The checks (`check`, run before any upload and by --dry-run) stop on: a
README header without sdk, an sdk_version other than the pinned gradio, a missing app_file or
python_version; a checkpoint that fails to load or whose card is out of date; a binary file, or a
file over 10 MiB, that no LFS rule covers. Logging in: `hf auth login`, or $HF_TOKEN (read by
huggingface_hub itself).
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import tomllib
from pathlib import Path

from huggingface_hub import metadata_load
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from core.engine import checkpoints
from core.hub import cards
from core.hub.staging import Staged, copy_files, lfs_problems, upload
from core.settings import PROJECT

SPACE_FILES = ("app.py", "README.md", "core", "assets", "docs", "checkpoints")  # the rest stays behind
SKIPPED = ("__pycache__", "*.pyc", "*.egg-info")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # PyTorch's CPU-only wheels (no CUDA libraries)
CPU_BUILDS = ("torch", "torchvision")


def _skipped(path: Path) -> bool:
    return path.name.startswith(".") or any(path.match(p) for p in SKIPPED)


def _unfinished(folder: Path) -> bool:
    return (folder / checkpoints.STATE_JSON).exists() or (folder / checkpoints.STATE_TENSORS).exists()


def space_files(root=PROJECT) -> list[tuple[Path, str]]:
    """(source, path in the Space) for each file of the set: hidden names (.unfinished/, a save's
    .NAME.new), caches and unfinished runs left out."""
    root = Path(root)
    out = []
    for top in SPACE_FILES:
        start = root / top
        if start.is_file():
            out.append((start, top))
            continue
        for path in sorted(start.rglob("*")) if start.is_dir() else []:
            rel = path.relative_to(root)
            if path.is_file() and not any(_skipped(Path(*rel.parts[:i + 1])) for i in range(len(rel.parts))) \
                    and not (top == "checkpoints" and _unfinished(path.parent)):
                out.append((path, rel.as_posix()))
    return out


def space_requirements(text: str) -> str:
    """The repository's requirements.txt for a CPU Space: PyTorch's CPU index added, torch and
    torchvision pinned to the same versions' +cpu builds, comments dropped."""
    lines = [f"--extra-index-url {CPU_INDEX}"]
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.name in CPU_BUILDS:
            pins = [s.version for s in req.specifier if s.operator == "=="]
            if len(pins) != 1 or len(req.specifier) != 1:
                raise ValueError(f"requirements.txt: {req.name} must be pinned (==) to have its CPU build named")
            line = f"{req.name}=={pins[0].split('+')[0]}+cpu"
        lines.append(line)
    return "\n".join(lines) + "\n"


def pinned(requirements: str, package: str) -> str | None:
    """The version `package` is pinned to (==) in a requirements text, or None."""
    for line in requirements.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and (req := Requirement(line)).name == package:
            return next((s.version for s in req.specifier if s.operator == "=="), None)
    return None


def check_header(folder: Path) -> list[str]:
    """What the Space's README header lacks: sdk, sdk_version (= the pinned gradio), app_file (present)
    and python_version (within pyproject's requires-python)."""
    try:
        meta = metadata_load(folder / "README.md") or {}
    except Exception as e:  # yaml's errors, a missing file
        return [f"README.md: the YAML header does not parse ({e})"]
    errors = [f"README.md header: no {key}" for key in ("sdk", "sdk_version", "app_file", "python_version") if key not in meta]
    gradio = pinned((folder / "requirements.txt").read_text(), "gradio")
    if meta.get("sdk") not in (None, "gradio"):
        errors.append(f"README.md header: sdk is {meta['sdk']!r}, not 'gradio'")
    if "sdk_version" in meta and str(meta["sdk_version"]) != gradio:
        errors.append(f"README.md header: sdk_version {meta['sdk_version']} is not the pinned gradio {gradio}")
    if "app_file" in meta and not (folder / str(meta["app_file"])).is_file():
        errors.append(f"README.md header: app_file {meta['app_file']} is not in the Space")
    requires = _requires_python()
    if "python_version" in meta and requires and str(meta["python_version"]) + ".0" not in SpecifierSet(requires):
        errors.append(f"README.md header: python_version {meta['python_version']} is outside requires-python {requires}")
    return errors


def _requires_python() -> str | None:
    path = PROJECT / "pyproject.toml"
    return tomllib.loads(path.read_text())["project"].get("requires-python") if path.is_file() else None


def check_checkpoints(folder: Path) -> list[str]:
    """Every staged checkpoint loads (sha256 included) and carries an up-to-date card."""
    root = folder / "checkpoints"
    errors = [err for _, err in checkpoints.verify(root) + checkpoints.verify(root / "seeds") if err]
    errors += [f"{f.relative_to(folder) / cards.CARD} is missing or out of date: run resnet-lab-cards"
               for f in cards.stale(root)]
    return errors


def check(staged: Staged) -> Staged:
    staged.errors = check_header(staged.root) + check_checkpoints(staged.root) + lfs_problems(staged)
    return staged


def stage(dest, root=PROJECT) -> Staged:
    """Copy the Space's file set from root into the empty folder dest, add its requirements.txt and
    .gitattributes, and run the checks (Staged.errors)."""
    root = Path(root)
    if not (root / "app.py").is_file() or not (root / "requirements.txt").is_file():
        raise SystemExit(f"{root} is not a resnet-lab checkout (no app.py or requirements.txt): deploy from a clone "
                         "installed with `pip install -e .`")
    requirements = space_requirements((root / "requirements.txt").read_text())
    return check(copy_files(space_files(root), dest, {"requirements.txt": requirements}))


def _commit(root: Path) -> str:
    """The repository's commit (with "+changes" if its tree differs), for the upload's message."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    except OSError:
        return "(no git)"
    return (head.stdout.strip() or "(no git)") + (" +changes" if dirty.stdout.strip() else "")


def deploy(repo_id: str, dest, root=PROJECT, dry_run: bool = False, private: bool = False, api=None) -> str | None:
    """Stage into dest, check, and (unless dry_run) create the Space and upload in one commit; returns
    the commit URL. `api` is a huggingface_hub.HfApi (made here when None)."""
    return upload(stage(dest, root), repo_id, "space", f"Deploy resnet-lab {_commit(Path(root))}", dry_run, private, api,
                  space_sdk="gradio")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="resnet-lab-deploy", description="Deploy the app to a Hugging Face Space.")
    ap.add_argument("repo_id", help="the Space, USER/NAME (created with the Gradio SDK if it does not exist)")
    ap.add_argument("--dry-run", action="store_true", help="stage and check, print the files; upload nothing (offline)")
    ap.add_argument("--private", action="store_true", help="create the Space private")
    ap.add_argument("--stage", metavar="DIR", help="stage into DIR (empty or new) and keep it, e.g. to push it with git")
    args = ap.parse_args(argv)
    if args.stage:
        if Path(args.stage).exists() and any(Path(args.stage).iterdir()):
            raise SystemExit(f"--stage {args.stage}: the folder is not empty (stage into an empty or new folder)")
        deploy(args.repo_id, args.stage, dry_run=args.dry_run, private=args.private)
        return
    with tempfile.TemporaryDirectory(prefix="resnet-lab-space-") as tmp:
        deploy(args.repo_id, tmp, dry_run=args.dry_run, private=args.private)


if __name__ == "__main__":
    main()
