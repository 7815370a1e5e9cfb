"""The core must import and work with Qt unavailable (napari keeps its split honest this way)."""

import subprocess
import sys

BLOCK_QT = r"""
import importlib.abc, sys
class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy"):
            raise ImportError(f"Qt blocked: {name}")
sys.meta_path.insert(0, BlockQt())
import pkgutil, importlib, semid_studio.core, semid_studio.cli
for mod in pkgutil.walk_packages(semid_studio.core.__path__, "semid_studio.core."):
    importlib.import_module(mod.name)
from semid_studio.cli import build_parser
build_parser()
print("ok")
"""


def test_core_and_cli_import_without_qt():
    result = subprocess.run([sys.executable, "-c", BLOCK_QT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
