"""Build hook: a wheel carries the shipped weights and the benchmark set (pyproject.toml holds the metadata).

An editable install reads the repository's ``models/`` and ``benchmarks/`` folders in place; a regular
install gets copies under ``isp_collab/_shipped/`` (found by :func:`isp_collab.shipped.shipped_path`).
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# (folder in the repository, files copied from it)
SHIPPED = (
    ("models", "*"),
    ("benchmarks/data", "*"),
    ("benchmarks", "classical_params.json"),
)


def tracked(folder: Path) -> set[Path] | None:
    """The files of ``folder`` under version control (a developer's own models stay out of the wheel);
    None outside a git checkout (an sdist holds only what MANIFEST.in took)."""
    if not (ROOT / ".git").exists():
        return None
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", str(folder.relative_to(ROOT))], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {ROOT / name for name in listed.decode().split("\0") if name}


class BuildPyWithShippedFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "isp_collab" / "_shipped"
        shutil.rmtree(dest, ignore_errors=True)  # a reused build/ folder must not keep files removed since
        for folder, pattern in SHIPPED:
            src = ROOT / folder
            if not src.is_dir():
                raise FileNotFoundError(f"{src}: missing; the wheel must ship it (setup.py)")
            keep = tracked(src)
            files = src.rglob("*") if pattern == "*" else src.glob(pattern)
            for path in sorted(files):
                if not path.is_file() or path.name.startswith(".") or (keep is not None and path not in keep):
                    continue
                target = dest / folder / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
