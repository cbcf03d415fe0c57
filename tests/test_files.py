"""core.serving.files: output files named by content and written whole, even under concurrent writers."""
import hashlib
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.serving import files


def test_a_file_is_named_by_its_content(tmp_path):
    path = files.publish(b"abc", tmp_path, "x.csv")
    assert Path(path) == tmp_path / hashlib.sha256(b"abc").hexdigest() / "x.csv"
    assert Path(path).read_bytes() == b"abc"
    assert files.publish(b"abc", tmp_path, "x.csv") == path
    assert files.publish(b"abd", tmp_path, "x.csv") != path
    assert not [p for p in tmp_path.rglob(".*")]  # no temp file left behind


@pytest.mark.parametrize("name", ["", ".hidden", "../x.png", "a/b.png"])
def test_a_name_must_be_a_plain_file_name(tmp_path, name):
    with pytest.raises(ValueError, match="plain file name"):
        files.publish(b"x", tmp_path, name)


def test_readers_never_see_a_partial_file_while_many_threads_write_it(tmp_path):
    """16 writers publish the same 2 MiB over and over while readers read the path; a writer that
    truncated and rewrote in place (as gradio.processing_utils.save_pil_to_cache does) fails this."""
    data = np.random.default_rng(0).bytes(2 << 20)
    path = Path(tmp_path / hashlib.sha256(data).hexdigest() / "big.bin")
    seen, returned, errors, stop = [], [], [], threading.Event()

    def write():  # an assert here would only be a thread warning: collect, and assert below
        try:
            for _ in range(20):
                path.unlink(missing_ok=True)  # force a real write each time, not the "already there" path
                returned.append(files.publish(data, tmp_path, "big.bin"))
        except BaseException as e:
            errors.append(e)

    def read():
        try:
            while not stop.is_set():
                try:
                    seen.append(len(path.read_bytes()))
                except FileNotFoundError:
                    pass
        except BaseException as e:
            errors.append(e)
    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write) for _ in range(16)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert returned == [str(path)] * (16 * 20)
    assert seen and set(seen) == {len(data)}
    assert path.read_bytes() == data and [p.name for p in path.parent.iterdir()] == ["big.bin"]


def test_png_is_lossless_and_the_same_bytes_for_the_same_pixels():
    arr = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    data = files.png(arr)
    assert data == files.png(Image.fromarray(arr)) == files.png(arr.copy())
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), arr)
    with pytest.raises(ValueError, match="uint8"):
        files.png(arr.astype(np.float32))


def test_publish_png(tmp_path):
    arr = np.zeros((8, 8, 3), np.uint8)
    path = files.publish_png(arr, tmp_path, "seen.png")
    assert path.endswith("/seen.png") and Image.open(path).size == (8, 8)
