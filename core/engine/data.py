"""CIFAR-10, read offline from the official binary version, and batches augmented on the device.

Data: `cifar-10-batches-bin/` (data_batch_1..5.bin, test_batch.bin; 10,000 records of 3,073 bytes:
a label byte, then 1024 R, 1024 G, 1024 B bytes). Looked for in --data-dir, else $CIFAR10_DIR,
else data/ at the project root. Each file's size (30,730,000 bytes) is checked on load; MD5s on
request. `python -m core.engine.data download [DIR]` fetches the official tarball (MD5-checked);
with --cifar10c it also fetches CIFAR-10-C (core/engine/cifar10c.py) into DIR/CIFAR-10-C.

Checks held by tests/test_data.py: exactly 5,000 training and 1,000 test images per class; training
channel means [125.307, 122.950, 113.865] and stds [62.993, 62.089, 66.705] on the 0-255 scale.

Normalisation: per channel, (x - mean) / std with the training-set statistics above (0-255 scale). It is
recorded in every checkpoint's config.json, so inference always normalises as training did.
This differs from the paper, which subtracts the per-pixel mean image (docs/deviations.md, "Where we
differ from the paper"). Augmentation (paper, Sec. 4.2): pad 4 pixels on each side, take a random 32x32
crop, flip horizontally with probability 1/2. The padding is zeros after normalising, i.e. the
training set's mean colour (per channel), not a mean image (tests/test_deviations.py holds it).

TensorLoader keeps the whole set on one device as uint8 and augments each batch there: on a GPU
that is where training speed comes from; on the CPU it is the test path. Batch k of a run is a
pure function of (seed, k), so a resumed run sees exactly the batches an unbroken run would; with
shard=(r, W), rank r of a distributed run gets its W-th of that same batch (core/engine/distributed.py).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.settings import PROJECT, data_root

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
RECORD = 3073
IMAGES_PER_FILE = 10_000
FILE_BYTES = IMAGES_PER_FILE * RECORD
TEST_IMAGES = IMAGES_PER_FILE * len(TEST_FILES)  # 10,000
MD5 = {  # the official files, as listed in ../shared/cifar10/manifest.json
    "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
}
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
TARBALL_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
NORMALIZATION = {  # training-set channel statistics, 0-255 scale (checked by the tests)
    "kind": "per_channel",
    "mean": [125.307, 122.950, 113.865],
    "std": [62.993, 62.089, 66.705],
}
SPLITS = ("train", "test", "train45k", "val5k")  # the paper's 45k/5k split: first 45k / last 5k


class DataMissingError(FileNotFoundError):
    pass


def how_to_get(where: Path) -> str:
    return (
        f"CIFAR-10 (binary version) was not found in {where}. Get it with one of:\n"
        f"  python -m core.engine.data download {where.parent}"
        "      # online: fetches the official tarball, MD5-checked\n"
        "  python3 ../shared/cifar10/unpack.py data        # offline, from this project's shared folder\n"
        "or point --data-dir / $CIFAR10_DIR at a folder that holds cifar-10-batches-bin/."
    )


def find_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The cifar-10-batches-bin folder: from data_dir, else $CIFAR10_DIR, else <project>/data."""
    root = data_root(data_dir)
    if root.name != "cifar-10-batches-bin":
        root = root / "cifar-10-batches-bin"
    if not root.is_dir():
        raise DataMissingError(how_to_get(root))
    return root


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_batches(names, data_dir=None, check_md5: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read binary batch files -> (uint8 images N x 3 x 32 x 32, int64 labels N)."""
    root = find_data_dir(data_dir)
    parts = []
    for name in names:
        path = root / name
        if not path.is_file():
            raise DataMissingError(how_to_get(root) + f"\n(missing file: {path})")
        if path.stat().st_size != FILE_BYTES:
            raise ValueError(f"{path}: {path.stat().st_size} bytes, expected {FILE_BYTES}; re-fetch it")
        if check_md5 and _md5(path) != MD5[name]:
            raise ValueError(f"{path}: MD5 mismatch, expected {MD5[name]}; re-fetch it")
        parts.append(np.fromfile(path, np.uint8).reshape(-1, RECORD))
    raw = np.concatenate(parts)
    return raw[:, 1:].reshape(-1, 3, 32, 32).copy(), raw[:, 0].astype(np.int64)


def load_split(split: str = "train", data_dir=None, check_md5: bool = False):
    """(images uint8 N x 3 x 32 x 32, labels int64 N) for "train", "test", "train45k" or "val5k"."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if split == "test":
        return read_batches(TEST_FILES, data_dir, check_md5)
    x, y = read_batches(TRAIN_FILES, data_dir, check_md5)
    if split == "train45k":
        return x[:45_000], y[:45_000]
    if split == "val5k":
        return x[45_000:], y[45_000:]
    return x, y


@functools.lru_cache(maxsize=16)
def _stats(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Made once per device: a host-to-device copy per batch would stall the GPU every step."""
    return (torch.tensor(mean, device=device).view(1, 3, 1, 1), torch.tensor(std, device=device).view(1, 3, 1, 1))


def normalize(x_uint8: torch.Tensor, norm: dict = NORMALIZATION) -> torch.Tensor:
    """uint8 (N,3,H,W) on any device -> float32 normalised as recorded in a checkpoint config."""
    if norm.get("kind") != "per_channel":
        raise ValueError(f"unsupported normalisation {norm!r}")
    mean, std = _stats(tuple(norm["mean"]), tuple(norm["std"]), x_uint8.device)
    return (x_uint8.float() - mean) / std


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Pad `pad` zeros on each side, random crop back to size, random horizontal flip (per image)."""
    n, c, h, w = x.shape
    dev = x.device
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), device=dev, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=dev, generator=generator)
    flip = torch.rand(n, device=dev, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = dx[:, None] + torch.arange(w, device=dev)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    return xp[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None], rows, cols]


