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
