"""Common corruptions of CIFAR-10 images at 5 severities, after CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019).

    corrupt(images, name, severity, seed=0) -> images   # uint8 N x 3 x S x S (or 3 x S x S) in, same out

CORRUPTIONS holds each corruption as data: its CIFAR-10-C file name, title, family, what its
parameter is, and its 5 levels, which are the published CIFAR-10-C ones (the `make_cifar_c.py`
script of github.com/hendrycks/robustness, ImageNet-C/create_c/). The images are computed as
that script does: to [0, 1], corrupt, clip, x 255, truncated to uint8 (its np.uint8). Pixelate and
JPEG work on the 8-bit image with PIL, as published. The rest run in torch and torchvision
(transforms.v2.functional.gaussian_blur) instead of scikit-image, OpenCV and SciPy, and give the
same images up to float rounding (a value that lands on a whole number may truncate to one less);
where more than that differs, `differs` says how. Not generated here: glass blur, motion blur
(ImageMagick), snow, frost (photographs), fog, spatter and saturate. The official set is
core/engine/cifar10c.py.

Randomness comes only from a torch.Generator seeded with `seed` (so the images are not CIFAR-10-C's
own draws), and the draws do not depend on the severity (common random numbers): the same seed
gives the same noise at every severity, scaled up, so a severity slider moves one corruption rather
than drawing a new one. Held by tests/test_corruptions.py: every corruption at every severity
returns uint8 images of the input's shape; each is deterministic for a seed (and the random ones
change with it, and keep their draws across severities); the mean PSNR against the clean images
falls as the severity rises (elastic excepted: its published levels trade affine jitter for local
warping, which the tests hold instead); the blurs and the elastic warp match SciPy's ndimage as the
published script used it, brightness matches colorsys's HSV, and the noises their published
moments.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as nnf
from PIL import Image
from torchvision.transforms.v2 import functional as tvf

SEVERITIES = (1, 2, 3, 4, 5)
CHUNK = 64  # images corrupted at once: a float64 17x17 convolution unfolds 2.4 MB per image
SOURCE = "CIFAR-10-C, Hendrycks & Dietterich (ICLR 2019): make_cifar_c.py, github.com/hendrycks/robustness"


@dataclass(frozen=True)
class Corruption:
    name: str  # the CIFAR-10-C file stem
    title: str
    family: str  # noise, blur, weather, digital (core.engine.cifar10c.FAMILY, as in the paper's Fig. 1)
    parameter: str  # what each level is
    levels: tuple  # severities 1..5
    fn: Callable  # (x float N x 3 x H x W in [0, 1] or uint8 for PIL ones, level, generator) -> image
    random: bool = False
    pil: bool = False  # works on the 8-bit image, as published
    differs: str = ""  # how this implementation differs from the published one, if at all


def _gaussian_noise(x, c, g):
    return x + c * torch.randn(x.shape, generator=g)


def _shot_noise(x, c, g):
    """Poisson(x c) / c, sampled by inverting the CDF at one uniform draw per value (so the draws are
    the same at every severity): the least k with P(K <= k) = Q(k + 1, x c) >= u, by bisection."""
    lam, u = x * c, torch.rand(x.shape, generator=g, dtype=x.dtype)
    lo, hi = torch.zeros_like(lam), torch.full_like(lam, 1024.0)  # x c <= 500: P(K > 1024) < 1e-60
    for _ in range(11):
        mid = torch.floor((lo + hi) / 2)
        enough = torch.special.gammaincc(mid + 1, lam) >= u
        hi, lo = torch.where(enough, mid, hi), torch.where(enough, lo, mid + 1)
    return lo / c


def _impulse_noise(x, c, g):
    flip, salt = torch.rand(x.shape, generator=g), torch.rand(x.shape, generator=g) < 0.5
    return torch.where(flip < c, salt.to(x.dtype), x)  # each value flipped w.p. c, to 0 or 1 evenly


def _speckle_noise(x, c, g):
    return x + x * c * torch.randn(x.shape, generator=g)


def _conv(x, kernel, pad_mode, pad):
    """Each channel correlated with the 2-D `kernel`, the borders padded by `pad` in `pad_mode`."""
    k = kernel.to(x.dtype)[None, None].repeat(x.shape[1], 1, 1, 1)
    return nnf.conv2d(nnf.pad(x, [pad] * 4, mode=pad_mode), k, groups=x.shape[1])


def _gauss1d(sigma, radius):
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _defocus_blur(x, c, g):
    radius, alias = c
    span = torch.arange(-8, 9, dtype=torch.float64)  # the published disk: radius <= 8, a 17 x 17 grid
    disk = ((span[:, None] ** 2 + span[None, :] ** 2) <= radius ** 2).double()
    disk = disk / disk.sum()
    k3 = _gauss1d(alias, 1)
    disk = _conv(disk[None, None], k3[:, None] * k3[None, :], "reflect", 1)[0, 0]  # its 3x3 antialiasing
    return _conv(x, disk, "reflect", 8)  # reflect = OpenCV's default border (reflect-101)


def _gaussian_blur(x, c, g):
    r = int(4 * c + 0.5)  # scikit-image's truncate=4; its border mode "nearest" = replicate
    padded = nnf.pad(x, [r] * 4, mode="replicate")
    return tvf.gaussian_blur(padded, [2 * r + 1] * 2, [c, c])[..., r:-r, r:-r]


def _zoom_blur(x, c, g):
    h = x.shape[-1]
    out = torch.zeros_like(x)
    zooms = np.arange(1, c, 0.01)  # as published, float for float
    for z in zooms:  # clipped zoom: the centre ceil(h/z) square, scaled by z (linear, corners fixed), centre h kept
        ch = int(math.ceil(h / z))
        top = (h - ch) // 2
        size = int(round(ch * z))
        big = nnf.interpolate(x[..., top:top + ch, top:top + ch], size=(size, size), mode="bilinear",
                              align_corners=True)
        trim = (size - h) // 2
        out += big[..., trim:trim + h, trim:trim + h]
    return (x + out) / (len(zooms) + 1)


def _brightness(x, c, g):
    v = x.amax(1, keepdim=True)  # HSV's value; adding c to it at fixed hue and saturation scales RGB
    v_new = (v + c).clamp(0, 1)
    return torch.where(v > 0, x * v_new / v.clamp_min(1e-12), v_new.expand_as(x))


def _contrast(x, c, g):
    mean = x.mean((2, 3), keepdim=True)
    return (x - mean) * c + mean


def _pixelate(img: Image.Image, c, g):
    w, h = img.size
    return img.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.BOX)


def _jpeg(img: Image.Image, c, g):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=c)
    return Image.open(buf).convert("RGB")


def _blur_field(u, sigma, truncate=3.0):
    """u (N x 2 x H x W) smoothed by a Gaussian of `sigma` px, borders mirrored (scikit-image's "reflect")."""
    if sigma <= 0:
        return u
    r = int(truncate * sigma + 0.5)
    padded = torch.from_numpy(np.pad(u.numpy(), ((0, 0), (0, 0), (r, r), (r, r)), mode="symmetric"))
    k = _gauss1d(sigma, r).to(u.dtype)
    n, ch, h, w = padded.shape
    rows = nnf.conv2d(padded.reshape(n * ch, 1, h, w), k.view(1, 1, -1, 1))
    return nnf.conv2d(rows, k.view(1, 1, 1, -1)).reshape(n, ch, h - 2 * r, w - 2 * r)


def _sample(x, sx, sy, align_corners):
    """x sampled bilinearly at pixel coordinates (sx, sy), each N x H x W, borders mirrored."""
    h, w = x.shape[-2:]
    if align_corners:  # mirrored about the edge pixels (OpenCV's reflect-101)
        grid = torch.stack([sx / (w - 1), sy / (h - 1)], -1) * 2 - 1
    else:  # mirrored about the image edges (SciPy's "reflect")
        grid = torch.stack([(sx + 0.5) / w, (sy + 0.5) / h], -1) * 2 - 1
    return nnf.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection",
                           align_corners=align_corners)


