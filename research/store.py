"""Precomputed research data in assets/research/VIEW.json, stamped with the checkpoints it came from.

Expensive analyses (layer responses over the test set, lesions, landscapes...) are computed once by
`python -m research.precompute` and stored small. Each file records the sha256 of the weights of every
checkpoint it used and the list of shipped checkpoints; `load` returns the data only while both are
unchanged, so a new, retrained, removed or damaged checkpoint makes the stored result stale instead
of silently wrong (the tabs then say so, or compute live where they can).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from engine import checkpoints

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "research"


def _root():
    from serving import zoo  # the folder the app serves ($RESNET_LAB_CHECKPOINTS or checkpoints/)

    return zoo.ROOT


def stamp(names) -> dict[str, str]:
    """{name: sha256 of its weights} for each name among the checkpoints served now."""
    out = {}
    for name in names:
        try:
            out[name] = json.loads((_root() / name / checkpoints.METRICS).read_text())["weights_sha256"]
        except (OSError, ValueError, KeyError, TypeError):  # missing or damaged: left out, so stale
            pass
    return out


def _shipped() -> list[str]:
    return [f.name for f in checkpoints.list_folders(_root())]


def save(view: str, data: dict, names) -> Path:
    """Write assets/research/VIEW.json (atomically) with the stamp of the checkpoints `names`."""
    ASSETS.mkdir(parents=True, exist_ok=True)
    path = ASSETS / f"{view}.json"
    doc = {"view": view, "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "stamp": stamp(names), "shipped": _shipped(), "data": data}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    os.replace(tmp, path)
    return path


def load(view: str) -> dict | None:
    """The stored data of VIEW, or None if there is none or any stamped checkpoint changed or vanished."""
    path = ASSETS / f"{view}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc["data"] if _current(doc) else None


def _current(doc: dict) -> bool:
    """Same weights for every stamped checkpoint, and the same set of shipped checkpoints."""
    return stamp(doc["stamp"]) == doc["stamp"] and doc.get("shipped") == _shipped()


def info(view: str) -> str:
    """One line for the UI: when VIEW was computed and from which checkpoints."""
    path = ASSETS / f"{view}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"{view}: not precomputed (run `python -m research.precompute`)"
    state = "current" if _current(doc) else "STALE (checkpoints changed: run python -m research.precompute)"
    return f"{view}: computed {doc['created']} from {', '.join(doc['stamp']) or 'fresh weights'} ({state})"
