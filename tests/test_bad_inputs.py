"""Hostile and odd uploads through the public API (gradio_client -> /classify): each bad file gets
gradio_client's AppError with its own whole message from core.serving.images (never Gradio's generic error),
each odd-but-valid image is classified, and the app answers the next valid request every time; a file
over the size limit is refused by gradio_client before it is sent and, sent anyway, by the server (413).

`python tests/test_bad_inputs.py URL` prints every case with the message it produced.
"""
import io
import re
import sys
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.support import BAD, EXAMPLES
from tests.support import image_bytes as _img

GOOD = str(EXAMPLES / "cifar_ship.png")

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
    return client.predict(handle_file(path), "plain20", "resnet20", api_name="/classify")


def _still_answers(client):
    lab = _classify(client, GOOD)[1]
    assert lab["label"] == "ship" and len(lab["confidences"]) == 5


def test_every_bad_case_has_its_own_expectation():
    """Each case's message is matched whole, and none of them would match any message at all."""
    for case, (_, _, expect) in BAD.items():
        assert not re.fullmatch(expect, "Error"), case
        assert not re.fullmatch(expect, "the file is not an image"), case


@pytest.mark.parametrize("case", list(BAD))
def test_bad_upload_gets_its_own_message_then_the_app_still_answers(client, tmp_path, case):
    fname, data, expect = BAD[case]
    with pytest.raises(AppError) as e:
        _classify(client, _write(tmp_path, fname, data))
    assert re.fullmatch(expect, str(e.value)), (case, str(e.value))  # never Gradio's generic error
    _still_answers(client)


@pytest.mark.parametrize("case", list(ODD_BUT_VALID))
def test_odd_but_valid_images_are_classified(client, tmp_path, case):
    fname, data = ODD_BUT_VALID[case]
    lab_p, lab_r, seen, _ = _classify(client, _write(tmp_path, fname, data if data is not None else _special(case)))
    for lab in (lab_p, lab_r):
        assert len(lab["confidences"]) == 5 and lab["label"] == lab["confidences"][0]["label"]
    with Image.open(seen) as im:
        assert im.size == (128, 128) and im.mode == "RGB"


def _raw_upload(server, name, data):
    """POST one file to Gradio's upload route as a browser does; (HTTP status, body)."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{server}gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_upload_over_the_size_limit_is_refused(server, client, tmp_path):
    from core.ui.dashboard import MAX_FILE_SIZE
    data = _img(size=(64, 64)) + b"\x00" * (MAX_FILE_SIZE + 1)
    big = _write(tmp_path, "big.png", data)
    with pytest.raises(ValueError, match=re.escape(f"exceeds the maximum file size of {MAX_FILE_SIZE} bytes")):
        _classify(client, big)  # gradio_client checks the page's limit before sending
    assert _raw_upload(server, "big.png", data) == \
        (413, f"File size exceeded maximum allowed size of {MAX_FILE_SIZE} bytes.")
    status, body = _raw_upload(server, "small.png", _img(size=(64, 64)))  # under the limit: stored
    assert status == 200 and body.endswith('/small.png"]'), body
    _still_answers(client)


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