def _elastic(x, c, g):
    alpha, sigma, shift = c
    n, _, h, w = x.shape
    centre, half = h // 2, min(h, w) // 3
    src = torch.tensor([[centre + half, centre + half], [centre + half, centre - half],
                        [centre - half, centre - half]], dtype=torch.float64)
    dst = src + shift * (torch.rand((n, 3, 2), generator=g, dtype=torch.float64) * 2 - 1)
    # the affine map taking the three points src to dst, inverted: where each output pixel comes from
    ones = torch.ones(n, 3, 1, dtype=torch.float64)
    back = torch.linalg.solve(torch.cat([dst, ones], 2), src.expand(n, 3, 2))  # (x, y, 1) @ back = source
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3) @ back
    x = _sample(x, pts[..., 0].reshape(n, h, w), pts[..., 1].reshape(n, h, w), align_corners=True)
    d = alpha * _blur_field(torch.rand((n, 2, h, w), generator=g, dtype=torch.float64) * 2 - 1, sigma)
    return _sample(x, xs + d[:, 0], ys + d[:, 1], align_corners=False)


CORRUPTIONS = {c.name: c for c in (
    Corruption("gaussian_noise", "Gaussian noise", "noise", "σ of the added noise (0–1 scale)",
               (0.04, 0.06, 0.08, 0.09, 0.10), _gaussian_noise, random=True),
    Corruption("shot_noise", "Shot noise", "noise", "photons per unit intensity (Poisson; fewer: noisier)",
               (500, 250, 100, 75, 50), _shot_noise, random=True),
    Corruption("impulse_noise", "Impulse noise", "noise", "fraction of values set to 0 or 1 (salt and pepper)",
               (0.01, 0.02, 0.03, 0.05, 0.07), _impulse_noise, random=True),
    Corruption("speckle_noise", "Speckle noise", "noise", "σ of the multiplicative noise",
               (0.06, 0.10, 0.12, 0.16, 0.20), _speckle_noise, random=True),
    Corruption("defocus_blur", "Defocus blur", "blur", "(disk radius px, antialiasing σ)",
               ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)), _defocus_blur),
    Corruption("zoom_blur", "Zoom blur", "blur", "zooms averaged: 1, 1.01, … below this (np.arange(1, end, 0.01))",
               (1.06, 1.11, 1.16, 1.21, 1.26), _zoom_blur),
    Corruption("gaussian_blur", "Gaussian blur", "blur", "σ of the Gaussian (px)",
               (0.4, 0.6, 0.7, 0.8, 1.0), _gaussian_blur),
    Corruption("brightness", "Brightness", "weather", "added to HSV value",
               (0.05, 0.10, 0.15, 0.20, 0.30), _brightness),
    Corruption("contrast", "Contrast", "digital", "factor on each channel's distance from its mean",
               (0.75, 0.5, 0.4, 0.3, 0.15), _contrast),
    Corruption("elastic_transform", "Elastic", "digital",
               "(displacement α px, its smoothing σ px, affine jitter px)",
               ((0.0, 0.0, 2.56), (1.6, 6.4, 2.24), (2.56, 1.92, 1.92), (3.2, 1.28, 1.6), (3.2, 0.96, 0.96)),
               _elastic, random=True,
               differs="the affine step is exact bilinear (torch's grid_sample, as SciPy's would be); OpenCV's "
                       "warpAffine, used in the published script, interpolates at 1/32-pixel steps"),
    Corruption("pixelate", "Pixelate", "digital", "scale of the box downsampling", (0.95, 0.9, 0.85, 0.75, 0.65),
               _pixelate, pil=True),
    Corruption("jpeg_compression", "JPEG", "digital", "JPEG quality (PIL)", (80, 65, 58, 50, 40), _jpeg, pil=True),
)}


