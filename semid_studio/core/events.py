"""Typed events and cancellation for long-running core work.

Every long step in the core (embedding, quantiser fitting, model training, evaluation) is a
*generator* that yields events and ``return``s its result. The same generator is driven by
the tests (``drive``), by the CLI (with a progress bar) and by the GUI's task runner (in a
worker thread). The generator checks a :class:`CancelToken` between steps and raises
:class:`Cancelled`; whatever it had committed to the project before that stays consistent.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """How far a stage has got. ``total`` is None when unknown."""

    stage: str
    done: int
    total: int | None = None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


@dataclass(frozen=True)
class Metric:
    """One scalar measurement (a loss, a validation recall, ...) at a step."""

    name: str
    value: float
    step: int
    elapsed_s: float = 0.0
    split: str = "train"


@dataclass(frozen=True)
class Message:
    """A line of human-readable information (shown in the CLI and the GUI's log)."""

    text: str
    level: str = "info"


@dataclass(frozen=True)
class PartialResult:
    """Something usable before the whole task ends (a saved checkpoint, a finished level)."""

    kind: str
    payload: dict = field(default_factory=dict)


Event = Progress | Metric | Message | PartialResult
TaskGenerator = Generator[Event, None, T]


class Cancelled(Exception):
    """Raised inside a task when its cancel token has been set."""

    def __init__(self, message: str = "cancelled by the user"):
        super().__init__(message)


class CancelToken:
    """Thread-safe flag that a task polls between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


#: a token that is never cancelled, for callers that do not need one
NEVER = CancelToken()


def drive(gen: TaskGenerator[T], on_event: Callable[[Event], Any] | None = None) -> T:
    """Run a task generator to completion and return its result.

    ``on_event`` sees every event; without it the events are dropped.
    """
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)


def collect(gen: TaskGenerator[T]) -> tuple[T, list[Event]]:
    """Run a task generator and return ``(result, events)`` — handy in tests."""
    events: list[Event] = []
    result = drive(gen, events.append)
    return result, events


class ProgressThrottle:
    """Yield a Progress event at most ``rate_hz`` times a second (and always the last one).

    Core loops call ``throttle.update(done)`` every step; it returns an event or None.
    """

    def __init__(self, stage: str, total: int | None, rate_hz: float = 10.0) -> None:
        self.stage = stage
        self.total = total
        self._min_gap = 1.0 / rate_hz
        self._last = 0.0

    def update(self, done: int, message: str = "", force: bool = False) -> Progress | None:
        now = time.monotonic()
        final = self.total is not None and done >= self.total
        if force or final or now - self._last >= self._min_gap:
            self._last = now
            return Progress(self.stage, done, self.total, message)
        return None

