"""One direction of imports, read from the source by bench/imports.py (ast; nothing is imported):
the engine imports nothing from serving, research, figures or ui; research imports nothing from
figures or ui, and of serving only serving.attribution (Captum lives there); serving nothing from
research, figures or ui; figures only itself; ui and
app.py wire everything. Nothing in the packages imports app.py. The engine also never imports
gradio or captum (the GPU machines that train have neither)."""
import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("imports_graph", ROOT / "bench" / "imports.py")
graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(graph)

ALLOWED = {  # layer -> the other layers it may import
    "engine": set(),
    "serving": {"engine"},
    "research": {"engine", "serving"},
    "figures": set(),
    "ui": {"engine", "serving", "research", "figures"},
    "app": {"engine", "serving", "research", "figures", "ui"},
}


def test_every_module_belongs_to_a_known_layer():
    assert set(graph.layers(ROOT)) == set(ALLOWED)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_go_one_way(layer):
    edges = {m: ts for m, ts in graph.edges(ROOT).items() if graph.layer(m) == layer}
    bad = {m: sorted(t for t in ts if graph.layer(t) not in ALLOWED[layer] | {layer}) for m, ts in edges.items()}
    assert not {m: t for m, t in bad.items() if t}, f"{layer} imports outside {sorted(ALLOWED[layer])}"


def test_the_graph_sees_function_level_imports(tmp_path):
    """The check would be toothless if imports inside functions were missed."""
    (tmp_path / "engine").mkdir()
    (tmp_path / "serving").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text("")
    (tmp_path / "serving" / "__init__.py").write_text("")
    (tmp_path / "serving" / "zoo.py").write_text("ROOT = 1\n")
    (tmp_path / "engine" / "a.py").write_text("def f():\n    from serving import zoo\n    return zoo.ROOT\n")
    (tmp_path / "engine" / "b.py").write_text("import serving.zoo as z\n")
    assert graph.edges(tmp_path)["engine.a"] == {"serving.zoo"}
    assert graph.edges(tmp_path)["engine.b"] == {"serving.zoo"}
    assert graph.layers(tmp_path)["engine"] == {"serving"}


def test_engine_never_imports_gradio_or_captum():
    for path in (ROOT / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("gradio", "captum") for n in names), path.name


def test_research_takes_only_attribution_from_serving():
    used = {t for m, ts in graph.edges(ROOT).items() if graph.layer(m) == "research" for t in ts
            if graph.layer(t) == "serving"}
    assert used <= {"serving.attribution"}, used
