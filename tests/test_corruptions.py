"""core/engine/corruptions.py: valid images at every severity, determinism, severity monotone, and the
published CIFAR-10-C formulas (SciPy's ndimage, which the published script used, as the reference
for the blurs and the elastic warp)."""
import colorsys
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage as ndi

from core.engine import cifar10c
from core.engine import corruptions as C
from core.engine.data import load_sample
from core.settings import Settings


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of uint8 images a against b (inf if identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)

NAMES = list(C.CORRUPTIONS)


@pytest.fixture(scope="module")
def sample():
    return load_sample(Settings().sample)[0]  # the 80 shipped test images, uint8 N x 3 x 32 x 32


def _floor(f_hwc):
    return np.floor(np.clip(f_hwc, 0, 1) * 255).astype(np.uint8).transpose(2, 0, 1)


@pytest.mark.parametrize("name", NAMES)
def test_every_severity_gives_uint8_images_of_the_input_shape(sample, name):
    for s in C.SEVERITIES:
        batch, one = C.corrupt(sample[:4], name, s), C.corrupt(sample[0], name, s)
        assert batch.dtype == one.dtype == np.uint8 and batch.shape == (4, 3, 32, 32) and one.shape == (3, 32, 32)
        if not C.CORRUPTIONS[name].random:  # image by image, the same as in a batch
            assert np.array_equal(one, batch[0])
        assert not np.array_equal(batch, sample[:4]), f"{name} {s} left the images as they were"


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(sample, name):
    a, b = C.corrupt(sample[:8], name, 3, seed=5), C.corrupt(sample[:8], name, 3, seed=5)
    assert np.array_equal(a, b)
    assert np.array_equal(C.corrupt(sample[:8], name, 3, seed=6), a) != C.CORRUPTIONS[name].random


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "speckle_noise"])
def test_noise_keeps_its_draws_across_severities(name):
    """Common random numbers: the noise at severity 1 and at 5 (same seed) is the same noise, scaled."""
    flat = np.full((3, 64, 64), 128, np.uint8)
    noise = [C.corrupt(flat, name, s, seed=2).astype(float).ravel() - 128 for s in (1, 5)]
    assert np.corrcoef(*noise)[0, 1] > 0.95, name
    other = C.corrupt(flat, name, 5, seed=3).astype(float).ravel() - 128
    assert abs(np.corrcoef(noise[1], other)[0, 1]) < 0.1  # another seed, other draws


def test_impulse_noise_flips_a_growing_set_of_the_same_values():
    flat = np.full((3, 64, 64), 128, np.uint8)
    one, five = C.corrupt(flat, "impulse_noise", 1, seed=2), C.corrupt(flat, "impulse_noise", 5, seed=2)
    hit = one != 128
    assert hit.any() and np.array_equal(one[hit], five[hit]) and (five != 128).sum() > 3 * hit.sum()


@pytest.mark.parametrize("name", [n for n in NAMES if n != "elastic_transform"])
def test_psnr_falls_as_severity_rises(sample, name):
    """Mean PSNR against the clean image over the 80 shipped test images: one image is not enough
    for pixelate (a 30-pixel box grid on a 32-pixel image can land worse than a 28-pixel one)."""
    mean = [np.mean([psnr(o, c) for o, c in zip(C.corrupt(sample, name, s), sample)]) for s in C.SEVERITIES]
    assert all(a > b for a, b in zip(mean, mean[1:])), f"{name}: {np.round(mean, 2)}"


