"""Task generators: results, events, cancellation, throttled progress."""

import pytest

from semid_studio.core.events import CancelToken, Cancelled, Message, Progress, ProgressThrottle, collect, drive


def counting_task(n, cancel):
    yield Message("start")
    for i in range(n):
        cancel.raise_if_cancelled()
        yield Progress("count", i + 1, n)
    return n * 2


def test_drive_returns_result_and_sees_events():
    result, events = collect(counting_task(3, CancelToken()))
    assert result == 6
    assert [e.done for e in events if isinstance(e, Progress)] == [1, 2, 3]
    assert events[-1].fraction == 1.0


def test_cancel_stops_between_steps():
    token = CancelToken()
    seen = []

    def on_event(event):
        seen.append(event)
        if isinstance(event, Progress) and event.done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        drive(counting_task(10, token), on_event)
    assert max(e.done for e in seen if isinstance(e, Progress)) == 2


def test_throttle_limits_rate_but_keeps_the_last_step():
    throttle = ProgressThrottle("s", total=1000, rate_hz=1.0)
    emitted = [throttle.update(i) for i in range(1, 1001)]
    kept = [e for e in emitted if e is not None]
    assert kept[0].done == 1 and kept[-1].done == 1000 and len(kept) == 2
