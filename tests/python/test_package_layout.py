"""The Python package's layout, checked from its source with ``ast``: the
import graph of src/regfast has no cycle, no ``import regfast...`` hides in a
function to dodge one, each layer imports only from the layers below it, and
``import regfast`` still gives every public name it gave before the split.

A cycle is counted as Python runs imports: importing ``regfast.hive.open``
first runs ``regfast/hive/__init__.py``, so a module that imports it also
depends on every package ``__init__`` on the way that is not already its own
(the ``regfast`` façade is everyone's own: its submodules never import it
back, except the command line, which sits above it).
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import regfast
from conftest import ROOT

SRC = ROOT / "src"
PKG = "regfast"

# The layers, lowest first: a module may import from its own layer and the
# ones below. Top-level modules not listed are the binding (layer 0): the
# compiled modules and the pure-Python code they import or are built on.
LAYERS = {
    "regfast.hive": 1,
    "regfast.io": 2,
    "regfast.live": 3,
    "regfast.observe": 4,
    "regfast": 5,                   # the façade (regfast/__init__.py): re-exports only
    "regfast.cli": 6,
    "regfast.dask": 6,              # integrations, named after the library they plug into
    "regfast.pytest_plugin": 6,
}
# Imports that go down the layers the wrong way, each with the reason it must.
ALLOWED_UPWARD = {
    ("regfast.paths", "regfast.hive.forensics"):
        "_native.pyx imports regfast.paths (Hive.open's HKLM\\... prefixes), and paths needs the "
        "hive's type; regfast.hive imports nothing in its __init__, so this is no cycle. paths moves "
        "into regfast.hive once _native.pyx can import it from there",
}
# Function-level imports of regfast modules allowed: each exists to hold an
# optional dependency that `import regfast` must not import. Their edges still
# count in the cycle check.
OPTIONAL_GATES = {
    "regfast.arrow": "imports pyarrow (the arrow extra) at import time",
}
# Third-party modules that may be imported inside functions: optional
# dependencies (extras), imported where they are needed.
OPTIONAL_DEPS = {"pyarrow", "pandas", "dask", "distributed", "tqdm"}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted((SRC / PKG).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()
# the compiled modules: their Python-level imports at column 0 (not cimport)
PYX = {f"{PKG}.{p.stem}": p for p in sorted((SRC / PKG).glob("*.pyx"))}
KNOWN = set(MODULES) | set(PYX)


def _is_package(mod: str) -> bool:
    return mod in MODULES and MODULES[mod].name == "__init__.py"


def _ancestors(mod: str) -> list[str]:
    parts = mod.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _resolve(importer: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The regfast modules an import statement imports (each a name in KNOWN)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == PKG or a.name.startswith(PKG + ".")]
    base = node.module or ""
    if node.level:
        pkg = importer if _is_package(importer) else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            pkg = pkg.rpartition(".")[0]
        base = f"{pkg}.{base}" if base else pkg
    if base != PKG and not base.startswith(PKG + "."):
        return []
    out = []
    for a in node.names:
        sub = f"{base}.{a.name}"
        out.append(sub if sub in KNOWN else base)
    return out


class Import:
    def __init__(self, importer: str, target: str, line: int, in_function: bool, type_only: bool):
        self.importer, self.target, self.line = importer, target, line
        self.in_function, self.type_only = in_function, type_only

    def __repr__(self) -> str:
        return f"{self.importer}:{self.line} -> {self.target}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
           (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, in_function: bool, type_only: bool):
    """(import node, in_function, type_only) for every import under `node`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function, type_only
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _walk(child, True, type_only)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, type_only)
        else:
            yield from _walk(child, in_function, type_only)