def test_elastic_levels_trade_affine_jitter_for_local_warping():
    """The published elastic levels are not monotone in PSNR (its affine jitter falls from 2.56 to
    0.96 px while its local warp grows): what rises with severity is the local warp's RMS
    displacement, and the jitter falls."""
    u = torch.rand((64, 2, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    levels = [C.level("elastic_transform", s) for s in C.SEVERITIES]
    rms = [float(alpha * C._blur_field(u, sigma).pow(2).mean().sqrt()) for alpha, sigma, _ in levels]
    assert rms[0] == 0 and all(a < b for a, b in zip(rms, rms[1:])), rms
    assert all(a[2] > b[2] for a, b in zip(levels, levels[1:]))


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_blurs_match_scipy_as_published(sample, severity):
    im = sample[5]
    f = im.transpose(1, 2, 0) / 255.0
    sigma = C.level("gaussian_blur", severity)  # skimage.filters.gaussian: mode nearest, truncate 4
    assert np.array_equal(C.corrupt(im, "gaussian_blur", severity),
                          _floor(ndi.gaussian_filter(f, (sigma, sigma, 0), mode="nearest", truncate=4.0)))
    radius, alias = C.level("defocus_blur", severity)  # the published disk(), then cv2.filter2D (reflect-101)
    span = np.arange(-8, 9)
    disk = ((span[:, None] ** 2 + span[None, :] ** 2) <= radius ** 2).astype(float)
    k = np.exp(-0.5 * (np.arange(-1, 2) / alias) ** 2)
    disk = ndi.correlate(disk / disk.sum(), np.outer(k, k) / k.sum() ** 2, mode="mirror")
    ref = np.stack([ndi.correlate(f[..., c], disk, mode="mirror") for c in range(3)], -1)
    assert np.abs(C.corrupt(im, "defocus_blur", severity).astype(int) - _floor(ref)).max() <= 1
    zooms, out = np.arange(1, C.level("zoom_blur", severity), 0.01), np.zeros_like(f)
    for z in zooms:  # the published clipped_zoom
        ch = int(np.ceil(32 / z))
        top = (32 - ch) // 2
        big = ndi.zoom(f[top:top + ch, top:top + ch], (z, z, 1), order=1)
        trim = (big.shape[0] - 32) // 2
        out += big[trim:trim + 32, trim:trim + 32]
    assert np.abs(C.corrupt(im, "zoom_blur", severity).astype(int) - _floor((f + out) / (len(zooms) + 1))).max() <= 1


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_elastic_matches_scipy_with_the_same_draws(sample, severity):
    """The same random draws through SciPy: the affine step with mirrored borders (OpenCV's
    reflect-101), the field smoothed as skimage's gaussian(mode="reflect", truncate=3), and
    map_coordinates(order=1, mode="reflect"), as published."""
    im, seed = sample[7], 3
    alpha, sigma, shift = C.level("elastic_transform", severity)
    g = torch.Generator().manual_seed(seed)
    jitter = (torch.rand((1, 3, 2), generator=g, dtype=torch.float64) * 2 - 1).numpy()[0] * shift
    u = (torch.rand((1, 2, 32, 32), generator=g, dtype=torch.float64) * 2 - 1).numpy()[0]
    src = np.array([[26, 26], [26, 6], [6, 6]], float)
    back = np.linalg.solve(np.c_[src + jitter, np.ones(3)], src)
    ys, xs = np.mgrid[0:32, 0:32].astype(float)
    p = np.stack([xs, ys, np.ones_like(xs)], -1) @ back
    f = im.transpose(1, 2, 0) / 255.0
    warped = np.stack([ndi.map_coordinates(f[..., c], [p[..., 1], p[..., 0]], order=1, mode="mirror")
                       for c in range(3)], -1)
    d = [alpha * (ndi.gaussian_filter(u[i], sigma, mode="reflect", truncate=3) if sigma else u[i]) for i in (0, 1)]
    ref = np.stack([ndi.map_coordinates(warped[..., c], [ys + d[1], xs + d[0]], order=1, mode="reflect")
                    for c in range(3)], -1)
    assert np.abs(C.corrupt(im, "elastic_transform", severity, seed=seed).astype(int) - _floor(ref)).max() <= 1


def test_brightness_is_hsv_value_plus_c():
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
    im[:, 0, 0] = 0  # black: no hue, becomes grey
    for s in C.SEVERITIES:
        c, out = C.level("brightness", s), C.corrupt(im, "brightness", s)
        for i, j in [(0, 0), (3, 4), (17, 30), (31, 31)]:
            h, sat, v = colorsys.rgb_to_hsv(*(im[:, i, j] / 255.0))
            want = np.floor(np.clip(colorsys.hsv_to_rgb(h, sat, min(v + c, 1.0)), 0, 1) * 255)
            assert np.abs(out[:, i, j].astype(int) - want).max() <= 1


def test_contrast_and_noise_follow_the_published_formulas():
    grey = np.full((3, 32, 32), 128, np.uint8)
    grey[0, :16] = 64
    out = C.corrupt(grey, "contrast", 2).astype(float)  # factor 0.5 around each channel's mean
    assert out[0, 0, 0] in (79, 80) and out[0, 20, 0] in (111, 112) and out[1, 5, 5] in (127, 128)  # 80, 112, 128; truncated
    flat = np.full((3, 64, 64), 128, np.uint8)
    for name, want in [("gaussian_noise", lambda c: c), ("shot_noise", lambda c: np.sqrt(128 / 255 / c)),
                       ("speckle_noise", lambda c: 128 / 255 * c)]:
        for s in (1, 5):
            c = C.level(name, s)
            assert np.std(C.corrupt(flat, name, s) / 255.0) == pytest.approx(want(c), rel=0.08), (name, s)
    big = np.full((3, 128, 128), 128, np.uint8)  # 49,152 values: the fraction flipped within 3 standard errors
    changed = [np.mean(C.corrupt(big, "impulse_noise", s) != 128) for s in C.SEVERITIES]
    assert changed == pytest.approx([C.level("impulse_noise", s) for s in C.SEVERITIES], rel=0.15)


def test_pixelate_and_jpeg_are_pils_as_published(sample):
    im = sample[2]
    pil = Image.fromarray(im.transpose(1, 2, 0))
    small = pil.resize((27, 27), Image.BOX).resize((32, 32), Image.BOX)  # 0.85 x 32 -> 27
    assert np.array_equal(C.corrupt(im, "pixelate", 3), np.asarray(small).transpose(2, 0, 1))
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=40)
    assert np.array_equal(C.corrupt(im, "jpeg_compression", 5), np.asarray(Image.open(buf)).transpose(2, 0, 1))


@pytest.mark.parametrize("args", [("fog", 1), ("blur", 1), ("contrast", 0), ("contrast", 6), ("contrast", 2.5),
                                  ("contrast", True), ("contrast", "3"), ("contrast", None)])
def test_bad_arguments_are_refused_by_name(sample, args):
    with pytest.raises(ValueError, match="corruption|severity"):
        C.corrupt(sample[0], *args)


def test_bad_images_are_refused(sample):
    for bad in (sample[0].astype(np.float32), sample[0][:1], np.zeros((32, 32, 3), np.uint8)):
        with pytest.raises(ValueError, match="uint8 images"):
            C.corrupt(bad, "contrast", 1)


def test_table_lists_every_corruption_with_five_levels():
    rows = C.table()
    assert [r["name"] for r in rows] == NAMES and all(len(r["levels"]) == 5 for r in rows)
    assert all(r["family"] == cifar10c.FAMILY[r["name"]] for r in rows)  # every name is an official one
