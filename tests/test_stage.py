"""tools/stage.py, the lease's data staging: the lossless bands of a CIFAR-10 mosaic, carried in
folders that each fit the room left beside the tree, rebuild the batch's .bin byte for byte (the
shared unpack.py's own rebuild of the whole mosaic is the reference, and its MD5 is checked), and
only once all of a batch's rows have arrived. A synthetic mosaic (every pixel a different function
of row, column and channel) keeps it fast; the real batches were checked once by hand (README)."""
import hashlib
import importlib.util

import numpy as np
import pytest
from PIL import Image

from tests.support import ROOT, ci
from tools import stage

UNPACK = ROOT.parent / "shared" / "cifar10" / "unpack.py"


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    """A folder in the shared layout with one synthetic test_batch, and the .bin that unpack.py makes of it."""
    if not UNPACK.is_file():
        if ci():
            pytest.fail(f"{UNPACK} is missing; $CI is set, so this fails instead of skipping", pytrace=False)
        pytest.skip(f"{UNPACK} is missing")
    spec = importlib.util.spec_from_file_location("shared_unpack", UNPACK)
    shared = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared)
    src = tmp_path_factory.mktemp("shared")
    i, j, c = np.meshgrid(np.arange(3200), np.arange(3200), np.arange(3), indexing="ij")
    Image.fromarray(((i * 7 + j * 13 + c * 101 + (i * j) % 29) % 256).astype(np.uint8)).save(
        src / "test_batch.webp", "WEBP", lossless=True)
    (src / "test_batch.labels").write_bytes(bytes(k % 10 for k in range(10_000)))
    return src, shared.rebuild(str(src), "test_batch")


def test_bands_in_folders_that_fit_rebuild_the_batch(mosaic, tmp_path):
    src, raw = mosaic
    md5 = {"test_batch.bin": hashlib.md5(raw).hexdigest()}  # the real batches: core.engine.data.MD5, the default
    band = max(len(webp) + len(labels) for _, _, webp, labels in stage.bands(src, "test_batch", 25))
    room = 2 * band  # two bands
    folders = stage.plan(src, tmp_path, room, rows=25, names=["test_batch"])
    assert len(folders) == 2 and all(sum(p.stat().st_size for p in f.iterdir()) <= room for f in folders)
    assert sorted(p.name for f in folders for p in f.glob("*.webp")) == [
        f"test_batch.{a:02d}-{a + 25:02d}.webp" for a in (0, 25, 50, 75)]
    out = tmp_path / "data"
    assert stage.unpack(out, folders[1], md5)  # the later rows first: nothing to write yet
    assert not (out / "cifar-10-batches-bin" / "test_batch.bin").exists()
    assert stage.unpack(out, folders[0], md5)
    assert (out / "cifar-10-batches-bin" / "test_batch.bin").read_bytes() == raw and len(raw) == 10_000 * 3073
    assert not list((out / ".stage").iterdir())  # the parts are gone once the batch is written
    bad = tmp_path / "bad"  # the same bands against another MD5: no .bin, and a failure
    wrong = {"test_batch.bin": "0" * 32}
    assert stage.unpack(bad / "data", folders[1], wrong) and not stage.unpack(bad / "data", folders[0], wrong)
    assert not (bad / "data" / "cifar-10-batches-bin" / "test_batch.bin").exists()
    with pytest.raises(SystemExit, match="use --rows 12"):
        stage.plan(src, tmp_path, band - 1, rows=25, names=["test_batch"])


def test_the_tree_is_measured_as_a_call_carries_it():
    assert stage.tree_bytes() >= (ROOT / "README.md").stat().st_size + (ROOT / "app.py").stat().st_size
