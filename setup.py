"""Build hook: a wheel carries the shipped weights and the benchmark set (pyproject.toml holds the metadata).

An editable install reads the repository's ``models/`` and ``benchmarks/`` folders in place; a regular
install gets copies under ``isp_collab/_shipped/`` (found by :func:`isp_collab.shipped.shipped_path`).
"""

import shutil
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
            if pattern == "*":
                shutil.copytree(
                    src, dest / folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "__pycache__")
                )
            else:
                for path in src.glob(pattern):
                    (dest / folder).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, dest / folder / path.name)


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
