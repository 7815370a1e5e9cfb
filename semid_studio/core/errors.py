"""User-facing errors.

Anything the user can fix (a bad file, a wrong column name, a missing embedding) is raised as
a :class:`SemidError` subclass whose ``str()`` is one clear line. The CLI prints that line and
exits non-zero; the GUI shows it in a message box. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class SemidError(Exception):
    """Base class for errors whose message is meant for the user."""


class InputError(SemidError):
    """Bad input data, located as precisely as we can: file, line, field.

    ``line`` is 1-based and counts the header line for delimited files, so it matches what a
    text editor shows.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file) + (f":{self.line}" if self.line is not None else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field '{self.field}'")
        text = (", ".join(where) + ": " if where else "") + self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ProjectError(SemidError):
    """The project file is missing, not a SemID project, or lacks what a step needs."""


class UnknownItemsError(InputError):
    """Interactions or queries reference items that are not in the catalogue.

    Carries the counts so that a caller (CLI flag, GUI dialog) can offer *skip* or *abort*.
    """

    def __init__(
        self,
        *,
        file: str | None,
        field: str,
        n_rows: int,
        n_unknown_rows: int,
        n_unknown_ids: int,
        examples: list[str],
        first_line: int | None,
    ) -> None:
        self.n_rows = n_rows
        self.n_unknown_rows = n_unknown_rows
        self.n_unknown_ids = n_unknown_ids
        self.examples = examples
        shown = ", ".join(repr(e) for e in examples[:5])
        super().__init__(
            f"{n_unknown_rows} of {n_rows} rows reference {n_unknown_ids} item ids that are not "
            f"in the catalogue (e.g. {shown})",
            file=file,
            line=first_line,
            field=field,
            hint="re-run with unknown items skipped to import the rest, or fix the file",
        )