@dataclass
class TensorLoader:
    """Endless stream of (normalised images, labels) batches held on `device`.

    Epoch e is a permutation and an augmentation of the whole set, both seeded by (seed, e) and made
    in one go when the epoch starts (a few large ops instead of ~20 small ones per step: on a GPU the
    per-step launches, not the arithmetic, were the cost); a batch is then a slice. batch(k) is
    therefore the same whether a run was interrupted or not. Incomplete last batches of an epoch are
    dropped, as in iteration-based training. memory_format applies to the epoch tensor, so slices
    come out in it (channels_last for the GPU path). shard=(r, W): batch(k) is rows
    [r*B/W, (r+1)*B/W) of the unsharded batch k (each rank makes the whole epoch, the same on all).
    """

    images: np.ndarray | torch.Tensor
    labels: np.ndarray | torch.Tensor
    batch_size: int = 128
    device: str | torch.device = "cpu"
    augment: bool = True
    seed: int = 0
    norm: dict | None = None
    memory_format: torch.memory_format = torch.contiguous_format
    shard: tuple[int, int] = (0, 1)  # (this rank, number of ranks)

    def __post_init__(self):
        self.device = torch.device(self.device)
        self.x = torch.as_tensor(self.images).to(self.device)
        self.y = torch.as_tensor(self.labels).to(self.device)
        self.norm = self.norm or NORMALIZATION
        if len(self.x) < self.batch_size:
            raise ValueError(f"{len(self.x)} images is fewer than one batch of {self.batch_size}")
        rank, world = self.shard
        if self.batch_size % world or not 0 <= rank < world:
            raise ValueError(f"shard {self.shard}: a batch of {self.batch_size} does not split into {world} ranks")
        self._rows = self.batch_size // world
        self.steps_per_epoch = len(self.x) // self.batch_size
        self._epoch, self._ex, self._ey = -1, None, None
        self._gen = torch.Generator(device=self.device)

    def batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = divmod(k, self.steps_per_epoch)
        if epoch != self._epoch:
            self._ex = self._ey = None  # free the last epoch first
            self._gen.manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(len(self.x), device=self.device, generator=self._gen)
            x = normalize(self.x[perm], self.norm)
            if self.augment:
                x = augment(x, self._gen)
            self._ex, self._ey = x.contiguous(memory_format=self.memory_format), self.y[perm]
            self._epoch = epoch
        start = i * self.batch_size + self.shard[0] * self._rows
        sl = slice(start, start + self._rows)
        return self._ex[sl], self._ey[sl]


