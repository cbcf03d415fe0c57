"""The project's import graph, read from the source with ast (nothing is imported or run).

    python bench/imports.py [ROOT] [--modules]

Prints one line per importing layer: `layer -> layer, layer` (packages: engine, serving, research,
figures, ui; top-level files such as app.py are their own layer), counting every `import` and
`from ... import` of a project module, at module level or inside a function. --modules prints
module-level edges instead (`serving.zoo -> engine.checkpoints`). Works on any checkout
(`git worktree add /tmp/old REV && python bench/imports.py /tmp/old` gives the graph of REV).
tests/test_layers.py holds the allowed directions against this graph.
"""
from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

SKIP = {"tests", "bench", "data", "checkpoints", "assets", ".venv", "screenshots"}


def modules(root: Path) -> dict[str, Path]:
    """{dotted module name: file} for every project .py file outside tests/, bench/ and data."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in SKIP or any(p.startswith(".") for p in rel.parts):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            out[".".join(parts)] = path
    return out


def edges(root: Path) -> dict[str, set[str]]:
    """{module: {project modules it imports}}; `from pkg import mod` resolves to pkg.mod."""
    mods = modules(root)
    out = {}
    for name, path in mods.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    found.add(t)
        out[name] = found
    # `from pkg import mod` also lists pkg itself: drop a package when one of its modules is there
    return {m: {t for t in ts if not any(u.startswith(t + ".") for u in ts)} for m, ts in out.items()}


def layer(module: str) -> str:
    return module.split(".")[0]


def layers(root: Path) -> dict[str, set[str]]:
    """{layer: {layers it imports}} (a layer's imports of itself left out)."""
    out = defaultdict(set)
    for m, ts in edges(root).items():
        out[layer(m)] |= {layer(t) for t in ts if layer(t) != layer(m)}
    return dict(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--modules", action="store_true", help="module-level edges")
    a = ap.parse_args(argv)
    root = Path(a.root)
    graph = edges(root) if a.modules else layers(root)
    for name in sorted(graph):
        print(f"{name} -> {', '.join(sorted(graph[name])) or '(nothing)'}")


if __name__ == "__main__":
    main()
