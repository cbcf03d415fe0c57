"""Regenerate the example images in this folder (see README.md for sources and licences).

    python assets/examples/make_examples.py                      # the 10 CIFAR-10 test images
    python assets/examples/make_examples.py --skimage-data DIR   # also the photos, from skimage/data/

cifar_<class>.png: the first test image of each class, 32x32 PNG, from the official binary test set.
photo_*.jpg: scikit-image sample photos (public domain / CC0), longer side at most 512 px, JPEG q90.
Get DIR offline-friendly: pip download --no-deps scikit-image -d /tmp/skw, unzip the wheel, and pass
its skimage/data folder.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from core.engine import data

HERE = Path(__file__).resolve().parent

PHOTOS = {  # output name: scikit-image file (all public domain or CC0, see README.md)
    "photo_cat.jpg": "chelsea.png",
    "photo_rocket.jpg": "rocket.jpg",
    "photo_astronaut.jpg": "astronaut.png",
    "photo_coffee.jpg": "coffee.png",
}
DRAWINGS = {"drawing_horse.png": "horse.png"}  # a silhouette: PNG, JPEG would smear its edges
MAX_SIDE = 512


def cifar(data_dir=None) -> None:
    images, labels = data.load_split("test", data_dir)
    for k, name in enumerate(data.CLASSES):
        i = int(np.flatnonzero(labels == k)[0])
        Image.fromarray(images[i].transpose(1, 2, 0)).save(HERE / f"cifar_{name}.png", optimize=True)
        print(f"cifar_{name}.png  <- test image #{i}")


def _shrink(img: Image.Image) -> Image.Image:
    if max(img.size) > MAX_SIDE:
        img = img.copy()
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return img


def photos(src: Path) -> None:
    for out, name in PHOTOS.items():
        img = _shrink(Image.open(src / name).convert("RGB"))
        img.save(HERE / out, "JPEG", quality=90, optimize=True)
        print(f"{out}  <- {name} {img.size}")
    for out, name in DRAWINGS.items():
        img = _shrink(Image.open(src / name).convert("L"))
        img.save(HERE / out, "PNG", optimize=True)
        print(f"{out}  <- {name} {img.size}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help="folder holding cifar-10-batches-bin (default: core.engine.data's search)")
    ap.add_argument("--skimage-data", type=Path, help="scikit-image's skimage/data folder, for the photos")
    args = ap.parse_args()
    cifar(args.data_dir)
    if args.skimage_data:
        photos(args.skimage_data)
