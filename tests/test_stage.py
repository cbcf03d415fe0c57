"""bench/stage.py, the lease's data staging: the lossless bands of a CIFAR-10 mosaic, carried in
folders that each fit the room left beside the tree, rebuild the official .bin byte for byte (MD5 of
the shared manifest), and only once all of a batch's rows have arrived."""
import hashlib
import json
import shutil

import pytest

from bench import stage
from tests.support import ROOT, ci

SHARED = ROOT.parent / "shared" / "cifar10"


@pytest.fixture(scope="module")
def shared():
    if not (SHARED / "test_batch.webp").is_file():
        if ci():
            pytest.fail(f"{SHARED} is missing; $CI is set, so this fails instead of skipping", pytrace=False)
        pytest.skip(f"{SHARED} is missing")
    return SHARED


def test_bands_in_folders_that_fit_rebuild_the_batch(shared, tmp_path):
    room = 9 * stage.MIB
    folders = stage.plan(shared, tmp_path, room, rows=25, names=["test_batch"])
    assert [f.name for f in folders] == [".stage-1", ".stage-2"]  # 4 bands of about 4 MiB, 2 per folder
    assert all(sum(p.stat().st_size for p in f.iterdir()) <= room for f in folders)
    assert sorted(p.name for f in folders for p in f.glob("*.webp")) == [
        f"test_batch.{a:02d}-{a + 25:02d}.webp" for a in (0, 25, 50, 75)]
    out = tmp_path / "data"
    assert stage.unpack(out, folders[1])  # the later rows first: nothing to write yet
    assert not (out / "cifar-10-batches-bin" / "test_batch.bin").exists()
    assert stage.unpack(out, folders[0])
    raw = (out / "cifar-10-batches-bin" / "test_batch.bin").read_bytes()
    want = json.loads((shared / "manifest.json").read_text())["md5"]["test_batch"]
    assert len(raw) == 10_000 * 3073 and hashlib.md5(raw).hexdigest() == want
    assert not list((out / ".stage").iterdir())  # the parts are gone once the batch is written
    bad = tmp_path / "bad"  # the same bands against another MD5: no .bin, and a failure
    for f in folders:
        shutil.copytree(f, bad / f.name)
        (bad / f.name / "manifest.json").write_text(json.dumps({"md5": {"test_batch": "0" * 32}}))
    assert stage.unpack(bad / "data", bad / ".stage-1") and not stage.unpack(bad / "data", bad / ".stage-2")
    assert not (bad / "data" / "cifar-10-batches-bin" / "test_batch.bin").exists()
    with pytest.raises(SystemExit, match="use --rows 12"):
        stage.plan(shared, tmp_path, 2 * stage.MIB, rows=25, names=["test_batch"])


def test_the_tree_is_measured_as_a_call_carries_it():
    assert stage.tree_bytes() >= (ROOT / "README.md").stat().st_size + (ROOT / "app.py").stat().st_size
