"""core.research.precompute.Store: stored views come back only while the checkpoints they were computed from
are unchanged; the shipped views are current."""
import json
import shutil

from core.engine import checkpoints
from core.research.precompute import VIEWS, Store
from core.settings import Settings


def test_a_changed_checkpoint_makes_the_view_stale(tmp_path):
    root = tmp_path / "ck"
    shutil.copytree(checkpoints.DEFAULT_ROOT / "resnet20", root / "resnet20")
    store = Store(Settings(checkpoints=root, research=tmp_path / "research"))
    assert store.load("demo") is None and "not precomputed" in store.info("demo")
    store.save("demo", {"x": [1, 2]}, ["resnet20"])
    assert store.load("demo") == {"x": [1, 2]} and "current" in store.info("demo")
    assert "from 1 checkpoint (current)" in store.info("demo")
    m = root / "resnet20" / checkpoints.METRICS  # retrained: a new sha256 invalidates the view
    metrics = json.loads(m.read_text())
    m.write_text(json.dumps({**metrics, "weights_sha256": "0" * 64}))
    assert store.load("demo") is None and "stale" in store.info("demo")
    m.write_text("{ not json")  # damaged: stale, never a crash
    assert store.load("demo") is None and "stale" in store.info("demo")
    shutil.rmtree(root / "resnet20")  # removed: stale too
    assert store.load("demo") is None
    store.save("demo", {"x": 1}, [])
    assert store.load("demo") == {"x": 1}
    shutil.copytree(checkpoints.DEFAULT_ROOT / "plain20", root / "plain20")  # a newly shipped model: stale
    assert store.load("demo") is None


def test_shipped_views_are_current():
    store = Store(Settings())
    for view in VIEWS:
        assert store.load(view) is not None, f"{view}: {store.info(view)} (run python -m core.research.precompute)"


def test_an_older_layout_is_stale(tmp_path):
    store = Store(Settings(checkpoints=tmp_path / "none", research=tmp_path))
    path = store.save("demo", {"x": 1}, [])
    assert store.load("demo") == {"x": 1}
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "format": Store.FORMAT - 1}))
    assert store.load("demo") is None and "stale" in store.info("demo")


def test_a_growing_view_stays_current_while_checkpoints_are_only_added(tmp_path):
    """faithfulness (Store.GROWS) keeps its entries when a model ships, names the model it lacks, and
    still goes stale when one of its own checkpoints changes or goes; other views go stale at once."""
    root = tmp_path / "ck"
    shutil.copytree(checkpoints.DEFAULT_ROOT / "resnet20", root / "resnet20")
    store = Store(Settings(checkpoints=root, research=tmp_path / "research"))
    assert "faithfulness" in Store.GROWS and "landscape" not in Store.GROWS
    for view in ("faithfulness", "landscape"):
        store.save(view, {"resnet20": 1}, ["resnet20"])
    assert "not computed yet" not in store.info("faithfulness")
    shutil.copytree(checkpoints.DEFAULT_ROOT / "plain20", root / "plain20")  # a newly shipped model
    assert store.load("faithfulness") == {"resnet20": 1} and store.load("landscape") is None
    info = store.info("faithfulness")
    assert "current; not computed yet for plain20" in info and "python" not in info  # visitors get no CLI
    m = root / "resnet20" / checkpoints.METRICS  # one of its own nets retrained: stale
    metrics = json.loads(m.read_text())
    m.write_text(json.dumps({**metrics, "weights_sha256": "0" * 64}))
    assert store.load("faithfulness") is None
    m.write_text(json.dumps(metrics))
    store.save("faithfulness", {"resnet20": 1, "plain20": 2}, ["resnet20", "plain20"])
    shutil.rmtree(root / "plain20")  # a net it has, removed: stale
    assert store.load("faithfulness") is None and "stale" in store.info("faithfulness")
