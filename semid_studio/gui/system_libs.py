"""The system libraries Qt's X11 (xcb) platform plugin needs, checked before the app starts.

A stock Debian/Ubuntu machine has libxcb itself but not all of its utility libraries
(libxcb-icccm4, libxcb-keysyms1, libxcb-cursor0, ...); without them Qt aborts with "could not
load the Qt platform plugin xcb" and a page of advice. This module asks ``ldd`` which of the
plugin's libraries are missing, names the Debian packages that ship them and, run as root
with apt, installs them. It imports no Qt, so it can run before Qt is loaded.

    python -m semid_studio.gui.system_libs            # report; exit 1 when something is missing
    python -m semid_studio.gui.system_libs --install  # install what is missing (root + apt)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

#: sonames whose Debian package name does not follow the usual "name + version" rule
PACKAGE_EXCEPTIONS = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libz.so.1": "zlib1g",
    "libpng16.so.16": "libpng16-16",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def xcb_plugin_path() -> Path | None:
    """The xcb platform plugin of the installed PySide6, or None when there is none."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(list(spec.submodule_search_locations)[0]) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.exists() else None


def missing_sonames(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as "not found", each once, in the order it named them."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def package_for(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` (libxcb-icccm.so.4 -> libxcb-icccm4)."""
    if soname in PACKAGE_EXCEPTIONS:
        return PACKAGE_EXCEPTIONS[soname]
    name, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    name = name.lower()
    if not version:
        return name
    # Debian puts a dash between a name that ends in a digit and its version (libdbus-1-3)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def missing_packages(plugin: Path | None = None) -> list[str]:
    """Packages to install so the xcb plugin loads; [] when it loads (or cannot be checked)."""
    plugin = plugin or xcb_plugin_path()
    if plugin is None or sys.platform != "linux" or shutil.which("ldd") is None:
        return []
    result = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, check=False)
    return sorted({package_for(soname) for soname in missing_sonames(result.stdout + result.stderr)})


def install_command(packages: list[str]) -> list[str]:
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


def advice(packages: list[str]) -> str:
    """The one line a user needs when the app cannot start for want of system packages."""
    prefix = "" if os.geteuid() == 0 else "sudo "
    return (f"the desktop app needs system packages that are not installed: {' '.join(packages)}; "
            f"install them with: {prefix}{' '.join(install_command(packages))}")


def install(packages: list[str]) -> bool:
    """Install ``packages`` with apt when running as root; False when that is not possible."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    print(f"setup: installing the system packages the desktop app needs: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "env": env, "check": False}
    if subprocess.run(install_command(packages), **quiet).returncode != 0:
        # a fresh image has no package lists yet: fetch them once and try again
        subprocess.run(["apt-get", "update", "-q"], **quiet)
        if subprocess.run(install_command(packages), **quiet).returncode != 0:
            return False
    return not missing_packages()


def display_problem() -> str | None:
    """Why the app cannot open a window here, or None. Only for Qt's default platform on Linux."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open a window on (DISPLAY is not set): run it in a desktop session, "
            "under `xvfb-run`, or headless with QT_QPA_PLATFORM=offscreen and --screenshot FILE")


def xcb_in_use() -> bool:
    """Will Qt load the xcb plugin? (Linux, no other platform asked for, not a Wayland session.)"""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if sys.platform != "linux":
        return False
    if platform:
        return platform.startswith("xcb")
    return not os.environ.get("WAYLAND_DISPLAY")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semid_studio.gui.system_libs",
                                     description="Check (and install) the system libraries the desktop app needs.")
    parser.add_argument("--install", action="store_true", help="install missing packages with apt when run as root")
    args = parser.parse_args(argv)
    packages = missing_packages()
    if not packages:
        return 0
    if args.install and install(packages):
        print("setup: system packages installed")
        return 0
    print(f"setup: {advice(packages)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
