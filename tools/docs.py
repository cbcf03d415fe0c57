"""The generated sections of README.md, docs/*.md and checkpoints/README.md: tables made from the shipped data.

A generated section sits between two HTML comments, `<!-- KEY ARGS -->` and `<!-- /KEY -->`; its
body is SECTIONS[KEY](data, *ARGS), written from the checkpoints' metrics.json and the stored views
(assets/research/*.json). Prose around it is written by hand and never checked.

    python -m tools.docs            # rewrite every generated section from the data
    python -m tools.docs --check    # exit 1, naming each stale section (tests/test_docs.py runs it)

KEYs: results (Table 6, the mean over the shipped runs), runs (every shipped run), checkpoints
WHICH (the folders: served or seeds), faithfulness
PLAIN RESIDUAL SIGN, faithfulness-reading PLAIN RESIDUAL, faithfulness-images, corruption-levels,
robustness PLAIN RESIDUAL SOURCE; and the benchmarks' tables from their JSON under bench/results/
(tools/bench_tables.py): bench-app-latency AFTER, bench-app-profile BEFORE AFTER, bench-first-clicks
BEFORE AFTER, bench-load BEFORE AFTER, bench-gpu-probe FILE, bench-floor FILE, bench-corrupt-cost FILE,
bench-faithfulness-cost FILE.
"""
from __future__ import annotations

import argparse
import functools
import math
import re
import sys
from pathlib import Path

from core.engine import checkpoints, models
from core.engine.evaluate import MEASURES, PAPER_TABLE6, setup
from core.engine.runs import folder_for
from core.research import faithfulness, study
from core.research.precompute import Store
from core.serving import notes, robustness_text
from core.settings import PROJECT, Settings
from tools import bench_tables

PAGES = ["README.md", "docs/*.md", "checkpoints/README.md"]
BLOCK = re.compile(r"<!-- ([a-z][a-z0-9-]*)((?: [^ >]+)*) -->\n(.*?)<!-- /\1 -->", re.S)


class Data:
    """What the sections are made from, read once: the checkpoints' records and the stored views."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @functools.cached_property
    def records(self) -> list:
        return checkpoints.records(self.settings.checkpoints)

    @functools.cached_property
    def table(self):
        return study.results_table(self.records)

    def view(self, name: str) -> dict:
        data = Store(self.settings).load(name)
        if not data:
            raise SystemExit(f"no current {name} view: run python -m core.research.precompute --views {name}")
        return data


def _pct(value: float, std: float = math.nan) -> str:
    return f"{value:.2f}" + ("" if math.isnan(std) else f" ± {std:.2f}")


def _recipe(m: dict) -> str:
    return f"{(m.get('recipe') or {}).get('name', '?')}, {m.get('precision', '?')}"


def results(data: Data) -> str:
    """Table 6 on the shipped nets: the mean (± std) over every finished run of a net's recipe."""
    recipe = {r.spec.name: _recipe(r.metrics) for r in data.records}
    lines = [f"| model | {MEASURES['train_err_eval']} % | {MEASURES['test_err']} % | runs | recipe | paper (Table 6) % "
             "| verdict against the next shallower |", "|---|---|---|---|---|---|---|"]
    for row in data.table.to_dict("records"):
        paper = PAPER_TABLE6.get(row["model"])
        verdict = f"{row['diagnosis']} (vs {row['reference']})" if isinstance(row["reference"], str) else "—"
        lines.append(f"| {row['model']} | {_pct(row['train_err_eval'], row['train_err_eval_std'])} "
                     f"| {_pct(row['test_err'], row['test_err_std'])} | {row['seeds']} | {recipe[row['model']]} "
                     f"| {paper if paper is not None else '—'} | {verdict} |")
    return "\n".join(lines)


def runs(data: Data) -> str:
    """Every shipped run, one row each: its seed, its three errors, and how it was trained."""
    lines = [f"| model | seed | {MEASURES['train_err_running']} % | {MEASURES['train_err_eval']} % | "
             f"{MEASURES['test_err']} % | iterations | recipe | setup | commit |", "|---|---|---|---|---|---|---|---|---|"]
    for rec in data.records:
        for m in sorted(rec.runs, key=lambda m: m.get("seed", 0)):
            lines.append(f"| {rec.spec.name} | {m.get('seed')} | {_pct(m['train_error_running_pct'])} "
                         f"| {_pct(m['train_error_pct'])} | {_pct(m['test_error_pct'])} | {m['iterations']:,} "
                         f"| {_recipe(m)} | {setup(m)} | {str(m.get('commit', '?'))[:7]} |")
    return "\n".join(lines)


