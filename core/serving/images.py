"""An uploaded image file, turned into what the CIFAR-10 nets see: a 32x32 8-bit RGB image.

decode() reads bytes or a path and returns an 8-bit RGB PIL image, EXIF-oriented (all 8 values),
with any alpha composited onto BACKGROUND (white). crop_box() is the centre square of the shorter
side, the one piece of crop arithmetic; to_cifar() crops it and downscales it with Lanczos
(antialiased) to 32x32. load() does both and also returns the uint8 3x32x32 (CHW) array the models
take (normalisation is core.engine.data's job). load_photo() does the same from the same decode and
also returns a display copy of the whole photo (longer side at most DISPLAY_SIDE, never upscaled)
and the crop square in its coordinates (crop_box of the copy: within a pixel of the scaled crop),
for core.serving.overlay to draw the attribution on. tests/test_images.py holds: load_photo's arrays
are byte-identical to load()'s (EXIF-rotated, non-square photo), the copy is upright, keeps the
aspect ratio and is never upscaled; tests/test_overlay.py: crop_box is centred and square, and the
box in a downscaled copy holds the pixels to_cifar crops.

Limits, each refused with ImageError (one sentence saying what is wrong and what to do):
  * file size: 1 byte to MAX_BYTES = 20 MiB (a path is measured with stat() before it is read);
  * format: ALLOWED_FORMATS only (PNG, JPEG, WebP, BMP, GIF, TIFF; MPO is the JPEG variant many
    phone cameras write, its first frame is used); animated GIF/WebP/PNG are refused;
  * pixels: width x height <= MAX_PIXELS = 50,000,000, read from the header before anything is
    decoded; PIL's own DecompressionBombError/Warning become ImageError too (locally, no global
    state is changed; ImageFile.LOAD_TRUNCATED_IMAGES is left alone, so truncated files fail);
  * sides: both >= MIN_SIDE = 8 pixels.
Pixel depths other than 8 bits are rescaled by the range of their format, never clipped: 16-bit
("I;16*", and "I" with values in 0..65535) / 257; float ("F") x 255 if all values lie in [0, 1],
else min-max. CMYK, 1-bit, L, P, LA, RGBA etc. go through PIL's own conversions.
No Gradio, no network; every function is pure.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF", "TIFF"})
ALLOWED_TEXT = "PNG, JPEG, WebP, BMP, GIF or TIFF"
MAX_BYTES = 20 * 2**20
MAX_PIXELS = 50_000_000
MIN_SIDE = 8
BACKGROUND = (255, 255, 255)
CIFAR_SIZE = 32
DISPLAY_SIDE = 1024  # load_photo's default: the display copy's longer side at most (never upscaled)
_ANIMATABLE = {"GIF", "WEBP", "PNG"}  # a multi-page TIFF or an MPO is read as its first frame
_SIGNATURES = (  # to name a file PIL could not open, so the message can say what it was
    (0, b"%PDF", "PDF"), (0, b"<svg", "SVG"), (0, b"<?xml", "SVG/XML"), (0, b"8BPS", "PSD"),
    (4, b"ftypheic", "HEIC"), (4, b"ftypheix", "HEIC"), (4, b"ftypmif1", "HEIF"), (4, b"ftypavif", "AVIF"),
    (0, b"GIF8", "GIF"), (0, b"\x89PNG", "PNG"), (0, b"\xff\xd8\xff", "JPEG"), (8, b"WEBP", "WEBP"),
    (0, b"II*\x00", "TIFF"), (0, b"MM\x00*", "TIFF"),
)


class ImageError(ValueError):
    """A user-caused problem with an upload; str(e) is one sentence saying what is wrong and what to do."""


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def _read(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise ImageError(f"{path.name or path} is not a file; upload an image file.")
            if size > MAX_BYTES:
                raise ImageError(f"the file is {_mb(size)}, over the {_mb(MAX_BYTES)} limit; "
                                 "upload a smaller or more compressed image.")
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"could not read {path.name or path} ({e.strerror or e}); upload the file again.") from e
    else:
        raise TypeError(f"expected bytes or a path, got {type(source).__name__}")
    if not data:
        raise ImageError("the file is empty (0 bytes); upload an image file.")
    if len(data) > MAX_BYTES:
        raise ImageError(f"the file is {_mb(len(data))}, over the {_mb(MAX_BYTES)} limit; "
                         "upload a smaller or more compressed image.")
    return data


def _sniff(data: bytes) -> str | None:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    for at, sig, name in _SIGNATURES:
        if head[at:at + len(sig)].lower() == sig.lower():
            return name
    return None


def _too_big(pixels: str) -> ImageError:
    return ImageError(f"the image has {pixels} pixels, over the {MAX_PIXELS:,} limit; "
                      "upload a smaller image (for example at most 7000 x 7000).")


def _open(data: bytes) -> Image.Image:
    """Image.open (header only), then every check that needs no pixel data."""
    try:
        img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_big("too many") from None
    except UnidentifiedImageError:
        name = _sniff(data)
        if name in ALLOWED_FORMATS:
            raise ImageError(f"the {name} file is corrupt or has an invalid size; "
                             "re-save it with an image editor or upload another image.") from None
        if name:
            raise ImageError(f"{name} files are not supported; upload a {ALLOWED_TEXT} image.") from None
        raise ImageError(f"the file is not an image that can be read; upload a {ALLOWED_TEXT} image.") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:  # a header PIL chokes on
        raise ImageError(f"the {_sniff(data) or 'image'} file is corrupt or truncated ({e}); "
                         "upload the complete file or another image.") from e
    fmt = img.format or "unknown"
    if fmt not in ALLOWED_FORMATS:
        raise ImageError(f"{fmt} files are not supported; upload a {ALLOWED_TEXT} image.")
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise _too_big(f"{w:,} x {h:,} = {w * h:,}")
    if w <= 0 or h <= 0:
        raise ImageError(f"the image has zero size ({w} x {h}); upload another image.")
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"the image is {w} x {h} pixels, too small to classify; "
                         f"upload one at least {MIN_SIDE} pixels on each side.")
    if fmt in _ANIMATABLE and getattr(img, "n_frames", 1) > 1:
        raise ImageError("animated images are not supported; upload a single frame.")
    return img


def _rescale(img: Image.Image) -> Image.Image:
    """A grayscale image deeper than 8 bits -> 8-bit "L", scaled by the range of its format."""
    a = np.asarray(img)
    if img.mode == "F":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            a = a * 255.0
        elif hi > lo:
            a = (a - lo) * (255.0 / (hi - lo))
    else:  # "I;16*" always, "I" when its values fit 16 bits (PNG), else min-max
        a = a.astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        if img.mode.startswith("I;16") or (lo >= 0 and hi <= 65535):
            a = a / 257.0
        elif hi > lo:
            a = (a - lo) * (255.0 / (hi - lo))
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB, with alpha (or palette/colour-key transparency) on BACKGROUND."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode == "F" or img.mode.startswith("I"):
        return _rescale(img).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        out = Image.new("RGBA", img.size, BACKGROUND + (255,))
        return Image.alpha_composite(out, rgba).convert("RGB")
    try:
        return img.convert("RGB")  # 1, L, P, CMYK (Adobe inversion handled by PIL), YCbCr, ...
    except (ValueError, OSError) as e:
        raise ImageError(f"the colour mode {img.mode} is not supported; re-save the image as 8-bit RGB.") from e


def decode(source: bytes | str | os.PathLike) -> Image.Image:
    """Read bytes or a file path; return an 8-bit RGB image, EXIF-oriented, alpha composited onto BACKGROUND."""
    data = _read(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(data)
            try:
                img.load()  # the full decode: truncated or corrupt data fails here
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise _too_big("too many") from None
            except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
                raise ImageError(f"the {img.format} file is truncated or corrupt ({e}); "
                                 "upload the complete file or another image.") from e
        try:
            oriented = ImageOps.exif_transpose(img)
        except Exception:  # a damaged EXIF block should not cost the user the photo itself
            oriented = img
        return _to_rgb(oriented)
    except ImageError:
        raise
    except MemoryError as e:
        raise ImageError("the image is too large to decode in memory; upload a smaller image.") from e
    except Exception as e:  # anything else PIL raises is still the file's fault
        raise ImageError(f"the image could not be decoded ({type(e).__name__}: {e}); "
                         "re-save it as PNG or JPEG and upload it again.") from e


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred square of side min(width, height); right and
    bottom are exclusive, as PIL's crop takes them. When the sides differ in parity, the odd pixel
    goes to the right (or bottom)."""
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be positive, got {width} x {height}")
    s = min(width, height)
    left, top = (width - s) // 2, (height - s) // 2
    return left, top, left + s, top + s


