"""`python -m core.research.precompute`, as a user runs it: views written stamped to --out from --checkpoints,
read back current by Store; a clear exit without CIFAR-10; the driver's views on a tiny subset."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

from core.engine import checkpoints
from core.research import precompute
from core.research.precompute import Store
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "core.research.precompute", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_writes_stamped_views(tmp_path, cifar_dir):
    ck = tmp_path / "ck"
    shutil.copytree(checkpoints.DEFAULT_ROOT / "resnet20", ck / "resnet20")
    out = tmp_path / "research"
    r = _run("--views", "vgg_vs_resnet", "shattered", "--checkpoints", str(ck), "--out", str(out),
             "--data-dir", str(cifar_dir))
    assert r.returncode == 0, r.stderr
    assert "vgg_vs_resnet:" in r.stdout and "shattered:" in r.stdout and "(checkpoints: resnet20)" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["shattered.json", "vgg_vs_resnet.json"]
    doc = json.loads((out / "shattered.json").read_text())
    assert list(doc["stamp"]) == ["resnet20"] and doc["shipped"] == ["resnet20"]
    store = Store(Settings(checkpoints=ck, research=out))
    data = store.load("shattered")
    assert list(data["trained20"]["lines"]) == ["resnet20 (trained)"]  # plain20 is not in this folder
    assert data["trained20"]["notes"] == ["`plain20`: unavailable. plain20 has no trained checkpoint yet "
                                          "(it comes with a later GPU run); trained now: resnet20"]
    assert list(data["init110"]["lines"]) == ["plain110 (init)", "resnet110 (init)"]
    assert data["init110"]["lines"]["plain110 (init)"]["kind"] == "plain"
    assert store.load("vgg_vs_resnet")["table"][0]["arch"] == "vgg16"


def test_cli_without_data_says_how_to_get_it(tmp_path):
    r = _run("--views", "layer_responses", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path))
    assert r.returncode == 1 and "CIFAR-10 (binary version) was not found" in r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.glob("*.json"))


def test_lesion_and_landscape_views_on_a_subset(tmp_path, cifar_dir):
    for name in ("plain20", "resnet20"):
        shutil.copytree(checkpoints.DEFAULT_ROOT / name, tmp_path / name)
    s = Settings(checkpoints=tmp_path, data_dir=cifar_dir)
    data, names = precompute.lesions(s, n_images=20)
    assert names == ["plain20", "resnet20"] and data["plain20"]["images"] == "first 20 of the CIFAR-10 test set"
    assert [d["kind"] for d in data.values()] == ["plain", "residual"] and len(data["resnet20"]["single"]) == 9
    assert data["resnet20"]["downsampling"] == ["layer2.0", "layer3.0"]
    assert len(data["resnet20"]["random"]["pool"]) == 7 and data["resnet20"]["random"]["k"] == list(range(1, 8))
    surf, names = precompute.surfaces(s, n_images=16, steps=3, device="cpu")
    assert names == ["plain20", "resnet20"] and surf["resnet20"]["alpha"] == [-1.0, 0.0, 1.0]
    assert surf["resnet20"]["n_images"] == 16 and len(surf["resnet20"]["loss"]) == 3
    shutil.rmtree(tmp_path / "plain20")  # no complete pair: no landscape
    assert precompute.surfaces(s) == ({}, [])


def test_faithfulness_view_on_a_subset(tmp_path, cifar_dir, monkeypatch):
    for name in ("plain20", "resnet20"):
        shutil.copytree(checkpoints.DEFAULT_ROOT / name, tmp_path / name)
    data, names = precompute.faithfulness_study(Settings(checkpoints=tmp_path, data_dir=cifar_dir), n_images=2)
    assert names == ["plain20", "resnet20"] and data["resnet20"]["images"] == "first 2 of the CIFAR-10 test set"
    assert data["resnet20"]["labels"] == [3, 8] and len(data["resnet20"]["predicted"]) == 2
    assert set(data["plain20"]["signs"]) == {"absolute", "all"}
    assert len(data["plain20"]["signs"]["all"]["insertion"]["Occlusion"]) == 2
    store = Store(Settings(checkpoints=tmp_path, research=tmp_path / "research"))
    store.save("faithfulness", data, names)
    computed = []
    real = precompute.faithfulness.study
    monkeypatch.setattr(precompute.faithfulness, "study", lambda m, *a, **k: computed.append(m) or real(m, *a, **k))
    s = Settings(checkpoints=tmp_path, data_dir=cifar_dir)
    again, _ = precompute.faithfulness_study(s, n_images=2, stored=store._doc("faithfulness"))
    assert again == data and computed == []  # same weights, images and methods: both entries kept
    doc = store._doc("faithfulness")
    doc["stamp"]["resnet20"] = "0" * 64  # stored from other weights
    precompute.faithfulness_study(s, n_images=2, stored=doc)
    assert [c.spec.name for c in computed] == ["resnet20"]
    doc = store._doc("faithfulness")
    doc["data"]["plain20"]["settings"]["defaults"]["ig_steps"] += 1  # other method parameters
    del doc["data"]["resnet20"]["settings"]  # stored before settings were recorded
    precompute.faithfulness_study(s, n_images=2, stored=doc)
    assert [c.spec.name for c in computed] == ["resnet20", "plain20", "resnet20"]
    data, names = precompute.faithfulness_study(s, n_images=2)  # both fresh, then grown by one image each
    store.save("faithfulness", data, names)
    saved = []
    grown, _ = precompute.faithfulness_study(s, n_images=3, stored=store._doc("faithfulness"),
                                             save=lambda d, n: saved.append({k: v["n_images"] for k, v in d.items()}))
    assert [c.spec.name for c in computed][3:] == ["plain20", "resnet20"] * 2  # the fresh pair, then the growth
    assert saved == [{"plain20": 3, "resnet20": 2}, {"plain20": 3, "resnet20": 3}]  # each chunk saved: resumable
    fresh, _ = precompute.faithfulness_study(s, n_images=3)  # the grown study is the one computed in one go
    strip = {k: {f: v for f, v in e.items() if f != "seconds"} for k, e in grown.items()}
    assert strip == {k: {f: v for f, v in e.items() if f != "seconds"} for k, e in fresh.items()}
    assert grown["resnet20"]["n_images"] == 3 and grown["resnet20"]["labels"] == [3, 8, 8]
    shutil.rmtree(tmp_path / "plain20")  # no complete pair: nothing to compare
    assert precompute.faithfulness_study(Settings(checkpoints=tmp_path, data_dir=cifar_dir)) == ({}, [])


def test_robustness_view_on_a_subset(tmp_path, cifar_dir, monkeypatch):
    from core.engine import cifar10c, corruptions

    shutil.copytree(checkpoints.DEFAULT_ROOT / "resnet20", tmp_path / "resnet20")
    s = Settings(checkpoints=tmp_path, data_dir=cifar_dir)
    data, names = precompute.robustness_study(s, n_images=8)
    gen = data["generated"]
    assert names == ["resnet20"] and gen["nets"] == {"resnet20": {"kind": "residual", "depth": 20}}
    assert gen["label"] == "CIFAR-10-C-style (generated here)" and gen["n_images"] == 8 and gen["seed"] == 0
    assert list(gen["errors"]["resnet20"]) == list(corruptions.CORRUPTIONS)
    assert all(len(v) == 5 for v in gen["errors"]["resnet20"].values()) and gen["levels"] == corruptions.table()
    assert data["official"] is None and "not found" in data["official_note"]
    # an official set present (faked): only its benchmark corruptions, read from its files
    x, y = (a[:8] for a in precompute.load_split("test", cifar_dir))
    monkeypatch.setattr(cifar10c, "find", lambda d: tmp_path)
    monkeypatch.setattr(cifar10c, "available", lambda folder: ["fog", "speckle_noise"])
    monkeypatch.setattr(cifar10c, "load", lambda folder, c, sev, n: (x[:n], y[:n]))
    data, _ = precompute.robustness_study(s, n_images=8)
    off = data["official"]
    assert off["label"] == "official CIFAR-10-C" and list(off["errors"]["resnet20"]) == ["fog"]
    assert off["errors"]["resnet20"]["fog"] == [off["clean"]["resnet20"]] * 5  # the clean images, as faked
    assert data["official_note"].startswith("official CIFAR-10-C: 1 of its 15 benchmark corruptions")
    shutil.rmtree(tmp_path / "resnet20")
    assert precompute.robustness_study(s) == ({}, [])


def test_lesion_and_robustness_reruns_compute_only_the_nets_that_changed(tmp_path, cifar_dir, monkeypatch):
    """Store.PER_NET: a rerun with the stored file keeps each net's entry while its weights and images
    (and for robustness the seed and levels) are the same, and computes only new or changed nets."""
    shutil.copytree(checkpoints.DEFAULT_ROOT / "resnet20", tmp_path / "resnet20")
    s = Settings(checkpoints=tmp_path, data_dir=cifar_dir)
    store = Store(Settings(checkpoints=tmp_path, research=tmp_path / "research"))
    assert {"faithfulness", "lesion", "robustness"} == Store.PER_NET and "robustness" not in Store.GROWS
    lesions, _ = precompute.lesions(s, n_images=12)
    robust, _ = precompute.robustness_study(s, n_images=8)
    store.save("lesion", lesions, ["resnet20"])
    store.save("robustness", robust, ["resnet20"])
    shutil.copytree(checkpoints.DEFAULT_ROOT / "plain20", tmp_path / "plain20")  # a newly shipped net
    studied, real_l, real_r = [], precompute.lesion.study, precompute.robustness.study
    monkeypatch.setattr(precompute.lesion, "study", lambda m, *a, **k: studied.append(m.spec.name) or real_l(m, *a, **k))
    monkeypatch.setattr(precompute.robustness, "study", lambda nets, *a, **k: studied.extend(nets) or real_r(nets, *a, **k))
    again, names = precompute.lesions(s, n_images=12, stored=store._doc("lesion"))
    assert studied == ["plain20"] and names == ["plain20", "resnet20"]
    assert again["resnet20"] == json.loads(json.dumps(lesions["resnet20"])) and again["plain20"]["kind"] == "plain"
    both, names = precompute.robustness_study(s, n_images=8, stored=store._doc("robustness"))
    gen, old = both["generated"], robust["generated"]
    assert studied[1:] == ["plain20"] and names == ["plain20", "resnet20"] and list(gen["nets"]) == names
    assert all(gen[k]["resnet20"] == old[k]["resnet20"] for k in ("clean", "errors", "wrong"))
    assert list(gen["errors"]["plain20"]) == list(old["errors"]["resnet20"]) and gen["n_images"] == 8
    store.save("lesion", again, names)
    store.save("robustness", both, names)
    del studied[:]  # which nets a rerun computes (fakes from here: the results were checked above)
    monkeypatch.setattr(precompute.lesion, "study", lambda m, *a, **k: studied.append(m.spec.name) or {})
    monkeypatch.setattr(precompute.robustness, "study", lambda nets, *a, **k: studied.extend(nets) or {
        key: {n: {} for n in nets} for key in ("clean", "errors", "wrong")})
    monkeypatch.setattr(precompute.robustness, "generated", lambda *a, **k: iter(()))
    precompute.lesions(s, n_images=12, stored=store._doc("lesion"))
    precompute.robustness_study(s, n_images=8, stored=store._doc("robustness"))
    assert studied == []  # nothing changed: nothing computed
    doc = store._doc("lesion")
    doc["stamp"]["resnet20"] = "0" * 64  # stored from other weights: that net again
    precompute.lesions(s, n_images=12, stored=doc)
    precompute.lesions(s, n_images=10, stored=store._doc("lesion"))  # other images: every net
    precompute.robustness_study(s, n_images=8, seed=1, stored=store._doc("robustness"))  # another seed: every net
    assert studied == ["resnet20", "plain20", "resnet20", "plain20", "resnet20"]
