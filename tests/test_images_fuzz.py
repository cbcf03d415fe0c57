"""Property-based fuzzing of the upload decoder (hypothesis): for any generated image (mode x size x
format x options) and any byte string, core.serving.images.load either returns a 3x32x32 uint8 array or
raises ImageError with a message; never another exception. 500 images and 300 byte strings per run,
derandomised so CI is reproducible."""
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.serving import images

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),  # PIL warns on the truncated files we feed it
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # and on I-mode PNGs

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]
FORMATS = ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"]
def fuzz(n):
    return settings(max_examples=n, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(source):
    try:
        arr, small = images.load(source)
    except images.ImageError as e:
        assert str(e)
        event("refused")
        return "refused"
    event("decoded")
    assert arr.shape == (3, 32, 32) and arr.dtype == np.uint8 and small.size == (32, 32)
    return "ok"


@fuzz(500)
@given(mode=st.sampled_from(MODES), fmt=st.sampled_from(FORMATS), w=st.integers(6, 400), h=st.integers(6, 400),
       seed=st.integers(0, 2**16), truncate=st.sampled_from([None, None, None, 0.5, 0.9]), orientation=st.integers(0, 8))
def test_generated_images_decode_or_are_refused_cleanly(mode, fmt, w, h, seed, truncate, orientation):
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    try:
        im = im.convert(mode) if mode not in ("I;16", "I", "F") else Image.fromarray(
            rng.integers(0, 65535, (h, w)).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
        buf = io.BytesIO()
        extra = {}
        if orientation and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            exif = Image.Exif()
            exif[0x0112] = orientation
            extra["exif"] = exif
        im.save(buf, fmt, **extra)
    except (OSError, ValueError, KeyError, TypeError):
        event("PIL cannot write this combination")
        return
    data = buf.getvalue()
    if truncate:
        data = data[: max(1, int(len(data) * truncate))]
    _check(data)


@fuzz(300)
@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes_are_refused_cleanly(data):
    _check(data)


@fuzz(100)
@given(prefix=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP",
                               b"BM", b"II*\x00", b"MM\x00*"]), tail=st.binary(max_size=2048))
def test_valid_signatures_with_garbage_are_refused_cleanly(prefix, tail):
    _check(prefix + tail)