def _imports() -> list[Import]:
    out = []
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, in_function, type_only in _walk(tree, False, False):
            for target in _resolve(mod, node):
                out.append(Import(mod, target, node.lineno, in_function, type_only))
    # .pyx: Python-level imports by their text (not cimport); an indented one
    # is inside a function or method (a .pyx has no other indented imports)
    pattern = re.compile(r"^([ \t]*)(?:from\s+(regfast(?:\.\w+)*)\s+import\s+([\w, ]+)|import\s+(regfast(?:\.\w+)*))",
                         re.MULTILINE)
    for mod, path in PYX.items():
        text = path.read_text(encoding="utf-8")
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            in_function = bool(m.group(1))
            if m.group(4):
                out.append(Import(mod, m.group(4), line, in_function, False))
                continue
            for name in m.group(3).split(","):
                sub = f"{m.group(2)}.{name.split()[0]}" if name.strip() else m.group(2)
                out.append(Import(mod, sub if sub in KNOWN else m.group(2), line, in_function, False))
    return out


IMPORTS = _imports()


def _graph_of(imports: list[Import]) -> dict[str, set[str]]:
    """importer -> the modules whose import it runs (packages on the way included)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.type_only:
            continue                # never runs
        own = set(_ancestors(imp.importer)) | {imp.importer}
        for mod in [*_ancestors(imp.target), imp.target]:
            if mod not in own:
                graph.setdefault(imp.importer, set()).add(mod)
    return graph


def _graph(imports: list[Import]) -> dict[str, set[str]]:
    graph = {m: set() for m in KNOWN}
    for mod, targets in _graph_of(imports).items():
        graph[mod] |= {t for t in targets if t in KNOWN}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """A cycle for every back edge a depth-first search meets (there is one
    if and only if the graph has a cycle), as a path that closes on its start."""
    state: dict[str, int] = {}       # 1: on the current path, 2: done
    path: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:       # the graph is a few dozen modules deep at most
        state[v] = 1
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                found.append([*path[path.index(w):], w])
            elif w not in state:
                visit(w)
        path.pop()
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v)
    return found


def _layer(mod: str) -> int:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if mod == prefix or mod.startswith(prefix + ".") and prefix != PKG:
            return LAYERS[prefix]
    return 0


def test_the_graph_sees_every_module_and_the_known_edges():
    # the checks below are only as good as the graph: it must hold what we know is there
    assert {"regfast.hive.open", "regfast.live.registry", "regfast.cli.commands", "regfast._native"} <= KNOWN
    graph = _graph(IMPORTS)
    assert "regfast.hive.logs" in graph["regfast.hive.open"]
    assert "regfast.paths" in graph["regfast._native"]            # from the .pyx source
    assert "regfast.hive" in graph["regfast.paths"]               # the package __init__ runs first
    assert "regfast.live" not in graph["regfast.live.registry"]   # its own package: already running
    # an import inside a .pyx function is seen, as one (regfast.arrow: the optional gate)
    assert any(i.importer == "regfast._bulk" and i.target == "regfast.arrow" and i.in_function for i in IMPORTS)


def test_cycle_finder_finds_cycles():
    # the checker itself can fail: a two-module loop and one through a package __init__
    assert _cycles({"regfast.a": {"regfast.b"}, "regfast.b": {"regfast.a"}}) == [
        ["regfast.a", "regfast.b", "regfast.a"]]
    loop = [Import("regfast.x", "regfast.p.m", 1, False, False),     # x imports p.m: p's __init__ runs
            Import("regfast.p", "regfast.y", 1, False, False),       # p's __init__ imports y
            Import("regfast.y", "regfast.x", 1, False, False)]       # y imports x
    assert _cycles({**{m: set() for m in ("regfast.p.m",)}, **_graph_of(loop)})
    assert not _cycles({"regfast.x": {"regfast.y"}, "regfast.y": set()})


def test_no_import_cycles():
    cycles = _cycles(_graph(IMPORTS))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_regfast_import_inside_a_function():
    hidden = [imp for imp in IMPORTS if imp.in_function and imp.target not in OPTIONAL_GATES]
    assert not hidden, ("imports of regfast modules inside functions (import at the top; if that makes "
                        "a cycle, the code is in the wrong layer):\n" + "\n".join(map(repr, hidden)))


def test_lazy_third_party_imports_are_optional_dependencies():
    stdlib = set(sys.stdlib_module_names)
    lazy = []
    for mod, path in MODULES.items():
        for node, in_function, _ in _walk(ast.parse(path.read_text(encoding="utf-8")), False, False):
            if not in_function:
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if not node.level else []
            for name in names:
                top = name.split(".")[0]
                if top and top != PKG and top not in stdlib and top not in OPTIONAL_DEPS:
                    lazy.append(f"{mod}:{node.lineno} imports {name}")
    assert not lazy, "third-party imports inside functions that are no optional dependency:\n" + "\n".join(lazy)


def test_layers_import_only_downwards():
    wrong = []
    for imp in IMPORTS:
        if imp.type_only or (imp.importer, imp.target) in ALLOWED_UPWARD:
            continue
        if _layer(imp.target) > _layer(imp.importer):
            wrong.append(f"{imp!r} (layer {_layer(imp.importer)} imports layer {_layer(imp.target)})")
    assert not wrong, "imports from a higher layer:\n" + "\n".join(wrong)
    for importer, target in ALLOWED_UPWARD:       # an exception nobody needs any more goes
        assert any(i.importer == importer and i.target == target for i in IMPORTS), (importer, target)


def test_subpackages_import_nothing_in_their_init():
    # the façade is the one place that re-exports: a package __init__ that
    # imported its modules would make every import of one of them run the others
    busy = [imp for imp in IMPORTS if _is_package(imp.importer) and imp.importer not in (PKG, "regfast.cli")]
    assert not busy, busy


# Every name `import regfast` gave before the package was split (its __all__ then).
PUBLIC_BEFORE_SPLIT = """
open_hive Hive Key Value ValueBatch ScanTable HiveInfo HiveProblem KeyInfo DeletedKey DeletedValue CellSlack
sd_to_sddl RegistryError RegistryNotFoundError RegistryPermissionError RegistryCorruptError NotAHiveError
RegistryConnectionError ConnectionCutError RegistryTimeoutError filetime_to_datetime type_name REG_NONE REG_SZ
REG_EXPAND_SZ REG_BINARY REG_DWORD REG_DWORD_LITTLE_ENDIAN REG_DWORD_BIG_ENDIAN REG_LINK REG_MULTI_SZ
REG_RESOURCE_LIST REG_FULL_RESOURCE_DESCRIPTOR REG_RESOURCE_REQUIREMENTS_LIST REG_QWORD REG_QWORD_LITTLE_ENDIAN
recover recovery_of RecoveryReport DirtyHiveWarning diff Diff Change Snapshot connect open_key Registry watch
awatch transaction TransactionError TransactionConflictError JournalCorruptError hooks profile scan_many
save_key load_hive unload_hive restore_key replace_key load_app_hive HKEY_CLASSES_ROOT HKEY_CURRENT_USER
HKEY_LOCAL_MACHINE HKEY_USERS HKEY_CURRENT_CONFIG HKCR HKCU HKLM HKU HKCC KEY_READ KEY_WRITE KEY_ALL_ACCESS
""".split()


def test_public_names_still_there():
    missing = [n for n in PUBLIC_BEFORE_SPLIT if n not in regfast.__all__ or getattr(regfast, n, None) is None]
    assert not missing


def test_public_names_are_the_objects_of_their_modules():
    from regfast.hive import open as hive_open
    from regfast.live import registry
    from regfast.observe import hooks

    assert regfast.open_hive is hive_open.open_hive
    assert regfast.connect is registry.connect
    assert regfast.hooks is hooks
    assert callable(regfast.hooks.pre) and callable(regfast.transaction.rollback_journal)
