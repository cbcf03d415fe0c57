"""A staged folder, checked before anything goes to the Hub.

The Hub stores binary files, and any file over 10 MiB, only through LFS/Xet. upload_folder does that
by itself; whoever pushes a staged folder with git needs its .gitattributes to say so, so every
staged folder carries GITATTRIBUTES and `lfs_problems` names each file no rule of it covers.
`listing` is the file list with sizes and the total that a dry run prints.
"""
from __future__ import annotations

import fnmatch
import shutil
from dataclasses import dataclass, field
from pathlib import Path

LARGE = 10 * 1024 * 1024  # bytes: past this the Hub takes a file only through LFS/Xet
LFS_PATTERNS = ("*.safetensors", "*.npz", "*.npy", "*.png", "*.jpg", "*.jpeg", "*.webp", "*.gif", "*.bmp",
                "*.tif", "*.tiff", "*.gz", "*.tar", "*.zip")
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS)


@dataclass
class Staged:
    """A staged folder: its files (relative path -> bytes) and what the checks found."""
    root: Path
    sizes: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.sizes.values())

    @property
    def large(self) -> list[str]:
        return [rel for rel, size in self.sizes.items() if size > LARGE]


def copy_files(pairs: list[tuple[Path, str]], dest, written: dict[str, str]) -> Staged:
    """Copy each (source file, relative path) under dest (which must be empty or absent), write the
    staged folder's own files ({relative path: text}) and .gitattributes, and list the result."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: stage into an empty folder")
    for src, rel in pairs:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    for rel, text in {**written, ".gitattributes": GITATTRIBUTES}.items():
        (dest / rel).write_text(text)
    return Staged(dest, sizes=file_sizes(dest))


def file_sizes(folder) -> dict[str, int]:
    """{relative posix path: size} of every file under folder, sorted."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def is_binary(path) -> bool:
    """git's test: a NUL byte in the first 8,000 bytes."""
    with open(path, "rb") as f:
        return b"\0" in f.read(8000)


def lfs_rules(text: str) -> list[str]:
    """The patterns of a .gitattributes text whose files go through LFS (filter=lfs)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            out.append(parts[0])
    return out


def matches(pattern: str, rel: str) -> bool:
    """gitattributes matching: a pattern without a slash matches the file name at any depth, one
    with a slash the path from the folder's root."""
    if "/" not in pattern.rstrip("/"):
        return fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pattern)
    return fnmatch.fnmatchcase(rel, pattern.lstrip("/"))


def lfs_problems(staged: Staged) -> list[str]:
    """Every binary file, and every file over 10 MiB, that no LFS rule of the folder's .gitattributes
    covers."""
    attributes = staged.root / ".gitattributes"
    if not attributes.is_file():
        return [f"{staged.root}: no .gitattributes (the LFS rules for its binary files)"]
    rules = lfs_rules(attributes.read_text())
    problems = []
    for rel, size in staged.sizes.items():
        why = "binary" if is_binary(staged.root / rel) else "over 10 MiB" if size > LARGE else None
        if why and not any(matches(p, rel) for p in rules):
            problems.append(f"{rel} ({why}) matches no LFS rule of .gitattributes")
    return problems


def human(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


def listing(staged: Staged) -> str:
    """The file list with sizes, the files over 10 MiB by name, and the total."""
    width = max((len(r) for r in staged.sizes), default=0)
    lines = [f"  {rel:<{width}}  {human(size):>10}" for rel, size in staged.sizes.items()]
    for rel in staged.large:
        lines.append(f"over 10 MiB (uploaded through LFS/Xet): {rel} ({human(staged.sizes[rel])})")
    lines.append(f"{len(staged.sizes)} files, {human(staged.total)} in all")
    return "\n".join(lines)


def report(staged: Staged, dry_run: bool) -> None:
    """Print the listing; stop with every error if the checks found any."""
    print(listing(staged))
    if staged.errors:
        raise SystemExit("the checks failed, so nothing was uploaded:\n" + "\n".join(f"  - {e}" for e in staged.errors))
    if dry_run:
        print("dry run: every check passed; nothing was uploaded")


def upload(staged: Staged, repo_id: str, repo_type: str, message: str, dry_run: bool = False, private: bool = False,
           api=None, **create) -> str | None:
    """Print the listing and stop on any check's error (report); unless dry_run, create the repo if it
    does not exist (create_repo's extra arguments in `create`) and upload the staged folder in one
    commit that deletes whatever else the repo held. Returns the commit URL. `api` is a
    huggingface_hub.HfApi (made here when None); a missing login or an HTTP error ends in one line."""
    report(staged, dry_run)
    if dry_run:
        return None
    if api is None:
        from huggingface_hub import HfApi
        api = HfApi()
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, private=private, **create)
        info = api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=str(staged.root), delete_patterns="*",
                                 commit_message=message)
    except LocalTokenNotFoundError:
        raise SystemExit("not logged in to the Hub: run `hf auth login` or set HF_TOKEN") from None
    except (HfHubHTTPError, OSError) as e:
        raise SystemExit(f"the upload to {repo_id} failed: {e}") from None
    print(f"uploaded {len(staged.sizes)} files to {url} ({info.commit_url})")
    return info.commit_url
