"""Files the server hands out (output images, CSV downloads): named by their content, written whole.

publish(data, folder, name) puts `data` at folder/<sha256 of data>/name. The bytes go to a temp file
of their own in that folder first (a unique name per call) and are renamed into place, so a reader
never sees a partial file: a download that opened the path reads the whole of one complete copy,
and two requests with the same output get the same path with the same bytes. A path that already
exists is returned as it is (only complete files are ever renamed in).

Why: Gradio's own writer for returned images, gradio.processing_utils.save_pil_to_cache, truncates
and rewrites the one content-hashed path of an image in place; when many visitors get the same
image, one request rewrites the file while another's client downloads it (h11 "Too little data for
declared Content-Length"; tests/test_load.py sends such a burst). Handlers return the path
instead, inside Gradio's cache folder, which Gradio then serves as it is.

png(image) is the PNG of a PIL image or an H x W x 3 uint8 array: lossless, and the same bytes for
the same pixels (tests/test_files.py holds both claims and the whole-file one under threads).
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def publish(data: bytes, folder, name: str) -> str:
    """The path of `data` as folder/<sha256>/name, written whole (see the module docstring)."""
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"name must be a plain file name, not {name!r}")
    final = Path(folder) / hashlib.sha256(data).hexdigest() / name
    if final.is_file():
        return str(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(final)


def png(image) -> bytes:
    """PNG bytes of a PIL image or an H x W x 3 (or H x W) uint8 array."""
    if not isinstance(image, Image.Image):
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise ValueError(f"an image array must be uint8, not {arr.dtype}")
        image = Image.fromarray(arr)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def publish_png(image, folder, name: str = "image.png") -> str:
    """publish(png(image), folder, name)."""
    return publish(png(image), folder, name)
