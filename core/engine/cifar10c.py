"""CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019), the official corrupted test set, read offline.

Layout: a folder `CIFAR-10-C/` holding `labels.npy` and one `<corruption>.npy` per corruption. Each
`<corruption>.npy` is uint8 of shape (50000, 32, 32, 3) (HWC): rows [(s-1)*10000, s*10000) are the
10,000 CIFAR-10 test images, in test-set order, at severity s = 1..5. `labels.npy` is uint8 (older
copies: int64) of shape (50000,), the test labels repeated 5 times. 19 corruptions: the 15 of the
benchmark (BENCHMARK, in the paper's order) and 4 extra ones (EXTRA).

Source: Zenodo record 2535967, https://zenodo.org/records/2535967/files/CIFAR-10-C.tar (2,918,471,680
bytes; MD5 as listed on the Zenodo record: 56bf5dcef84df0e2308c6dcbcbbd8499).
`python -m core.engine.data download --cifar10c [DIR]` fetches and unpacks it into DIR/CIFAR-10-C.
The set is optional: find() returns None when it is absent.

Looked for as <root>/CIFAR-10-C, root being --data-dir, else $CIFAR10_DIR, else data/ at the project
root (as core.engine.data.find_data_dir; a root that is cifar-10-batches-bin itself means its parent).

Claims held by tests/test_cifar10c.py (on a fake set in the official layout and shapes): find()
resolves data_dir, $CIFAR10_DIR and the folder itself, None when absent; available() lists the
present corruptions in CORRUPTIONS order, none without labels.npy; load() returns exactly the first
n images of the asked severity as contiguous uint8 N x 3 x 32 x 32 (CHW, transposed from HWC) with
their int64 labels; every bad input (corruption, severity, n, missing file, wrong dtype or shape,
bad labels) raises one OfficialSetError naming the file and what was wrong.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.settings import data_root

DIRNAME = "CIFAR-10-C"
URL = "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar"
TAR_MD5 = "56bf5dcef84df0e2308c6dcbcbbd8499"  # as listed on the Zenodo record
PER_SEVERITY = 10_000
SEVERITIES = (1, 2, 3, 4, 5)
SHAPE = (PER_SEVERITY * len(SEVERITIES), 32, 32, 3)  # every <corruption>.npy, uint8, HWC
BENCHMARK = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
             "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
             "elastic_transform", "pixelate", "jpeg_compression")
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
CORRUPTIONS = BENCHMARK + EXTRA
FAMILY = {  # the paper's four groups (Fig. 1); the extra ones by kind
    **dict.fromkeys(("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"), "noise"),
    **dict.fromkeys(("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"), "blur"),
    **dict.fromkeys(("snow", "frost", "fog", "brightness", "spatter"), "weather"),
    **dict.fromkeys(("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"), "digital"),
}


class OfficialSetError(ValueError):
    pass


def find(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The CIFAR-10-C folder under data_dir, else $CIFAR10_DIR, else <project>/data; None if absent."""
    root = data_root(data_dir)
    if root.name == "cifar-10-batches-bin":
        root = root.parent
    folder = root if root.name == DIRNAME else root / DIRNAME
    return folder if folder.is_dir() else None


def available(folder: str | os.PathLike) -> list[str]:
    """The corruptions (in CORRUPTIONS order) whose .npy is in folder; [] without labels.npy."""
    folder = Path(folder)
    if not (folder / "labels.npy").is_file():
        return []
    return [c for c in CORRUPTIONS if (folder / f"{c}.npy").is_file()]


def _open(path: Path) -> np.ndarray:
    """A memory map of the .npy at path (never unpickled), or an OfficialSetError saying why not."""
    if not path.is_file():
        raise OfficialSetError(f"{path}: missing; fetch it with `python -m core.engine.data download --cifar10c`")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise OfficialSetError(f"{path}: not a readable .npy array ({e})") from None


def _labels(path: Path) -> np.ndarray:
    """The first severity block of labels.npy as int64, after checking the whole (small) file."""
    lab = _open(path)
    if lab.shape != (SHAPE[0],) or lab.dtype.kind not in "iu":
        raise OfficialSetError(f"{path}: expected integer labels of shape ({SHAPE[0]},), found {lab.dtype} {lab.shape}")
    blocks = np.asarray(lab).astype(np.int64).reshape(len(SEVERITIES), PER_SEVERITY)
    if not (blocks == blocks[0]).all():
        raise OfficialSetError(f"{path}: the {len(SEVERITIES)} severity blocks of labels differ "
                               "(expected one block of test labels repeated)")
    if blocks.min() < 0 or blocks.max() > 9:
        raise OfficialSetError(f"{path}: labels outside 0..9 (found {blocks.min()}..{blocks.max()})")
    return blocks[0]


def load(folder: str | os.PathLike, corruption: str, severity: int, n: int | None = None):
    """(images uint8 N x 3 x 32 x 32, labels int64 N): the first n (default all 10,000) test images
    at this corruption and severity (1..5); only those rows are read from the file."""
    folder = Path(folder)
    path = folder / f"{corruption}.npy"
    if corruption not in CORRUPTIONS:
        raise OfficialSetError(f"{path}: unknown corruption {corruption!r}; choose one of {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise OfficialSetError(f"{path}: severity {severity!r} is not one of {SEVERITIES}")
    n = PER_SEVERITY if n is None else n
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= PER_SEVERITY:
        raise OfficialSetError(f"{path}: n={n!r} images asked for; it must be in 1..{PER_SEVERITY}")
    labels = _labels(folder / "labels.npy")[:n]
    arr = _open(path)
    if arr.dtype != np.uint8 or arr.shape != SHAPE:
        raise OfficialSetError(f"{path}: expected uint8 of shape {SHAPE} (HWC), found {arr.dtype} of shape {arr.shape}")
    start = (int(severity) - 1) * PER_SEVERITY
    images = np.ascontiguousarray(arr[start:start + n].transpose(0, 3, 1, 2))
    del arr  # closes the memory map
    return images, labels.copy()


def download(dest: str | os.PathLike) -> Path:
    """Fetch and unpack the official tarball (2.9 GB, MD5-checked) into dest/CIFAR-10-C."""
    from torchvision.datasets.utils import download_and_extract_archive  # network only when called

    dest = Path(dest)
    download_and_extract_archive(URL, str(dest), filename="CIFAR-10-C.tar", md5=TAR_MD5)
    folder = dest / DIRNAME
    print(f"CIFAR-10-C ready in {folder} ({len(available(folder))} of {len(CORRUPTIONS)} corruptions)")
    return folder
