"""The input widgets every training form has: seed, free-form settings (``FIELD=VALUE``
pairs), run name and the read-back of the resolved settings."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QSpinBox

from ....core.errors import SemidError


def parse_overrides(text: str) -> dict[str, str]:
    """``n_iter=10, balanced=none`` -> ``{"n_iter": "10", "balanced": "none"}`` (the core converts types)."""
    out: dict[str, str] = {}
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise SemidError(f"cannot read setting {part!r}: write field=value, e.g. n_iter=10")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


# widgets every form has (seed, free-form settings, name, the spec read-back)
def seed_spin() -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, 2**31 - 1)
    return spin


def overrides_edit(example: str) -> QLineEdit:
    """The 'More settings' line: FIELD=VALUE pairs read by :func:`parse_overrides`."""
    edit = QLineEdit()
    edit.setPlaceholderText(f"other settings, e.g. {example}")
    return edit


def name_edit() -> QLineEdit:
    edit = QLineEdit()
    edit.setPlaceholderText("(automatic)")
    return edit


def spec_label() -> QLabel:
    """Rich-text read-back of the settings the form will run with."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setTextFormat(Qt.RichText)
    return label