def eval_batches(images, labels, batch_size: int = 1000, device="cpu", norm: dict | None = None):
    """Yield (normalised images, labels) in order, without augmentation, for evaluation."""
    for i in range(0, len(images), batch_size):
        x = torch.as_tensor(images[i:i + batch_size]).to(device)
        yield normalize(x, norm or NORMALIZATION), torch.as_tensor(labels[i:i + batch_size]).to(device)


@functools.lru_cache(maxsize=4)
def load_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A small shipped batch of test images (uint8 N x 3 x 32 x 32, int64 labels) from an .npz that
    make_sample wrote (the app's is assets/cifar_test_sample.npz); read once per path."""
    with np.load(path) as z:
        return z["images"], z["labels"]


def make_sample(path: Path, per_class: int = 8, data_dir=None) -> Path:
    """Write the first `per_class` test images of every class, in test-set order, to `path` (.npz)."""
    x, y = load_split("test", data_dir)
    idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(len(CLASSES))]))
    np.savez_compressed(path, images=x[idx], labels=y[idx].astype(np.int64), test_indices=idx)
    return Path(path)


def download(dest: str | os.PathLike) -> Path:
    """Fetch and unpack the official binary tarball into dest/cifar-10-batches-bin (MD5-checked)."""
    from torchvision.datasets.utils import download_and_extract_archive  # network only when called

    dest = Path(dest)
    download_and_extract_archive(URL, str(dest), filename="cifar-10-binary.tar.gz", md5=TARBALL_MD5)
    x, y = load_split("train", dest, check_md5=True)
    load_split("test", dest, check_md5=True)
    print(f"CIFAR-10 ready in {dest / 'cifar-10-batches-bin'} ({len(x):,} train + 10,000 test images, MD5 ok)")
    return dest / "cifar-10-batches-bin"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m core.engine.data", description="CIFAR-10 data tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="fetch the official binary tarball (needs internet)")
    d.add_argument("dir", nargs="?", default=str(PROJECT / "data"))
    d.add_argument("--cifar10c", action="store_true", help="also fetch CIFAR-10-C, 2.9 GB, from Zenodo; MD5-checked")
    c = sub.add_parser("check", help="check sizes, MD5s and per-class counts of a local copy")
    c.add_argument("dir", nargs="?", default=None)
    m = sub.add_parser("sample", help="write the app's test sample (8 test images per class)")
    m.add_argument("--out", default=str(PROJECT / "assets" / "cifar_test_sample.npz"))
    m.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    if args.cmd == "download":
        download(args.dir)
        if args.cifar10c:
            from core.engine import cifar10c  # lazily: it is optional, and may import from this module
            cifar10c.download(args.dir)
        return
    if args.cmd == "sample":
        print(make_sample(Path(args.out), data_dir=args.data_dir))
        return
    try:
        for split in ("train", "test"):
            _, y = load_split(split, args.dir, check_md5=True)
            print(f"{split}: {len(y):,} images, per class {np.bincount(y, minlength=10).tolist()}, MD5 ok")
    except (DataMissingError, ValueError) as e:
        raise SystemExit(str(e)) from None


if __name__ == "__main__":
    main()
