"""The research package's one I/O module: compute the views once, store them stamped, read them back.

    python -m core.research.precompute [--views layer_responses lesion landscape vgg_vs_resnet shattered faithfulness
                                           robustness]
                                  [--checkpoints DIR] [--data-dir DIR] [--out DIR] [--fresh]

Each view is computed from the checkpoint folders (settings.checkpoints) and CIFAR-10
(settings.data_dir) by the pure functions of core/research/, then written to settings.research/VIEW.json
with a stamp: the sha256 of the weights of every checkpoint it used and the list of checkpoints
present, and the layout's FORMAT. Store.load returns a view's data only while all are unchanged, so
a new, retrained, removed or damaged checkpoint (or an older layout) makes the stored result stale
instead of silently wrong (the tabs say so, or compute live where they can). Each view's runtime
is printed; docs/measurements.md quotes them. The faithfulness view, the slow one, is in Store.GROWS, so it
stays current while checkpoints are only added (its line names the nets not computed yet). The views
in Store.PER_NET (faithfulness, lesion, robustness) keep a net's stored entry on a rerun while it is
still right: the same weights (sha256) and images, and for faithfulness the same settings (methods,
their defaults, step, seed, baseline), for robustness the same corruption levels and seed
(--fresh recomputes every net, as a change to the code that scores them needs), so a new pair costs
only its own two nets.

View formats (JSON): layer_responses {name: {"layers", "std", "kind"}}; lesion {name: lesion.study
("baseline", "single", "downsampling", "random" with its "pool" and "subsets", "kind") + "images",
"n_images", "seconds"}; landscape {name: landscape.surface + "n_images", "seconds"};
vgg_vs_resnet {"table": arch_cost.table()}; shattered {f"{weights}{depth}": {"lines", "notes"}};
faithfulness {name: faithfulness.study ("signs": {sign: {"deletion", "insertion": {method or RANDOM:
[AUC per image]}}}, "predicted") + "labels", "kind", "depth", "step", "n_images", "images",
"settings" (what else it depends on) and "seconds", the net's whole study}; robustness {"generated":
robustness.study ("clean", "errors", and "wrong":
each net's bit mask of the images it got wrong, per set) + "nets"
{name: {"kind", "depth"}}, "n_images", "images", "seed", "levels" (core.engine.corruptions.table()), "label",
"seconds"; "official": the same from the official CIFAR-10-C files (+ "folder", "corruptions"), or None; "official_note"}.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from core.engine import checkpoints, cifar10c, corruptions, models
from core.engine.data import DataMissingError, load_sample, load_split, normalize
from core.research import arch_cost, faithfulness, landscape, lesion, robustness, shattered, study
from core.research.attribution import DEFAULTS, METHODS
from core.settings import Settings, set_threads


class Store:
    """The stored views of one research folder, stamped against one checkpoint folder. A file of
    another FORMAT (an older layout of the data) counts as stale, like a changed checkpoint."""

    FORMAT = 3  # 2: every per-model entry carries its "kind"; 3: lesions split identity/downsampling blocks
    GROWS = frozenset({"faithfulness"})  # per-net views too slow to redo for every new checkpoint (their
    # CPU cost per net: docs/measurements.md; it grows with depth): current for the nets they have while checkpoints are
    # only added
    PER_NET = frozenset({"faithfulness", "lesion", "robustness"})  # main() hands their function the stored file
    # (`stored=`), which keeps each net's entry while it is still right and computes only the others

    def __init__(self, settings: Settings):
        self.dir, self.root = Path(settings.research), Path(settings.checkpoints)

    def stamp(self, names) -> dict[str, str]:
        """{name: sha256 of its weights} for each name among the checkpoints present now."""
        out = {}
        for name in names:
            try:
                out[name] = json.loads((self.root / name / checkpoints.METRICS).read_text())["weights_sha256"]
            except (OSError, ValueError, KeyError, TypeError):  # missing or damaged: left out, so stale
                pass
        return out

    def _shipped(self) -> list[str]:
        return [f.name for f in checkpoints.list_folders(self.root)]

    def save(self, view: str, data, names) -> Path:
        """Write DIR/VIEW.json (atomically) with the stamp of the checkpoints `names`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{view}.json"
        doc = {"view": view, "format": self.FORMAT, "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "stamp": self.stamp(names), "shipped": self._shipped(), "data": data}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, path)
        return path

    def _doc(self, view: str) -> dict | None:
        try:
            return json.loads((self.dir / f"{view}.json").read_text())
        except (OSError, ValueError):
            return None

    def _current(self, doc: dict) -> bool:
        """Same weights for every stamped checkpoint, and the same set of checkpoints present (for a
        view in GROWS: every checkpoint present then is present now, and others may have been added)."""
        if doc.get("format") != self.FORMAT or self.stamp(doc["stamp"]) != doc["stamp"]:
            return False
        if doc.get("view") in self.GROWS:
            return set(doc.get("shipped") or []) <= set(self._shipped())
        return doc.get("shipped") == self._shipped()

    def added(self, doc: dict) -> list[str]:
        """The checkpoints shipped since the view was computed (only a GROWS view can be current with some;
        a view of pairs adds a net only once its twin ships)."""
        return sorted(set(self._shipped()) - set(doc.get("shipped") or []))

    def lookup(self, view: str) -> tuple[object, str]:
        """(the stored data of VIEW, or None if there is none or it is stale; one line for the UI on
        when it was computed, from which checkpoints, and whether it is current), from one read."""
        doc = self._doc(view)
        if doc is None:
            return None, f"{view}: not precomputed for these checkpoints"
        current = self._current(doc)
        state = "current" if current else "stale: the checkpoints changed since"
        if current and self.added(doc):
            state += f"; not computed yet for {', '.join(self.added(doc))}"
        names = list(doc["stamp"])
        info = (f"Precomputed {doc['created'][:10]} from {len(names)} checkpoint{'s' * (len(names) != 1)} "
                f"({state}).") if names else f"Precomputed {doc['created'][:10]} ({state})."
        return (doc["data"] if current else None), info

    def load(self, view: str):
        """The stored data of VIEW, or None if there is none or any stamped checkpoint changed or vanished."""
        return self.lookup(view)[0]

    def info(self, view: str) -> str:
        """One line for the UI: when VIEW was computed and from which checkpoints."""
        return self.lookup(view)[1]


def _loaded(s: Settings, names=None):
    """(name, Checkpoint) for every loadable checkpoint folder (of `names`, if given); a damaged one
    is skipped with a line saying so."""
    for folder in checkpoints.list_folders(s.checkpoints):
        if names is not None and folder.name not in names:
            continue
        try:
            yield folder.name, checkpoints.load(folder)
        except checkpoints.CheckpointError as e:
            print(f"skipped: {e}")


def _stored(stored: dict | None) -> tuple[dict, dict]:
    """(data, stamp) of a stored view's file if it has this FORMAT, else ({}, {})."""
    ok = bool(stored) and stored.get("format") == Store.FORMAT
    return (stored["data"], stored["stamp"]) if ok else ({}, {})


def _kept(view: str, name: str, same: str = "weights and images") -> None:
    print(f"{view} {name}: kept from the stored view (same {same})", flush=True)


def layer_responses(s: Settings, limit: int | None = None):
    """Fig. 7 over the test set (the first `limit` images if given), each net with its own normalisation."""
    if not checkpoints.list_folders(s.checkpoints):
        return {}, []
    x, _ = load_split("test", s.data_dir)
    x = torch.from_numpy(x[:limit] if limit else x)
    out = {}
    for name, ck in _loaded(s):
        res = study.layer_responses(ck.model, normalize(x, ck.normalization))
        out[name] = {"layers": [n for n, _ in res], "std": [v for _, v in res], "kind": ck.model.spec.kind}
    return out, list(out)


def lesions(s: Settings, n_images: int = 2000, stored: dict | None = None):
    """Single and random lesions of every checkpoint on the first n_images test images (the shipped
    test sample if the test set is missing). A net's entry in `stored` is kept while its weights
    and images are the same."""
    try:
        x, y = load_split("test", s.data_dir)
        x, y, which = x[:n_images], y[:n_images], f"first {min(n_images, len(y))} of the CIFAR-10 test set"
    except DataMissingError:
        x, y = load_sample(Path(s.sample))
        which = f"the {len(y)} test images of {Path(s.sample).name} (test set not found)"
    out = {}
    old, stamp = _stored(stored)
    for name, ck in _loaded(s):
        e = old.get(name, {})
        if stamp.get(name) == ck.metrics.get("weights_sha256") and (e.get("images"), e.get("n_images")) == (which, len(y)):
            out[name] = e
            _kept("lesion", name)
            continue
        t = time.perf_counter()
        res = lesion.study(ck.model.eval(), x, y, ck.normalization)
        out[name] = {**res, "images": which, "n_images": int(len(y)), "seconds": round(time.perf_counter() - t, 1)}
    return out, list(out)


def surfaces(s: Settings, n_images: int = 500, steps: int = 11, span: float = 1.0, device=None):
    """A steps x steps loss surface over [-span, span]^2 (direction seeds 0 and 1) of the pair the page
    opens on (checkpoints.opening_pair), on the first n_images TRAINING images (the training objective), in eval mode.
    The defaults (500 images, 11 x 11) are sized for a CPU; on a GPU use 1000 images, 21 x 21+."""
    names = checkpoints.opening_pair(s.checkpoints) or ()
    if not names:
        return {}, []
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    x, y = load_split("train", s.data_dir)
    x, y = torch.as_tensor(x[:n_images]), torch.as_tensor(y[:n_images])
    out = {}
    for name, ck in _loaded(s, names):
        t = time.perf_counter()
        res = landscape.surface(ck.model, normalize(x, ck.normalization), y, landscape.grid(span, steps),
                                landscape.grid(span, steps), device=device)
        out[name] = {**res, "n_images": int(len(x)), "seconds": round(time.perf_counter() - t, 1)}
    return out, list(out)


def gradient_lines(s: Settings):
    """Shattered gradients between test-sample images 0 and 1 at every depth of the paper's pairs,
    at init (shattered.init_pair: BN statistics from 64 other sample images) and trained (the
    checkpoints present; absent ones noted)."""
    x, _ = load_sample(Path(s.sample))
    shipped = [f.name for f in checkpoints.list_folders(s.checkpoints)]
    out, used = {}, []
    for depth in models.DEPTHS:
        out[f"init{depth}"] = {"lines": shattered.pair_lines(shattered.init_pair(depth, x), x, "init"), "notes": []}
        nets, notes = {}, []
        for name in models.pair(depth):
            if name not in shipped:
                notes.append(f"`{name}`: unavailable. {checkpoints.not_shipped(name, shipped)}")
                continue
            try:
                ck = checkpoints.load(Path(s.checkpoints) / name)
            except checkpoints.CheckpointError as e:
                notes.append(f"`{name}`: unavailable. {checkpoints.damaged(name, e)}")
                continue
            nets[name] = ck.model, ck.normalization
            used.append(name)
        out[f"trained{depth}"] = {"lines": shattered.pair_lines(nets, x, "trained"), "notes": notes}
    return out, sorted(set(used))


def _faithfulness_settings() -> dict:
    """What a faithfulness entry depends on besides the weights and the images: the methods and their
    default parameters, the step, the tie-breaking seed, the baseline and the signs (a change to the
    scoring code itself is not seen: rerun with --fresh then)."""
    return {"methods": list(METHODS), "defaults": dict(DEFAULTS), "step": faithfulness.STEP,
            "tie_seed": faithfulness.TIE_SEED, "baseline": faithfulness.BASELINE, "signs": list(faithfulness.SIGNS)}


def _continues(entry: dict, stamped: str | None, sha: str, labels: list[int]) -> bool:
    """Whether a stored faithfulness entry is the start of what faithfulness_study computes now: made
    from the same weights (sha256), with the same settings, on the first images of the same test set
    (its labels a prefix of `labels`). Entries stored before the settings were recorded never are."""
    have = entry.get("labels") or []
    return (stamped == sha and entry.get("settings") == _faithfulness_settings()
            and have == labels[:len(have)] and len(have) > 0)


def _grown(old: dict, new: dict) -> dict:
    """A faithfulness entry (old) followed by a study of the next images (new, faithfulness.study's)."""
    if not old:
        return new
    signs = {s: {c: {m: old["signs"][s][c][m] + v for m, v in new["signs"][s][c].items()} for c in new["signs"][s]}
             for s in new["signs"]}
    return {"signs": signs, "predicted": old["predicted"] + new["predicted"]}


def faithfulness_study(s: Settings, n_images: int = 500, stored: dict | None = None, chunk: int = 10, save=None):
    """Deletion and insertion AUCs of every attribution method (default parameters) and of the random
    order, per image, on the first n_images test images, for each net of every shipped plain/residual
    pair, shallow pairs first; each image is explained for the net's own prediction, pixels ranked by
    each of faithfulness.SIGNS. The study grows and resumes: a net's entry in `stored` (the view's
    stored file: {"stamp", "format", "data"}) is kept while it continues what would be computed now
    (_continues), and only its missing images are added, `chunk` at a time, each chunk handed to
    `save(data, names)` (main writes the view then), so a stopped run loses at most one chunk and
    the next run goes on from there. An entry with more images than n_images is kept whole."""
    shipped = {f.name for f in checkpoints.list_folders(s.checkpoints)}
    names = [n for d in models.DEPTHS for n in models.pair(d) if set(models.pair(d)) <= shipped]
    if not names:
        return {}, []
    x, y = load_split("test", s.data_dir)
    x, labels = torch.as_tensor(x[:n_images]), y[:n_images].tolist()
    old, stamp = _stored(stored)
    shas = Store(s).stamp(names)
    out = {n: old[n] for n in names if n in old and _continues(old[n], stamp.get(n), shas.get(n), y.tolist())}
    for name, ck in sorted(_loaded(s, names), key=lambda nc: names.index(nc[0])):  # shallow pairs first
        have = len(out[name]["labels"]) if name in out else 0
        if have >= len(labels):
            _kept("faithfulness", name, "weights, images and settings")
            continue
        if have:
            print(f"faithfulness {name}: {have} images kept, continuing to {len(labels)}", flush=True)
        prev = out.get(name)
        t, spent = time.perf_counter(), (prev or {}).get("seconds", 0.0)
        xn = normalize(x, ck.normalization)
        for a in range(have, len(labels), chunk):
            b = min(a + chunk, len(labels))
            res = _grown(out.get(name), faithfulness.study(ck.model, xn[a:b], list(METHODS), start=a))
            out[name] = {**res, "labels": labels[:b], "kind": ck.model.spec.kind, "depth": ck.model.spec.depth,
                         "step": faithfulness.STEP, "n_images": b, "settings": _faithfulness_settings(),
                         "images": f"first {b} of the CIFAR-10 test set",
                         "seconds": round(spent + time.perf_counter() - t, 1)}
            print(f"faithfulness {name}: {b}/{len(labels)} images, {time.perf_counter() - t:.0f} s", flush=True)
            if save:
                save(out, list(out))
    return out, list(out)


def robustness_study(s: Settings, n_images: int = 10_000, seed: int = 0, stored: dict | None = None):
    """Every shipped net's error on the first n_images test images under each corruption of
    core.engine.corruptions at each severity (generated here, seeded), and under the official CIFAR-10-C
    files if they are in <data dir>/CIFAR-10-C (its 15 benchmark corruptions that are present).
    A net's results in `stored` are kept, per part, while its weights and that part's images, label,
    seed and levels (or folder) are the same; the corrupted sets are made only if a net needs them."""
    loaded = dict(_loaded(s))
    nets = {name: (ck.model.eval(), ck.normalization) for name, ck in loaded.items()}
    if not nets:
        return {}, []
    old, stamp = _stored(stored)
    x, y = load_split("test", s.data_dir)
    x, y = x[:n_images], y[:n_images]
    about = {"nets": {n: {"kind": m.spec.kind, "depth": m.spec.depth} for n, (m, _) in nets.items()},
             "n_images": int(len(y)), "images": f"first {len(y)} of the CIFAR-10 test set"}

    def run(part, sets, label, **extra):  # sets: a function making the (corruption, severity, images) sets
        t, prev = time.perf_counter(), old.get(part) or {}
        same = all(prev.get(k) == v for k, v in {**about, **extra, "label": label}.items() if k != "nets")
        kept = [n for n in nets if same and n in prev.get("clean", {})
                and stamp.get(n) == loaded[n].metrics.get("weights_sha256")]
        for n in kept:
            _kept(f"robustness ({label})", n)
        todo = {n: v for n, v in nets.items() if n not in kept}
        res = robustness.study(todo, x, y, sets(), progress=lambda c, sev: print(
            f"robustness ({label}): {c} severity {sev}, {time.perf_counter() - t:.0f} s", flush=True)) if todo else {}
        res = {key: {n: (prev if n in kept else res)[key][n] for n in nets} for key in ("clean", "errors", "wrong")}
        return {**res, **about, **extra, "label": label, "seconds": round(time.perf_counter() - t, 1)}
    out = {"generated": run("generated", lambda: robustness.generated(x, seed=seed), "CIFAR-10-C-style (generated here)",
                            seed=seed, levels=corruptions.table())}
    folder = cifar10c.find(s.data_dir)
    names = [c for c in cifar10c.available(folder) if c in cifar10c.BENCHMARK] if folder else []
    out["official"] = run("official", lambda: robustness.official(folder, y, names), "official CIFAR-10-C",
                          folder=str(folder), corruptions=names) if names else None
    out["official_note"] = (f"official CIFAR-10-C: {len(names)} of its {len(cifar10c.BENCHMARK)} benchmark "
                            f"corruptions, from {folder}") if names else \
        "official CIFAR-10-C: its files were not found when this study was computed"
    return out, list(nets)


def costs(s: Settings):
    return {"table": arch_cost.table()}, []


VIEWS = {"layer_responses": layer_responses, "lesion": lesions, "landscape": surfaces,
         "vgg_vs_resnet": costs, "shattered": gradient_lines, "faithfulness": faithfulness_study,
         "robustness": robustness_study}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m core.research.precompute", description=__doc__.split("\n\n")[0])
    ap.add_argument("--views", nargs="+", choices=list(VIEWS), default=list(VIEWS))
    ap.add_argument("--checkpoints", help="folder of checkpoint folders (default $RESNET_LAB_CHECKPOINTS, checkpoints/)")
    ap.add_argument("--data-dir", help="folder holding cifar-10-batches-bin/ (default $CIFAR10_DIR, data/)")
    ap.add_argument("--out", help="folder for the VIEW.json files (default assets/research/)")
    ap.add_argument("--fresh", action="store_true",
                    help="recompute every net of the per-net views, faithfulness, lesion and robustness (by default "
                         "a net's stored entry is kept while its weights, images and settings are unchanged)")
    ap.add_argument("--faithfulness-images", type=int, default=500, metavar="N",
                    help="grow the faithfulness study to the first N test images of every pair (default 500); it "
                         "is saved every 10 images per net, and a rerun continues where the last one stopped")
    a = ap.parse_args(argv)
    s = Settings.from_env(checkpoints=a.checkpoints, data_dir=a.data_dir, research=a.out)
    set_threads(s.threads)
    store = Store(s)
    for view in a.views:
        t = time.perf_counter()
        try:
            reuse = view in Store.PER_NET and not a.fresh  # keep the entries still right
            extra = {"n_images": a.faithfulness_images,
                     "save": lambda d, n: store.save(view, d, n)} if view == "faithfulness" else {}
            data, names = VIEWS[view](s, stored=store._doc(view), **extra) if reuse else VIEWS[view](s, **extra)
        except DataMissingError as e:
            raise SystemExit(str(e)) from None
        path = store.save(view, data, names)
        print(f"{view}: {time.perf_counter() - t:.1f} s -> {path} (checkpoints: {', '.join(names) or 'none'})")


if __name__ == "__main__":
    main()
