"""Hostile and odd uploads through the public API (gradio_client -> /classify): each bad file gets a
specific message from serving.images (never Gradio's generic error), each odd-but-valid image is
classified, and the app answers the next valid request every time.

`python tests/test_bad_inputs.py URL` prints every case with the message it produced.
"""
import io
import re
import struct
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

GOOD = str(ROOT / "assets" / "examples" / "cifar_ship.png")


def _img(mode="RGB", size=(64, 48), fmt="PNG", **save):
    arr = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def _png_header(w, h):  # a valid PNG signature and IHDR claiming w x h, then a tiny IDAT
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _animated(fmt):
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green")]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


BAD = {  # name: (file name, bytes, a word the message must contain)
    "empty file": ("a.png", b"", "empty"),
    "plain text": ("a.png", b"hello, this is not an image\n" * 10, "not"),
    "truncated PNG": ("a.png", _img()[:200], "corrupt|truncated|incomplete"),
    "corrupt JPEG": ("a.jpg", _img(fmt="JPEG")[:100] + b"\x00" * 500, "corrupt|truncated|incomplete"),
    "SVG with a script": ("a.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
    "XML": ("a.xml", b'<?xml version="1.0"?><root/>', "XML"),
    "PSD": ("a.psd", b"8BPS" + b"\x00\x01" + b"\x00" * 200, "PSD"),
    "PDF": ("a.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    "HEIC": ("a.heic", b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100, "HEIC"),
    "AVIF": ("a.avif", b"\x00\x00\x00\x18ftypavif" + b"\x00" * 100, "AVIF"),
    "ICO": ("a.ico", _img(size=(32, 32), fmt="ICO"), "ICO|format"),
    "ZIP": ("a.zip", b"PK\x03\x04" + b"\x00" * 100, "not|format"),
    "HTML": ("a.html", b"<html><body>hi</body></html>", "not|format"),
    "animated GIF": ("a.gif", _animated("GIF"), "animated"),
    "animated WebP": ("a.webp", _animated("WEBP"), "animated"),
    "animated PNG": ("a.png", _animated("PNG"), "animated"),
    "1x1 image": ("a.png", _img(size=(1, 1)), "small"),
    "4x400 image": ("a.png", _img(size=(4, 400)), "small"),
    "65535x65535 header": ("a.png", _png_header(65535, 65535), "too many pixels"),
    "decompression bomb 20000x20000": ("a.png", _png_header(20000, 20000), "too many pixels"),
    "0-height header": ("a.png", _png_header(64, 0), "corrupt|size|small|not"),
}
ODD_BUT_VALID = {
    "PNG named .jpg": ("a.jpg", _img()), "TIFF": ("a.tif", _img(fmt="TIFF")), "BMP": ("a.bmp", _img(fmt="BMP")),
    "16-bit grey PNG": ("a.png", None), "float TIFF": ("a.tif", None), "1-bit": ("a.png", _img("1")),
    "CMYK JPEG": ("a.jpg", _img("CMYK", fmt="JPEG")), "palette + transparency": ("a.png", None),
    "RGBA": ("a.png", _img("RGBA")), "grey + alpha": ("a.png", _img("LA")),
    "EXIF orientation 6": ("a.jpg", None), "extreme aspect 2000x8": ("a.png", _img(size=(2000, 8))),
    "static GIF": ("a.gif", _img("P", fmt="GIF")), "static WebP": ("a.webp", _img(fmt="WEBP")),
}


def _special(name):
    buf = io.BytesIO()
    if name == "16-bit grey PNG":
        Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16)).save(buf, "PNG")
    elif name == "float TIFF":
        Image.fromarray(np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64), mode="F").save(buf, "TIFF")
    elif name == "palette + transparency":
        im = Image.new("P", (40, 40), 0)
        im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
        im.paste(1, (10, 10, 30, 30))
        im.info["transparency"] = 0
        im.save(buf, "PNG", transparency=0)
    elif name == "EXIF orientation 6":
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _write(tmp_path, fname, data):
    path = tmp_path / fname
    path.write_bytes(data)
    return str(path)


def _classify(client, path):
    from gradio_client import handle_file
    return client.predict(handle_file(path), "plain20", "resnet20", api_name="/classify")


@pytest.mark.parametrize("case", list(BAD))
def test_bad_upload_gets_its_own_message_then_the_app_still_answers(client, tmp_path, case):
    fname, data, expect = BAD[case]
    with pytest.raises(Exception) as e:
        _classify(client, _write(tmp_path, fname, data))
    msg = str(e.value)
    assert "has not enabled verbose error reporting" not in msg, msg  # never Gradio's generic error
    assert re.search(expect, msg, re.I), (case, msg)
    assert _classify(client, GOOD)[1]["confidences"]


@pytest.mark.parametrize("case", list(ODD_BUT_VALID))
def test_odd_but_valid_images_are_classified(client, tmp_path, case):
    fname, data = ODD_BUT_VALID[case]
    out = _classify(client, _write(tmp_path, fname, data if data is not None else _special(case)))
    assert len(out[1]["confidences"]) == 5


def test_upload_over_the_size_limit_is_refused(client, tmp_path):
    import app
    big = _write(tmp_path, "big.png", _img(size=(64, 64)) + b"\x00" * (app.MAX_FILE_SIZE + 1))
    with pytest.raises(Exception, match="(?i)size|large|exceed|413"):
        _classify(client, big)
    assert _classify(client, GOOD)[1]["confidences"]


if __name__ == "__main__":  # the table for the closing note: python tests/test_bad_inputs.py URL
    import tempfile
    from pathlib import Path

    from gradio_client import Client
    c = Client(sys.argv[1], verbose=False)
    with tempfile.TemporaryDirectory() as d:
        for case, (fname, data, _) in BAD.items():
            try:
                _classify(c, _write(Path(d), fname, data))
                print(f"| {case} | ACCEPTED |")
            except Exception as e:
                print(f"| {case} | {e} |")