def checkpoint_folders(data: Data, which: str) -> str:
    """The checkpoint folders (`served`: seed 0, the app's; `seeds`: the others): where and how long each trained."""
    if which not in ("served", "seeds"):
        raise SystemExit(f"checkpoints {which!r}: served or seeds")
    lines = [f"| folder | device | iterations | {MEASURES['test_err']} % | {MEASURES['train_err_eval']} % "
             "| training time | img/s over the run | commit |", "|---|---|---|---|---|---|---|---|"]
    for rec in data.records:
        for m in sorted(rec.runs, key=lambda m: m.get("seed", 0)):
            if (m.get("seed", 0) == 0) != (which == "served"):
                continue
            folder = folder_for(".", rec.spec.name, m.get("seed", 0)).as_posix().removeprefix("./")
            lines.append(f"| `{folder}` | {m.get('device', '?')} | {m['iterations']:,} | {_pct(m['test_error_pct'])} "
                         f"| {_pct(m['train_error_pct'])} | {m['wall_time_s']:,.0f} s | {m['img_per_s']:,.0f} "
                         f"| {str(m.get('commit', '?'))[:7]} |")
    return "\n".join(lines)


def _faith(data: Data, plain: str, residual: str, sign: str):
    return faithfulness.compare(data.view("faithfulness"), plain, residual, sign)


def faithfulness_table(data: Data, plain: str, residual: str, sign: str) -> str:
    rows, diff, _ = _faith(data, plain, residual, sign)
    return "\n".join(notes.faithfulness_markdown(plain, residual, rows, diff))


def faithfulness_reading(data: Data, plain: str, residual: str) -> str:
    rows, diff, n = _faith(data, plain, residual, "absolute")
    return "By magnitude: " + notes.faithfulness_reading(plain, residual, rows, diff, n).removeprefix("**Reading:** ")


def faithfulness_images(data: Data) -> str:
    """Images per pair: the first test images both of a pair's nets have in the stored study."""
    stored = data.view("faithfulness")
    pairs = [models.pair(d) for d in models.DEPTHS if set(models.pair(d)) <= set(stored)]
    return "Images per pair: " + ", ".join(
        f"{models.get_spec(p).depth} layers {min(len(stored[p]['labels']), len(stored[r]['labels']))}" for p, r in pairs) + "."


def robustness_table(data: Data, plain: str, residual: str, source: str) -> str:
    entry = data.view("robustness")[source]
    return robustness_text.robustness_table(robustness_text.pair_rows(entry, plain, residual)[2], plain, residual)


SECTIONS = {
    "results": results,
    "runs": runs,
    "checkpoints": checkpoint_folders,
    "faithfulness": faithfulness_table,
    "faithfulness-reading": faithfulness_reading,
    "faithfulness-images": faithfulness_images,
    "corruption-levels": lambda data: robustness_text.levels_markdown().strip("\n"),
    "robustness": robustness_table,
}
SECTIONS |= {key: (lambda fn: lambda data, *files: fn(*files))(fn) for key, fn in bench_tables.TABLES.items()}


def pages(root: Path = PROJECT) -> list[Path]:
    return sorted(p for pattern in PAGES for p in root.glob(pattern))


def render(text: str, data: Data, where: str = "") -> tuple[str, list[str]]:
    """(text with every generated section rewritten, the sections that changed: 'FILE:LINE KEY ARGS')."""
    changed = []

    def one(match: re.Match) -> str:
        key, args = match.group(1), match.group(2).split()
        if key not in SECTIONS:
            raise SystemExit(f"{where}: unknown generated section {key!r} (known: {', '.join(SECTIONS)})")
        body = SECTIONS[key](data, *args).strip("\n") + "\n"
        if body != match.group(3):
            line = text.count("\n", 0, match.start()) + 1
            changed.append(f"{where}:{line} {key}{match.group(2)}")
        return f"<!-- {key}{match.group(2)} -->\n{body}<!-- /{key} -->"

    return BLOCK.sub(one, text), changed


def run(root: Path = PROJECT, settings: Settings | None = None, write: bool = True) -> list[str]:
    """Every stale section of the pages under root (rewritten when write is set)."""
    data, stale = Data(settings or Settings()), []
    for page in pages(root):
        old = page.read_text()
        new, changed = render(old, data, str(page.relative_to(root)))
        stale += changed
        if write and new != old:
            page.write_text(new)
    return stale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 if a section is stale")
    args = ap.parse_args(argv)
    stale = run(write=not args.check)
    for s in stale:
        print(("stale: " if args.check else "rewrote: ") + s)
    if args.check and stale:
        print("run: python -m tools.docs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
