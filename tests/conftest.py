"""Shared fixtures: the real sample project (built once per session) and Qt settings.

The sample project is built through the same core pipeline the app uses (import -> embed
with the bundled MiniLM -> RQ-KMeans), so every test that uses it exercises the real parts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Qt must never try to open a display in tests (set before anything imports Qt).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
# Keep the embedding model offline even if a test names a hub model by mistake.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """A folder of ../shared/data, or skip the test cleanly when it is absent."""
    folder = SHARED_DATA / name
    if not folder.exists():
        pytest.skip(f"../shared/data/{name} is not available on this machine")
    return folder


@pytest.fixture(scope="session")
def sample_project_master(tmp_path_factory) -> Path:
    """The bundled sample project, built once per test session. Do not modify: use
    ``sample_project`` (a private copy per test)."""
    from semid_studio.core.events import drive
    from semid_studio.core.pipeline import build_sample_project

    path = tmp_path_factory.mktemp("sample") / "sample.semid"
    drive(build_sample_project(path))
    return path


@pytest.fixture
def sample_project(sample_project_master, tmp_path) -> Path:
    """A private copy of the sample project that a test may change freely."""
    target = tmp_path / "sample.semid"
    shutil.copyfile(sample_project_master, target)
    return target


@pytest.fixture(autouse=True)
def cli_wording():
    """Every test starts with the core speaking CLI (a window under test switches it to the
    app's words; one left open by a failed test must not change the next test's messages)."""
    from semid_studio.core import wording

    wording.set_front_end("cli")
    yield
    wording.set_front_end("cli")
