"""Stage CIFAR-10 for a GPU lease in carry folders that fit beside this project's tree.

    python -m tools.stage plan [--src ../shared/cifar10] [--limit-mib 64] [--margin-mib 1.5]
    python -m tools.stage unpack data --src .stage-3            # on the device, one call per folder

A device call carries the working tree (tracked and untracked, not ignored, files) and its carry paths,
64 MiB in all. ../shared/cifar10/device-stage splits CIFAR-10 by whole batches, two per call, which no
longer fits: one batch's lossless WebP mosaic is about 16.3 MiB, and the tree is past 47 MiB since
checkpoints/.unfinished holds optimiser states. `plan` measures the tree (git ls-files), cuts every
batch's 3200 x 3200 mosaic (row k holds images 100k to 100k + 99) into bands of whole rows, re-encoded as
lossless WebP (the pixels are exactly the same), packs the bands into folders .stage-1, .stage-2, ...
(ignored by .gitignore's /.stage-*/) that each fit `limit - tree - margin`, and prints the calls.

`unpack` keeps each band's records in DIR/.stage/ (data/ is ignored, so it stays on the warm machine
between calls) and, once a batch's 100 rows are all there, writes DIR/cifar-10-batches-bin/NAME.bin and
batches.meta.txt, checked against the official MD5 (core.engine.data.MD5; it exits 1 on a mismatch, as
the shared unpack.py does). Needs numpy, Pillow and core.engine.data (torch): the device has them.
tests/test_stage.py holds: the bands of a mosaic rebuild its .bin byte for byte; every folder fits.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from core.engine.data import CLASSES, MD5, TEST_FILES, TRAIN_FILES

ROOT = Path(__file__).resolve().parent.parent

BATCHES = [f.removesuffix(".bin") for f in TRAIN_FILES + TEST_FILES]
ROWS, MIB = 100, 1 << 20  # rows of 100 images per mosaic


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of what a device call carries besides its carry paths: tracked and untracked, not ignored, files."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True).stdout
    return sum((root / p).stat().st_size for p in out.decode().split("\0") if p and (root / p).is_file())


def bands(src: Path, name: str, rows: int):
    """(first row, last row + 1, lossless WebP bytes, label bytes) of each band of `rows` rows of a mosaic."""
    mosaic = Image.open(src / f"{name}.webp").convert("RGB")
    labels = (src / f"{name}.labels").read_bytes()
    for a in range(0, ROWS, rows):
        b = min(a + rows, ROWS)
        buf = io.BytesIO()
        mosaic.crop((0, 32 * a, 3200, 32 * b)).save(buf, "WEBP", lossless=True, quality=100, method=4)
        yield a, b, buf.getvalue(), labels[100 * a:100 * b]


def plan(src: Path, out: Path, room: int, rows: int, names=BATCHES) -> list[Path]:
    """Write the bands of every batch (of `names`) into folders out/.stage-N of at most `room` bytes each."""
    for old in out.glob(".stage-*"):
        shutil.rmtree(old)
    folders, size = [], room
    for name in names:
        for a, b, webp, labels in bands(src, name, rows):
            if len(webp) + len(labels) > room:
                raise SystemExit(f"a band of {rows} rows is {len(webp) / MIB:.1f} MiB, more than the "
                                 f"{room / MIB:.1f} MiB left beside the tree: use --rows {max(rows // 2, 1)}")
            if size + len(webp) + len(labels) > room:
                folders.append(out / f".stage-{len(folders) + 1}")
                folders[-1].mkdir()
                size = 0
            (folders[-1] / f"{name}.{a:02d}-{b:02d}.webp").write_bytes(webp)
            (folders[-1] / f"{name}.{a:02d}-{b:02d}.labels").write_bytes(labels)
            size += len(webp) + len(labels)
    return folders


def records(webp: Path, labels: Path) -> bytes:
    """The .bin records of one band: per image 1 label byte, then 1024 R, 1024 G, 1024 B bytes."""
    band = np.asarray(Image.open(webp).convert("RGB"))
    n = band.shape[0] // 32 * 100
    images = band.reshape(-1, 32, 100, 32, 3).transpose(0, 2, 4, 1, 3).reshape(n, 3072)
    return np.concatenate([np.frombuffer(labels.read_bytes(), np.uint8).reshape(n, 1), images], axis=1).tobytes()


def unpack(out: Path, src: Path, md5: dict = MD5) -> bool:
    """Keep src's bands in out/.stage/; write each batch whose rows are all there, if its MD5 (md5[NAME.bin])
    matches. True if every written batch matched."""
    parts, dest = out / ".stage", out / "cifar-10-batches-bin"
    parts.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n\n")
    for webp in sorted(src.glob("*.webp")):
        (parts / f"{webp.stem}.part").write_bytes(records(webp, webp.with_suffix(".labels")))
    ok = True
    for name in BATCHES:
        got = sorted(parts.glob(f"{name}.*.part"))
        spans = [tuple(int(v) for v in p.stem.split(".")[1].split("-")) for p in got]
        if not spans or [a for a, _ in spans] != [0] + [b for _, b in spans[:-1]] or spans[-1][1] != ROWS:
            continue  # not all of this batch yet
        raw = b"".join(p.read_bytes() for p in got)
        if hashlib.md5(raw).hexdigest() != md5[f"{name}.bin"]:
            print(f"{name}.bin: MD5 mismatch", file=sys.stderr)
            ok = False
            continue
        (dest / f"{name}.bin.tmp").write_bytes(raw)
        (dest / f"{name}.bin.tmp").replace(dest / f"{name}.bin")
        for p in got:
            p.unlink()
        print(f"{name}.bin written, MD5 ok")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["plan", "unpack"])
    ap.add_argument("dir", nargs="?", default="data", help="unpack: where cifar-10-batches-bin/ goes")
    ap.add_argument("--src", help="plan: the shared CIFAR-10 folder (../shared/cifar10); unpack: a .stage-N folder")
    ap.add_argument("--limit-mib", type=float, default=64, help="what one device call carries in all")
    ap.add_argument("--margin-mib", type=float, default=1.5, help="left free for files made before the call")
    ap.add_argument("--rows", type=int, default=10, help="mosaic rows (of 100 images) per band")
    a = ap.parse_args(argv)
    if a.command == "unpack":
        sys.exit(0 if unpack(Path(a.dir), Path(a.src)) else 1)
    src = Path(a.src or ROOT.parent / "shared" / "cifar10")
    tree = tree_bytes()
    room = int((a.limit_mib - a.margin_mib) * MIB) - tree
    folders = plan(src, ROOT, room, a.rows)
    print(f"tree {tree / MIB:.1f} MiB, {room / MIB:.1f} MiB left per call -> {len(folders)} calls, back to back:")
    for i, f in enumerate(folders, 1):
        size = sum(p.stat().st_size for p in f.iterdir()) / MIB
        tail = " && <your job>" if i == len(folders) else ""
        print(f"  call {i}: carry [\"{f.name}\"] ({size:.1f} MiB): python -m tools.stage unpack data --src {f.name}{tail}")


if __name__ == "__main__":
    main()
