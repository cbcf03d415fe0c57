"""core.serving.images: every refusal is an ImageError with a useful message, every accepted kind of file
becomes 8-bit RGB with the right pixels, EXIF orientation is applied, and the 32x32 crop is centred.
All inputs are made in memory, except the shipped examples in assets/examples/."""
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from core.serving import images
from core.serving.images import ImageError

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def save(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(w=64, h=48, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def png_header(w: int, h: int) -> bytes:
    """A tiny PNG whose IHDR claims w x h 8-bit RGB (its data is not there)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def refused(source, *words):
    with pytest.raises(ImageError) as e:
        images.decode(source)
    msg = str(e.value)
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


def test_constants():
    assert images.ALLOWED_FORMATS >= {"PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"}
    assert images.MAX_BYTES == 20 * 2**20 and images.MAX_PIXELS == 50_000_000
    assert images.MIN_SIDE == 8 and images.BACKGROUND == (255, 255, 255)
    assert issubclass(ImageError, ValueError)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


# ---- refusals ----------------------------------------------------------------------------------

def test_empty_and_not_an_image():
    refused(b"", "empty")
    refused(b"hello, this is a text file\n" * 10, "not an image", "PNG")


def test_too_many_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    data = save(noise(), "PNG")
    assert len(data) > 1000
    refused(data, "limit")
    p = tmp_path / "big.png"
    p.write_bytes(data)
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or b"")
    refused(p, "limit")
    assert not read  # the size came from stat(), the file was never read


def test_path_problems(tmp_path):
    refused(tmp_path / "missing.png", "could not read")
    refused(tmp_path, "not a file")
    (tmp_path / "empty.png").write_bytes(b"")
    refused(tmp_path / "empty.png", "empty")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"])
def test_truncated(fmt):
    data = save(noise(96, 96), fmt)
    refused(data[: len(data) // 2], "truncated", "upload")


@pytest.mark.parametrize("make,name", [
    (lambda: save(noise(32, 32), "ICO"), "ICO"),
    (lambda: save(noise(32, 32), "PPM"), "PPM"),
    (lambda: save(noise(32, 32), "TGA"), "TGA"),
    (lambda: save(noise(32, 32), "PDF"), "PDF"),
    (lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>', "SVG"),
    (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"></svg>', "SVG"),
    (lambda: b"8BPS\x00\x01" + b"\x00" * 40, "PSD"),
])
def test_unsupported_format(make, name):
    msg = refused(make(), name, "not supported")
    for allowed in ("PNG", "JPEG", "WebP", "BMP", "GIF", "TIFF"):
        assert allowed in msg


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated(fmt):
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue", "green")]
    data = save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert "animated images are not supported; upload a single frame" in refused(data)


def test_single_frame_gif_and_webp_accepted():
    for fmt in ("GIF", "WEBP"):
        out = images.decode(save(Image.new("RGB", (16, 16), (0, 0, 255)), fmt))
        assert out.mode == "RGB" and out.size == (16, 16)
        assert np.asarray(out)[..., 2].min() > 200


def test_pixel_limit_from_header_before_decoding(monkeypatch):
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self) or real_load(self))
    refused(png_header(8000, 8000), "pixels", "50,000,000")  # 64 M > MAX_PIXELS, < PIL's own limit
    refused(png_header(65535, 65535), "pixels")  # PIL's DecompressionBombError, 4.3 G pixels
    assert not loads  # refused from the header alone: nothing was allocated or decoded
    images.decode(save(noise()))
    assert loads  # (the spy works)


def test_pil_bomb_warning_becomes_error(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600: the warning, not the error
    refused(save(noise(40, 40)), "pixels")
    import warnings
    assert not any(f[2] is Image.DecompressionBombWarning and f[0] == "error" for f in warnings.filters)


def test_too_small_and_zero_size():
    refused(save(Image.new("RGB", (1, 1))), "too small to classify", "8")
    refused(save(Image.new("RGB", (100, 4))), "too small")
    refused(png_header(0, 10), "upload")  # zero width: PIL cannot even open it
    assert images.decode(save(Image.new("RGB", (8, 8)))).size == (8, 8)


def test_unexpected_pil_errors_are_wrapped(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("surprise")
    monkeypatch.setattr(images, "_to_rgb", boom)
    refused(save(noise()), "could not be decoded")


# ---- accepted modes ----------------------------------------------------------------------------

def rgb(source) -> np.ndarray:
    out = images.decode(source)
    assert out.mode == "RGB"
    a = np.asarray(out)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    return a


def test_path_and_bytes_agree(tmp_path):
    data = save(noise(), "PNG")
    (tmp_path / "x.png").write_bytes(data)
    assert np.array_equal(rgb(data), rgb(tmp_path / "x.png"))
    assert np.array_equal(rgb(data), rgb(str(tmp_path / "x.png")))
    assert np.array_equal(rgb(bytearray(data)), np.asarray(noise()))


def test_16bit_gray():
    a = np.array([[0, 257 * 100, 65535]], dtype=np.uint16).repeat(8, 0).repeat(8, 1)
    out = rgb(save(Image.fromarray(a), "PNG"))  # opens as "I;16" (or "I")
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 8].tolist() == [100] * 3 and out[0, 16].tolist() == [255] * 3
    assert rgb(save(Image.fromarray(np.full((8, 8), 65535, np.uint16)), "PNG")).min() == 255
    assert rgb(save(Image.fromarray(np.full((8, 8), 1000, np.int32), "I"), "TIFF")).max() == 4  # 1000/257
    wide = np.array([[-70000, 0, 70000]], np.int32).repeat(8, 0).repeat(8, 1)  # not 16-bit: min-max
    assert rgb(save(Image.fromarray(wide, "I"), "TIFF"))[0, ::8, 0].tolist() == [0, 128, 255]


def test_float_tiff():
    ones = np.ones((8, 8), np.float32)
    assert rgb(save(Image.fromarray(ones, "F"), "TIFF")).min() == 255
    half = rgb(save(Image.fromarray(ones * 0.5, "F"), "TIFF"))
    assert abs(int(half[0, 0, 0]) - 128) <= 1
    ramp = np.linspace(-5, 1000, 64, dtype=np.float32).reshape(8, 8)  # outside [0,1]: min-max
    out = rgb(save(Image.fromarray(ramp, "F"), "TIFF"))
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) > 30


def test_alpha_onto_background():
    clear = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    assert (rgb(save(clear)) == images.BACKGROUND).all()
    half = rgb(save(Image.new("RGBA", (16, 16), (0, 0, 0, 128))))
    assert abs(int(half[0, 0, 0]) - 127) <= 1
    assert (rgb(save(Image.new("LA", (16, 16), (0, 0)))) == images.BACKGROUND).all()
    assert (rgb(save(Image.new("RGBA", (16, 16), (10, 20, 30, 255)))) == (10, 20, 30)).all()
    assert (rgb(save(clear, "WEBP", lossless=True)) == images.BACKGROUND).all()


def test_palette_with_transparency():
    p = Image.new("P", (16, 16), 0)
    p.putpalette([0, 255, 0] + [0, 0, 255] * 255)
    p.paste(1, (0, 0, 8, 16))
    for fmt in ("PNG", "GIF"):
        out = rgb(save(p, fmt, transparency=0))
        assert (out[:, :8] == (0, 0, 255)).all() and (out[:, 8:] == images.BACKGROUND).all()
    assert (rgb(save(p, "PNG"))[:, 8:] == (0, 255, 0)).all()  # no transparency: palette colour


def test_cmyk_jpeg_bilevel_and_gray():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    assert Image.open(io.BytesIO(save(cmyk, "JPEG"))).mode == "CMYK"
    r, g, b = rgb(save(cmyk, "JPEG", quality=95))[8, 8].tolist()
    assert r > 230 and g < 25 and b < 25
    one = Image.new("1", (16, 16), 0)
    one.paste(1, (0, 0, 8, 16))
    out = rgb(save(one, "PNG"))
    assert (out[:, :8] == 255).all() and (out[:, 8:] == 0).all()
    assert (rgb(save(Image.new("L", (16, 16), 77), "BMP")) == 77).all()
    assert (rgb(save(Image.new("L", (16, 16), 77), "TIFF")) == 77).all()


# ---- EXIF orientation --------------------------------------------------------------------------

EXPECTED = {  # how each EXIF orientation's stored pixels are shown, written independently of PIL
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation(orientation, fmt):
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[...] = (0, 0, 255)
    stored[:8, :16] = (255, 0, 0)  # a red block in one corner: all 8 transforms differ
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = save(Image.fromarray(stored), fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    out = rgb(data)
    want = EXPECTED[orientation](stored)
    assert out.shape == want.shape
    red_out, red_want = out[..., 0] > 128, want[..., 0] > 128
    assert (red_out == red_want).mean() > 0.98


# ---- to_cifar and load -------------------------------------------------------------------------

def test_to_cifar_centre_crop():
    a = np.zeros((100, 300, 3), np.uint8)
    a[:, :100] = a[:, 200:] = (255, 0, 0)
    a[:, 100:200] = (0, 0, 255)
    out = images.to_cifar(Image.fromarray(a))
    assert out.size == (32, 32) and out.mode == "RGB"
    o = np.asarray(out)
    assert (o[..., 2] > 250).all() and (o[..., 0] < 5).all()
    tall = np.asarray(images.to_cifar(Image.fromarray(a.transpose(1, 0, 2))))
    assert (tall[..., 2] > 250).all()
    assert images.to_cifar(Image.new("RGB", (8, 8)), size=4).size == (4, 4)


def test_to_cifar_antialiases():
    stripes = np.zeros((320, 320, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-pixel stripes: point sampling would give pure black or white
    o = np.asarray(images.to_cifar(Image.fromarray(stripes))).astype(int)
    assert abs(o.mean() - 127.5) < 3 and o.std() < 10


def test_load():
    x, small = images.load(save(noise(200, 120), "JPEG"))
    assert x.shape == (3, 32, 32) and x.dtype == np.uint8 and x.flags.c_contiguous
    assert small.size == (32, 32) and small.mode == "RGB"
    assert np.array_equal(x, np.asarray(small).transpose(2, 0, 1))


# ---- shipped examples --------------------------------------------------------------------------

def test_examples_decode():
    for c in CLASSES:
        x, small = images.load(EXAMPLES / f"cifar_{c}.png")
        assert np.array_equal(np.asarray(small), np.asarray(Image.open(EXAMPLES / f"cifar_{c}.png")))
    photos = sorted(EXAMPLES.glob("photo_*.jpg"))
    assert EXAMPLES / "photo_cat.jpg" in photos
    for p in photos:
        assert p.stat().st_size < 100_000 and max(Image.open(p).size) <= 512
        assert images.load(p)[0].shape == (3, 32, 32)
    assert (EXAMPLES / "README.md").read_text().count("CC0") >= 2


def test_load_photo():
    """EXIF-rotated (6) 300 x 180 JPEG, upright 180 x 300: load()'s bytes; the copy never upscaled."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = save(noise(300, 180, seed=3), "JPEG", exif=exif.tobytes(), quality=90)
    chw, small = images.load(data)
    for max_side, size in ((images.DISPLAY_SIDE, (180, 300)), (300, (180, 300)), (120, (72, 120)), (8, (5, 8))):
        chw2, small2, photo, box = images.load_photo(data, max_side=max_side)
        assert chw2.tobytes() == chw.tobytes() and chw2.shape == chw.shape and chw2.flags.c_contiguous
        assert small2.tobytes() == small.tobytes() and small2.size == small.size and small2.mode == "RGB"
        assert photo.mode == "RGB" and photo.size == size and box == images.crop_box(*size)
    assert np.array_equal(np.asarray(images.load_photo(data)[2]), np.asarray(images.decode(data)))
    for bad in (0, 7, 100.0, True, "512"):
        with pytest.raises(ValueError, match="max_side"):
            images.load_photo(data, max_side=bad)
