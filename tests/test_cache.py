"""research.store: stored views come back only while the checkpoints they were computed from are unchanged."""
import json
import shutil

from research import store as cache
from engine import checkpoints
from serving import zoo


def test_a_changed_checkpoint_makes_the_view_stale(tmp_path, monkeypatch):
    root = tmp_path / "ck"
    for f in checkpoints.list_folders()[:1]:
        shutil.copytree(f, root / f.name)
    names = [p.name for p in root.iterdir()]
    monkeypatch.setattr(zoo, "ROOT", root)
    monkeypatch.setattr(cache, "ASSETS", tmp_path / "research")
    assert cache.load("demo") is None and "not precomputed" in cache.info("demo")
    cache.save("demo", {"x": [1, 2]}, names)
    assert cache.load("demo") == {"x": [1, 2]} and "current" in cache.info("demo")
    if names:  # with a shipped checkpoint: retraining it (a new sha256) invalidates the view
        m = root / names[0] / checkpoints.METRICS
        metrics = json.loads(m.read_text())
        m.write_text(json.dumps({**metrics, "weights_sha256": "0" * 64}))
        assert cache.load("demo") is None and "STALE" in cache.info("demo")
        m.write_text("{ not json")  # damaged: stale, never a crash
        assert cache.load("demo") is None and "STALE" in cache.info("demo")
        shutil.rmtree(root / names[0])  # removed: stale too
        assert cache.load("demo") is None
    cache.save("demo", {"x": 1}, [])
    assert cache.load("demo") == {"x": 1}
    shutil.copytree(checkpoints.list_folders()[0], root / "resnet110")  # a newly shipped model: stale
    assert cache.load("demo") is None


def test_shipped_views_are_current():
    for view in ("layer_responses", "lesion", "landscape", "shattered", "vgg_vs_resnet"):
        assert cache.load(view) is not None, f"{view}: {cache.info(view)}"
