"""An attribution map drawn on the user's whole photo, aspect-true, with the square the nets saw.

on_photo(attr, photo, box, sign) takes a map as core.research.attribution.attribute returns it (N x N x C
over the 32x32 image, N x N also accepted), the photo (an RGB PIL image or an H x W x 3 uint8
array, e.g. core.serving.images.load_photo's display copy) and the centre-crop square `box` (left, top,
right, bottom) in the photo's pixels (load_photo's box). It returns an H x W x 3 uint8 picture:
  * inside the square: the map scaled by attribution.scale_map(attr, sign), upsampled bilinearly
    (smooth, no overshoot) to the square, coloured with attribution.colormap (INFERNO for
    "positive"/"absolute", DIVERGING for "all") and alpha-blended over the photo with opacity
    BLEND_ALPHA x |map|, exactly as attribution.render's "blend" does (a zero map shows the photo);
  * outside it: the photo dimmed to DIM of its brightness, never coloured;
  * the square's outline: a white line (line_width pixels, from the photo's size) with a 1-pixel
    dark edge on each side, straddling the square's border, so it shows on light and dark photos.
Bad inputs raise attribution.AttributionError, one sentence naming what is wrong.
numpy + PIL only; the scaling, colour maps and constants are core.research.attribution's (which imports no
torch at module level either).

tests/test_overlay.py holds: the output is the photo's size (landscape, portrait, square); the box
load_photo gives holds the pixels to_cifar crops; a map hot only in the grid's top-left 8x8 changes
only the square's top-left quarter; outside the square the photo is dimmed (not black), never
coloured; a zero map leaves the square's inside equal to the photo, outline aside; the blend's
colours are scale_map's and colormap's; the upsampling is smooth; `sign` changes the output; and
each bad input raises AttributionError.
"""
from __future__ import annotations

import numbers

import numpy as np
from PIL import Image

from core.research.attribution import BLEND_ALPHA, DIVERGING, INFERNO, AttributionError, colormap, scale_map

DIM = 0.45  # brightness kept outside the crop square: dimmed, still readable
LINE = (255, 255, 255)  # the outline's core
EDGE = (24, 24, 24)  # its 1-pixel edges, for light photos


def line_width(size: tuple[int, int]) -> int:
    """The white line's width in pixels for a photo of size (width, height): thin, grows with it."""
    return max(1, round(max(size) / 480))


def _map(attr) -> np.ndarray:
    try:
        a = np.asarray(attr)
    except Exception as e:  # ragged nested lists and the like
        raise AttributionError(f"attr must be an N x N (x C) numeric array ({e})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise AttributionError(f"attr must be a numeric array, got dtype {a.dtype}")
    if a.ndim not in (2, 3) or a.shape[0] != a.shape[1] or a.shape[0] < 1 or a.size == 0:
        raise AttributionError(f"attr must be an N x N (x C) map over the square image, got shape {a.shape}")
    return a


def _photo(photo) -> np.ndarray:
    if isinstance(photo, Image.Image):
        if photo.mode != "RGB":
            raise AttributionError(f"photo must be an RGB image, got PIL mode {photo.mode}")
        return np.asarray(photo)
    if not isinstance(photo, np.ndarray):
        raise AttributionError(f"photo must be a PIL image or a numpy array, got {type(photo).__name__}")
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3 or 0 in photo.shape:
        raise AttributionError(f"photo must be an H x W x 3 uint8 array, got {photo.dtype} {photo.shape}")
    return photo


def _box(box, width: int, height: int) -> tuple[int, int, int, int]:
    if not isinstance(box, (tuple, list)) or len(box) != 4 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in box):
        raise AttributionError(f"box must be 4 integers (left, top, right, bottom), got {box!r}")
    left, top, right, bottom = map(int, box)
    if right <= left or bottom <= top:
        raise AttributionError(f"box {(left, top, right, bottom)} is empty (right <= left or bottom <= top)")
    if not (0 <= left and right <= width and 0 <= top and bottom <= height):
        raise AttributionError(f"box {(left, top, right, bottom)} does not lie inside the "
                               f"{width} x {height} photo")
    if right - left != bottom - top:
        raise AttributionError(f"box {(left, top, right, bottom)} is {right - left} x "
                               f"{bottom - top}, not the square the nets saw")
    return left, top, right, bottom


def _ring(out: np.ndarray, box, outer: int, inner: int, colour) -> None:
    """Paint the pixels within `outer` outside and `inner` inside the box's border (clipped)."""
    left, top, right, bottom = box
    h, w = out.shape[:2]
    x0, y0, x1, y1 = max(left - outer, 0), max(top - outer, 0), min(right + outer, w), min(bottom + outer, h)
    il, it, ir, ib = left + inner, top + inner, right - inner, bottom - inner
    out[y0:max(min(it, y1), y0), x0:x1] = colour
    out[max(ib, y0):y1, x0:x1] = colour
    out[y0:y1, x0:max(min(il, x1), x0)] = colour
    out[y0:y1, max(ir, x0):x1] = colour


def on_photo(attr, photo, box, sign: str = "absolute", *, dim: float = DIM,
             line: int | None = None) -> np.ndarray:
    """H x W x 3 uint8: `attr` blended over the crop square `box` of `photo` (H x W), the rest of
    the photo dimmed to `dim` (0..1) and the square outlined with a white line `line` pixels wide
    (None: line_width(photo size); 0: no outline)."""
    a = _map(attr)
    m = scale_map(a, sign)  # N x N in [-1, 1]; raises AttributionError for an unknown sign
    img = _photo(photo)
    h, w = img.shape[:2]
    left, top, right, bottom = _box(box, w, h)
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Real) or not 0.0 <= dim <= 1.0:
        raise AttributionError(f"dim={dim!r} must be a number from 0 to 1")
    line = line_width((w, h)) if line is None else line
    if isinstance(line, (bool, np.bool_)) or not isinstance(line, numbers.Integral) or not 0 <= line <= 64:
        raise AttributionError(f"line={line!r} must be a whole number of pixels from 0 to 64")

    side = right - left
    # PIL resamples a float ("F") image: bilinear, pixel centres aligned, edges clamped.
    big = np.asarray(Image.fromarray(m.astype(np.float32)).resize((side, side), Image.Resampling.BILINEAR))
    big = np.clip(big, -1.0, 1.0) if sign == "all" else np.clip(big, 0.0, 1.0)
    colours = colormap((big + 1) / 2, DIVERGING) if sign == "all" else colormap(big, INFERNO)
    alpha = (BLEND_ALPHA * np.abs(big))[..., None]
    inside = img[top:bottom, left:right].astype(np.float32)

    out = np.rint(img.astype(np.float32) * np.float32(dim)).astype(np.uint8)
    out[top:bottom, left:right] = np.clip(np.rint((1 - alpha) * inside + alpha * colours), 0, 255)
    if line:
        outer, inner = line - line // 2, line // 2  # the white straddles the border
        _ring(out, (left, top, right, bottom), outer + 1, inner + 1, EDGE)
        _ring(out, (left, top, right, bottom), outer, inner, LINE)
    return out
