"""The import graph of the project's own code: the reward model app builds on the labeling app
and never the reverse, no module imports one that imports it back, and the labeling SQL is
private to the labeling service. Read from the source (every import statement, also those
inside functions), so a lazy import cannot hide a dependency."""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("annotate", "rewardtrain", "config")
PRIVATE_SQL = "annotate.services._queue_sql"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(*tops: str) -> dict[str, Path]:
    return {
        _module_name(path): path
        for top in tops
        for path in sorted((ROOT / top).rglob("*.py"))
        if "migrations" not in path.parts
    }


MODULES = _sources(*PACKAGES)


def _imported(module: str, path: Path) -> Iterator[str]:
    """The dotted names a module imports (from-imports also as `package.name`)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _edges(modules: dict[str, Path], known: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (a name resolves to its longest known
    prefix: `from annotate import models` is annotate.models, not annotate)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in _imported(module, path):
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known:
                    targets.add(candidate)
                    break
        targets.discard(module)
        graph[module] = targets
    return graph


GRAPH = _edges(MODULES, MODULES)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_the_source():
    # Guards the reading itself: a parser that found nothing would pass every test below.
    assert "annotate.models" in GRAPH["rewardtrain.models"]
    assert PRIVATE_SQL in GRAPH["annotate.services.labeling"]
    assert "annotate.splits" in GRAPH["annotate.services.exports"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_labeling_app_never_imports_the_reward_model_app():
    upward = {
        module: sorted(t for t in targets if t.split(".")[0] == "rewardtrain")
        for module, targets in GRAPH.items()
        if module.split(".")[0] == "annotate"
    }
    assert {module: targets for module, targets in upward.items() if targets} == {}


def test_no_module_imports_one_that_imports_it_back():
    assert _cycles(GRAPH) == []


def test_only_the_labeling_service_imports_the_labeling_sql():
    everything = {**MODULES, **_sources("bench", "tests")}
    importers = sorted(
        module
        for module, targets in _edges(everything, everything).items()
        if PRIVATE_SQL in targets
    )
    assert importers == ["annotate.services.labeling"]
