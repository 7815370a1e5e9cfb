"""The desktop app's system-library check (no Qt involved) and a real start on an X server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from semid_studio.gui import system_libs

# what `ldd libqxcb.so` prints on a stock Debian 12 with PySide6 6.11 (trimmed)
LDD_ON_A_STOCK_MACHINE = """\
	linux-vdso.so.1 (0x00007ffd0c5f2000)
	libQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f1)
	libxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f2)
	libxcb-icccm.so.4 => not found
	libxcb-keysyms.so.1 => not found
	libxkbcommon-x11.so.0 => not found
	libxcb-icccm.so.4 => not found
	libdbus-1.so.3 => /lib/x86_64-linux-gnu/libdbus-1.so.3 (0x00007f3)
"""


def test_missing_libraries_are_read_from_ldd_once_each():
    assert system_libs.missing_sonames(LDD_ON_A_STOCK_MACHINE) == [
        "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon-x11.so.0"]


@pytest.mark.parametrize("soname, package", [
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libdbus-1.so.3", "libdbus-1-3"),
    ("libEGL.so.1", "libegl1"),
    ("libglib-2.0.so.0", "libglib2.0-0"),
])
def test_each_missing_library_names_its_debian_package(soname, package):
    assert system_libs.package_for(soname) == package


def test_the_advice_is_one_line_with_the_packages_and_the_command():
    line = system_libs.advice(["libxcb-icccm4", "libxcb-keysyms1"])
    assert "\n" not in line
    assert "apt-get install -y --no-install-recommends libxcb-icccm4 libxcb-keysyms1" in line


def test_the_app_stops_with_one_line_before_qt_when_there_is_no_display(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "semid_studio.gui.app", str(tmp_path / "none.semid")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semid-studio: ")
    # either the packages to install or the missing display, never Qt's abort
    assert "apt-get install" in lines[0] or "no display" in lines[0]


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_the_app_starts_on_a_real_x_server(sample_project, tmp_path):
    """The xcb plugin loads and the window shows the project: the check a stock machine needs."""
    picture = tmp_path / "window.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-m", "semid_studio.gui.app", str(sample_project),
         "--screenshot", str(picture), "--timeout", "240"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert picture.stat().st_size > 10_000