def level(name: str, severity: int):
    """The published parameter of `name` at `severity` (1-5); a ValueError names a bad one."""
    if not isinstance(name, str) or name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)}")
    try:
        whole = not isinstance(severity, bool) and int(severity) == severity
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or int(severity) not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    return CORRUPTIONS[name].levels[int(severity) - 1]


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Square uint8 images (N x 3 x S x S, or one 3 x S x S; CIFAR's S = 32, for which the levels were
    made) corrupted by `name` at `severity` (1-5), the same shape and dtype; a pure function of
    (images, name, severity, seed)."""
    c = level(name, severity)
    spec = CORRUPTIONS[name]
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-3] != 3 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"expected square uint8 images of shape (N, 3, S, S) or (3, S, S), got {arr.dtype} {arr.shape}")
    batch = arr[None] if arr.ndim == 3 else arr
    g = torch.Generator().manual_seed(int(seed))
    if spec.pil:
        out = np.stack([np.asarray(spec.fn(Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0))), c, g))
                        .transpose(2, 0, 1) for im in batch])
    else:  # CHUNK images at a time, one generator throughout: float64 convolutions unfold their input
        chunks = []
        for i in range(0, len(batch), CHUNK):
            x = torch.from_numpy(np.ascontiguousarray(batch[i:i + CHUNK])).to(torch.float64) / 255
            chunks.append(torch.floor(spec.fn(x, c, g).clamp(0, 1) * 255).to(torch.uint8).numpy())
        out = np.concatenate(chunks)
    return np.ascontiguousarray(out[0] if arr.ndim == 3 else out)


def table() -> list[dict]:
    """One row per corruption: name, title, family, parameter, its 5 levels, how ours differs."""
    return [{"name": c.name, "title": c.title, "family": c.family, "parameter": c.parameter,
             "levels": [list(v) if isinstance(v, tuple) else v for v in c.levels], "differs": c.differs}
            for c in CORRUPTIONS.values()]
