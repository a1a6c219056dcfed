"""The package's layers depend one way (README, "Code shape"): physics -> data -> training, and
models <- restore <- pipeline <- cli, with bench and export measuring or shipping what is below them.

Every import inside ``isp_collab`` (module level or in a function) is read from the source; a new
import against the flow fails here, naming the file.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "isp_collab"

# single modules at the package's root that every layer may use; they import no layer themselves
UTILITIES = {
    "allocator",
    "atomic",
    "config_paths",
    "device",
    "hashing",
    "limits",
    "native_stderr",
    "shipped",
    "signals",
}
ROOT_NAMES = {"__version__"}  # names of the package itself, not modules
# layer -> the layers it may import
ALLOWED = {
    "physics": set(),
    "data": {"physics"},
    "models": set(),
    "restore": {"models"},
    "training": {"physics", "data", "models"},
    "pipeline": {"physics", "models", "restore"},
    "export": {"physics", "data", "models", "restore"},
    "bench": {"physics", "data", "models", "restore", "training", "pipeline", "export"},
    "cli": {"physics", "data", "models", "restore", "training", "pipeline", "export", "bench"},
}


def _imported(path: Path, root: Path = PACKAGE) -> set[str]:
    """The first component below ``isp_collab`` of every module ``path`` (a file under ``root``) imports from
    the package."""
    package = path.relative_to(root.parent).parts[:-1]  # what a level-1 relative import names
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = (*base, *(node.module.split(".") if node.module else ()))
                names = [target] if node.module else [(*base, a.name) for a in node.names]
            elif node.module == "isp_collab":  # from isp_collab import bench: the names are the modules
                names = [("isp_collab", a.name) for a in node.names]
            else:
                names = [tuple(node.module.split("."))] if node.module else []
        elif isinstance(node, ast.Import):
            names = [tuple(a.name.split(".")) for a in node.names]
        else:
            continue
        for name in names:
            if name[0] == "isp_collab" and len(name) > 1:
                out.add(name[1])
    return out


def _layer(path: Path) -> str:
    part = path.relative_to(PACKAGE).parts
    return part[0] if len(part) > 1 else path.stem


def test_imports_follow_the_layers():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        if layer in ("__init__", "__main__"):
            continue
        allowed = UTILITIES | ROOT_NAMES | ALLOWED.get(layer, set()) | {layer}
        if layer in UTILITIES:
            allowed = UTILITIES | ROOT_NAMES  # a utility imports no layer
        assert layer in ALLOWED or layer in UTILITIES, f"{path}: a new layer or root module; add it to this test"
        wrong += [f"{path.relative_to(PACKAGE.parent)} imports isp_collab.{m}" for m in _imported(path) - allowed]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_imports(tmp_path):
    """The reader finds relative, absolute and in-function imports (so the test above can fail)."""
    sample = PACKAGE / "pipeline" / "stages.py"
    text = (
        "from ..bench import report\nimport isp_collab.cli\nfrom isp_collab import export\n"
        "def f():\n    from .. import training\n"
    )
    fake = tmp_path / "isp_collab" / "pipeline" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(text)
    assert _imported(fake, tmp_path / "isp_collab") == {"bench", "cli", "export", "training"}
    assert _imported(sample) <= UTILITIES | ALLOWED["pipeline"] | {"pipeline"}


def _module(path: Path, root: Path = PACKAGE) -> tuple[str, ...]:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported_modules(path: Path, root: Path = PACKAGE) -> set[tuple[str, ...]]:
    """The modules (not packages) of the package that ``path`` imports, at module level or in a function:
    ``from .x import y`` counts ``x.y`` where that is a module, else ``x``."""

    def is_module(mod: tuple[str, ...]) -> bool:
        return bool(mod) and mod[0] == root.name and root.parent.joinpath(*mod).with_suffix(".py").is_file()

    package = path.relative_to(root.parent).parts[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            target = (*base, *(node.module.split(".") if node.module else ()))
            for a in node.names:
                if is_module(sub := (*target, a.name)):
                    out.add(sub)
                elif is_module(target):
                    out.add(target)
        elif isinstance(node, ast.Import):
            out |= {m for a in node.names if is_module(m := tuple(a.name.split(".")))}
    return out


def _cycles(root: Path = PACKAGE) -> list[list[str]]:
    """Groups of two or more modules under ``root`` that import each other round in a circle (package
    ``__init__`` files aside: importing a package only re-exports). A function-local import hides such a
    circle from Python at import time, not from the reader: the modules cannot be understood one at a time."""
    graph = {_module(p, root): _imported_modules(p, root) for p in root.rglob("*.py") if p.name != "__init__.py"}
    reach = {m: set() for m in graph}
    for start in graph:  # plain depth-first reachability: about a hundred modules
        todo = list(graph[start])
        while todo:
            m = todo.pop()
            if m in graph and m not in reach[start]:
                reach[start].add(m)
                todo.extend(graph[m])
    groups = {frozenset({m} | {o for o in reach[m] if m in reach[o]}) for m in graph if m in reach[m]}
    return sorted(sorted(".".join(x[1:]) for x in g) for g in groups)


def test_no_module_imports_itself_round_a_circle():
    assert not _cycles(), "import cycles: " + "; ".join(" <-> ".join(c) for c in _cycles())


def test_the_cycle_check_sees_a_circle(tmp_path):
    root = tmp_path / "isp_collab"
    (root / "pipeline").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "pipeline" / "__init__.py").write_text("from .a import f\n")
    (root / "pipeline" / "a.py").write_text("from .b import g\n")
    (root / "pipeline" / "b.py").write_text("def g():\n    from . import c\n")
    (root / "pipeline" / "c.py").write_text("from .a import f\n")
    (root / "pipeline" / "d.py").write_text("from . import a\n")
    assert _cycles(root) == [["pipeline.a", "pipeline.b", "pipeline.c"]]
