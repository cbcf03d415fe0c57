"""One direction of imports, read from the source with ast (nothing is imported or run).

Layers: core.engine, core.serving, core.research, core.figures, core.ui, core.settings, core.hub and app.py,
in the flow app -> ui -> serving -> research / figures -> engine (each may also import settings,
and skip layers downward). The engine imports only settings; research (Captum's wrappers in
research.attribution included) imports the engine; figures import nothing of the project;
serving imports research, figures and the engine; ui and app.py wire everything; hub (the deploy and
push commands) imports the engine, and nothing imports it. Nothing in core
imports app.py, tools/, bench/ or tests/, nor another module's private (_underscored) names. The
engine never imports gradio, plotly or captum (the GPU machines that train have none of them).
Every `import` and `from ... import` counts, at module level or inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("core", "app.py", "tools", "bench", "tests")  # what imports are resolved against

ALLOWED = {  # layer -> the other layers it may import
    "settings": set(),
    "engine": {"settings"},
    "serving": {"engine", "research", "figures", "settings"},
    "research": {"engine", "settings"},
    "figures": set(),
    "ui": {"engine", "serving", "research", "figures", "settings"},
    "app": {"engine", "serving", "research", "figures", "ui", "settings"},
    "hub": {"engine", "settings"},  # the deploy and push commands, beside the app: nothing imports them
}


def modules(root: Path) -> dict[str, Path]:
    """{dotted module name: file} for every .py file under SOURCES."""
    out = {}
    for top in SOURCES:
        base = root / top
        for path in sorted([base] if base.suffix == ".py" else base.rglob("*.py")):
            if not path.is_file():
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def edges(root: Path) -> dict[str, set[str]]:
    """{module: {project modules it imports}}; `from pkg import mod` resolves to pkg.mod, and a
    package is dropped when one of its modules is there too."""
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
        out[name] = {t for t in found if not any(u.startswith(t + ".") for u in found)}
    return out


def layer(module: str) -> str:
    """core.engine.data -> engine, core.settings -> settings, app -> app, tools.lease -> tools."""
    parts = module.split(".")
    return parts[1] if parts[0] == "core" and len(parts) > 1 else parts[0]


def product(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: ts for m, ts in graph.items() if m == "app" or m.startswith("core.")}


GRAPH = edges(ROOT)


def test_every_product_module_belongs_to_a_known_layer():
    assert {layer(m) for m in product(GRAPH) if m != "core"} == set(ALLOWED)


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_imports_go_one_way(name):
    bad = {m: sorted(t for t in ts if layer(t) not in ALLOWED[name] | {name})
           for m, ts in product(GRAPH).items() if layer(m) == name}
    assert not {m: t for m, t in bad.items() if t}, f"{name} imports outside {sorted(ALLOWED[name])}"


def test_core_imports_nothing_from_tools_bench_tests_or_app():
    bad = {m: ts for m, ts in GRAPH.items() if m.startswith("core")
           for t in ts if layer(t) in ("tools", "bench", "tests", "app")}
    assert not bad


def test_tests_import_tools_only_in_the_tests_of_tools():
    users = {m for m, ts in GRAPH.items() if layer(m) == "tests" for t in ts if layer(t) == "tools"}
    assert users <= {"tests.test_lease", "tests.test_stage", "tests.test_docs"}, users


def test_bench_and_tests_do_not_import_each_other():
    pairs = {(m, t) for m, ts in GRAPH.items() for t in ts if {layer(m), layer(t)} == {"bench", "tests"}}
    assert not pairs


def test_the_graph_sees_function_level_imports(tmp_path):
    """The check would be toothless if imports inside functions were missed."""
    for pkg in ("core", "core/engine", "core/serving"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "core" / "serving" / "zoo.py").write_text("ROOT = 1\n")
    (tmp_path / "core" / "engine" / "a.py").write_text("def f():\n    from core.serving import zoo\n    return zoo.ROOT\n")
    (tmp_path / "core" / "engine" / "b.py").write_text("import core.serving.zoo as z\n")
    got = edges(tmp_path)
    assert got["core.engine.a"] == {"core.serving.zoo"} and got["core.engine.b"] == {"core.serving.zoo"}
    assert layer("core.engine.a") == "engine" and layer("core.settings") == "settings" and layer("app") == "app"


def test_engine_never_imports_gradio_plotly_or_captum():
    for path in (ROOT / "core" / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("gradio", "plotly", "captum") for n in names), path.name


def test_only_research_imports_captum():
    """Captum sits below the service layer (research.attribution's wrappers, research.faithfulness's
    metrics), so research never needs serving."""
    users = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "captum" for n in names):
                users.append(str(path.relative_to(ROOT)))
    assert users and all(u.startswith("core/research/") for u in users), users



ENV_READERS = {"core/settings.py", "core/engine/distributed.py"}  # distributed: what torchrun sets, at the rendezvous


def environ_uses(path: Path) -> list[int]:
    """Lines of `path` that touch the process environment: os.environ, os.getenv, os.putenv, or
    `from os import environ` (or getenv)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "environb") \
                and getattr(node.value, "id", "") == "os":
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and \
                {a.name for a in node.names} & {"environ", "getenv", "putenv", "environb"}:
            lines.append(node.lineno)
    return sorted(lines)


def test_only_settings_reads_the_environment():
    files = [ROOT / "app.py", *sorted((ROOT / "core").rglob("*.py"))]
    found = {str(p.relative_to(ROOT)): environ_uses(p) for p in files}
    assert {f for f, lines in found.items() if lines} == ENV_READERS, found


def test_the_environment_check_sees_every_form(tmp_path):
    (tmp_path / "a.py").write_text("import os\nx = os.environ.get('A')\ny = os.getenv('B')\n"
                                   "from os import environ\ndef f():\n    return os.environ['C']\n")
    assert environ_uses(tmp_path / "a.py") == [2, 3, 4, 6]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each is an import cycle."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert cycles(product(GRAPH)) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_another_modules_private_names():
    bad = []
    for path in [ROOT / "app.py", *(ROOT / "core").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("core"):
                bad += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert not bad


def test_only_ui_imports_gradio():
    """The service layer and everything below it hand the page plain data (and UserError / KEEP)."""
    users = set()
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "gradio" for n in names):
                users.add(layer(".".join(path.relative_to(ROOT).with_suffix("").parts)))
    assert users == {"ui"}, users