def to_cifar(img: Image.Image, size: int = CIFAR_SIZE) -> Image.Image:
    """Centre-crop to a square (shorter side) and downscale with a proper antialiasing filter to size x size RGB."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    img = _to_rgb(img)
    # Crop first, so no pixel outside the square leaks in through the filter. Lanczos antialiases
    # when downscaling (its support widens with the scale); reducing_gap does an exact box
    # reduction first on big photos, which keeps the quality and is much faster.
    square = img.crop(crop_box(*img.size))
    return square.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)


def _chw(small: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(small, dtype=np.uint8).transpose(2, 0, 1))


def load(source) -> tuple[np.ndarray, Image.Image]:
    """decode + to_cifar: (uint8 array 3x32x32 in CHW order, the 32x32 RGB PIL image)."""
    small = to_cifar(decode(source))
    return _chw(small), small


def load_photo(source, max_side: int = DISPLAY_SIDE
               ) -> tuple[np.ndarray, Image.Image, Image.Image, tuple[int, int, int, int]]:
    """One decode -> (chw, small) exactly as load() returns them, the photo as an RGB PIL image
    with its longer side at most max_side (Lanczos, aspect kept, never upscaled), and the crop
    square (left, top, right, bottom) in that photo's pixels."""
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < MIN_SIDE:
        raise ValueError(f"max_side must be an int of at least {MIN_SIDE}, got {max_side!r}")
    img = decode(source)
    small = to_cifar(img)
    w, h = img.size
    photo = img
    if max(w, h) > max_side:
        f = max_side / max(w, h)  # the longer side becomes max_side exactly; the shorter rounds
        size = (max(1, round(w * f)), max(1, round(h * f)))
        photo = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    # crop_box of the copy, not the original box scaled: it stays an integer square, centred, and
    # within a pixel of the scaled crop (the shorter side scales to the copy's shorter side).
    return _chw(small), small, photo, crop_box(*photo.size)
