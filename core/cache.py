"""Precomputed research data in assets/research/VIEW.json, stamped with the checkpoints it came from.

Expensive analyses (layer responses over the test set, lesions, landscapes...) are computed once by
`python -m core.precompute` and stored small. Each file records the sha256 of the weights of every
checkpoint it used; `load` returns the data only while those checkpoints are unchanged, so a new or
retrained checkpoint makes the stored result stale instead of silently wrong.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core import checkpoints

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "research"


def _root():
    from core import zoo  # the folder the app serves ($RESNET_LAB_CHECKPOINTS or checkpoints/)

    return zoo.ROOT


def stamp(names) -> dict[str, str]:
    """{name: sha256 of its weights} for each name among the checkpoints served now."""
    out = {}
    for name in names:
        f = _root() / name / checkpoints.METRICS
        if f.is_file():
            out[name] = json.loads(f.read_text()).get("weights_sha256", "")
    return out


def save(view: str, data: dict, names) -> Path:
    """Write assets/research/VIEW.json (atomically) with the stamp of the checkpoints `names`."""
    ASSETS.mkdir(parents=True, exist_ok=True)
    path = ASSETS / f"{view}.json"
    doc = {"view": view, "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "stamp": stamp(names), "data": data}
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
    if stamp(doc["stamp"]) != doc["stamp"]:
        return None
    return doc["data"]


def info(view: str) -> str:
    """One line for the UI: when VIEW was computed and from which checkpoints."""
    path = ASSETS / f"{view}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"{view}: not precomputed (run `python -m core.precompute`)"
    state = "current" if stamp(doc["stamp"]) == doc["stamp"] else "STALE (checkpoints changed)"
    return f"{view}: computed {doc['created']} from {', '.join(doc['stamp']) or 'fresh weights'} ({state})"
