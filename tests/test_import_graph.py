"""The import graph of nst_utils and benchmarks/: every module's imports, at module level and
inside functions, form no circle, and none runs back up the package's layers."""

import ast
from pathlib import Path

import pytest

#: The package of this repository (not whichever nst_utils happens to be installed).
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "nst_utils"
#: The benchmark scripts, which import each other by their bare names (`import memory`).
BENCHMARKS_DIR = PACKAGE_DIR.parent / "benchmarks"


def module_names() -> dict:
    """{dotted module name: source path} for every .py file of the package and of benchmarks/
    (named benchmarks.<script>)."""
    names = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")) + sorted(BENCHMARKS_DIR.glob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, known: set) -> set:
    """The package's modules that `name` imports anywhere in its source (functions included).

    `from X import Y` counts X.Y when that is a module, else X; a relative import is resolved
    against `name`'s package, as Python does; a benchmark's bare `import memory` is
    benchmarks.memory.
    """
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                found.add(candidate if candidate in known else origin)
    if name.startswith("benchmarks."):
        found |= {f"benchmarks.{target}" for target in found}
    return {target for target in found if target in known and target != name}


def import_graph() -> dict:
    names = module_names()
    known = set(names)
    return {name: imported_modules(name, path, known) for name, path in names.items()}


def find_cycle(graph: dict):
    """One cycle of the graph as a list of names (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_and_the_benchmarks_have_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 30 and "nst_utils.weights.load" in graph
    assert "benchmarks.resident" in graph["benchmarks.torch_loop"]  # the scripts are seen
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


#: The package's layers, lowest first: a module imports only from its own layer or below.
#: Grading stands beside the painting core (it grades the same functions), under the commands.
LAYERS = {
    "base": (
        "nst_utils", "errors", "config", "architecture", "options", "settings", "files",
        "quiet", "colors", "hardware", "stop_signals", "memory", "session",
    ),
    "weights": ("weights",),
    "network": ("vgg", "images"),
    "costs": ("costs", "reference"),
    "painting core": (
        "training", "lbfgs", "progress", "transfer", "tiles", "scales", "stylize",
        "run_record", "state", "preflight",
    ),
    "grading": ("grading",),
    "commands": ("commands", "cli", "__main__"),
}  # fmt: skip
#: Known arrows up the layers, each to be removed: none.
KNOWN_UPWARD: set = set()


def layer_of(module: str) -> int:
    """The index in LAYERS of an nst_utils module (by its first name under the package)."""
    short = module.removeprefix("nst_utils.") if module != "nst_utils" else module
    top = short.split(".")[0]
    for index, names in enumerate(LAYERS.values()):
        if short in names or top in names:
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: add it where it belongs")


def upward_imports(graph: dict) -> list:
    """(importer, imported) pairs of nst_utils where the imported module's layer is higher."""
    return sorted(
        (a, b)
        for a, targets in graph.items()
        if a.startswith("nst_utils")
        for b in targets
        if b.startswith("nst_utils") and layer_of(b) > layer_of(a)
    )


def test_no_import_runs_back_up_the_layers():
    upward = [edge for edge in upward_imports(import_graph()) if edge not in KNOWN_UPWARD]
    assert not upward, "imports up the layers: " + ", ".join(f"{a} -> {b}" for a, b in upward)


def test_an_import_up_the_layers_is_found():
    graph = {"nst_utils.vgg": {"nst_utils.stylize"}, "nst_utils.stylize": {"nst_utils.vgg"}}
    assert upward_imports(graph) == [("nst_utils.vgg", "nst_utils.stylize")]
    assert upward_imports({"nst_utils.commands.generate": {"nst_utils.grading.grader"}}) == []


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    # module level, relative, `from . import module`
    assert "nst_utils.weights.cache" in graph["nst_utils.weights.load"]
    # relative with two dots, inside a function
    assert "nst_utils.weights.download" in graph["nst_utils.commands.fetch_weights"]
    assert "nst_utils.weights.doctor" in graph["nst_utils.commands.check_weights"]
    # a package __init__ importing its submodules
    assert "nst_utils.weights.load" in graph["nst_utils.weights"]


@pytest.mark.parametrize(
    "graph, cyclic",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"a"}}, True),
        ({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, False),
    ],
)
def test_find_cycle_on_small_graphs(graph, cyclic):
    cycle = find_cycle(graph)
    assert (cycle is not None) == cyclic
    if cycle:
        assert cycle[0] == cycle[-1] and all(b in graph[a] for a, b in zip(cycle, cycle[1:]))


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    """The parser itself: an import inside a function closes a circle as well as one at the top."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def thing():\n    from . import a\n    return a\n")
    known = {"pkg", "pkg.a", "pkg.b"}
    graph = {
        name: imported_modules(
            name,
            package / (name.split(".")[-1] + ".py") if name != "pkg" else package / "__init__.py",
            known,
        )
        for name in known
    }
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert find_cycle(graph) in (["pkg.a", "pkg.b", "pkg.a"], ["pkg.b", "pkg.a", "pkg.b"])


def test_the_weights_modules_import_only_those_before_them():
    """sources -> mat -> cache -> download -> load -> doctor: each leans only on earlier ones,
    and nothing in the subpackage leans on the commands or on the network built from it."""
    order = ["sources", "mat", "cache", "download", "load", "doctor"]
    graph = import_graph()
    for i, short in enumerate(order):
        inside = {
            t.rpartition(".")[2]
            for t in graph[f"nst_utils.weights.{short}"]
            if t.startswith("nst_utils.weights.")
        }
        assert inside <= set(order[:i]), f"{short} imports {sorted(inside - set(order[:i]))}"
    outside = set().union(*(graph[name] for name in graph if name.startswith("nst_utils.weights")))
    assert not {t for t in outside if t.startswith("nst_utils.commands") or t == "nst_utils.vgg"}
