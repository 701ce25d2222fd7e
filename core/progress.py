"""Progress of long steps: one small reporter passed down from the command line.

Library code takes an optional ``progress`` argument: a plain ``Callable[[str], None]`` that is
told each step, or a ``Reporter``, which also counts the items of a long loop (as-of dates,
report pages, features checked for drift). ``track`` works with either, and with None.

The command line picks the reporter: a progress bar with counts and time left in a terminal
(``churnwatch.progress``), or ``LogReporter``'s plain timestamped lines when the output is not
a terminal (CI, ``mlflow run``, cron).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")
StepCallback = Callable[[str], None]


class Reporter:
    """Silent base: ``reporter(message)`` names the current step; ``track`` counts a loop."""

    def __call__(self, message: str) -> None:
        self.step(message)

    def step(self, message: str) -> None:
        """The step that starts now."""

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Yield ``items``, reporting ``description`` with how many are done (``total``:
        ``len(items)`` when it has one)."""
        yield from items


def track(progress: Reporter | StepCallback | None, items: Iterable[T], description: str,
          total: int | None = None) -> Iterator[T]:
    """``progress.track`` for a reporter; a plain callback is told the step once; None: silent."""
    if isinstance(progress, Reporter):
        return progress.track(items, description, total)
    if progress is not None:
        progress(description)
    return iter(items)


def size_of(items: Iterable[object], total: int | None) -> int | None:
    """``total``, else ``len(items)`` when the iterable has a length, else None."""
    if total is not None:
        return total
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


def duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``1h02m`` (whole seconds)."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class LogReporter(Reporter):
    """Plain timestamped lines for output that is not a terminal.

    A loop writes a line when it starts, at most one every ``every_seconds`` while it runs (done
    of total, percent, elapsed, time left from the average pace so far), and one when it ends.

    Args:
        stream: where the lines go (the CLI passes stderr).
        every_seconds: least time between two lines of one loop.
        clock: monotonic seconds (for tests).
        now: wall-clock time of a line's timestamp (for tests).
    """

    def __init__(self, stream: IO[str], every_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self.stream = stream
        self.every_seconds = every_seconds
        self.clock = clock
        self.now = now

    def _line(self, text: str) -> None:
        self.stream.write(f"{self.now().isoformat(sep=' ', timespec='seconds')} {text}\n")
        self.stream.flush()

    def step(self, message: str) -> None:
        self._line(message)

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        total = size_of(items, total)
        start = last = self.clock()
        done = 0
        self._line(f"{description}: 0/{total if total is not None else '?'}")
        for item in items:
            yield item
            done += 1
            if self.clock() - last >= self.every_seconds and done != total:
                last = self.clock()
                self._line(self._status(description, done, total, last - start))
        self._line(f"{description}: {done}/{done} done in {duration(self.clock() - start)}")

    @staticmethod
    def _status(description: str, done: int, total: int | None, elapsed: float) -> str:
        if total is None:
            return f"{description}: {done} done, {duration(elapsed)} elapsed"
        left = elapsed / done * (total - done)
        return (f"{description}: {done}/{total} ({done / total:.0%}), {duration(elapsed)} elapsed, "
                f"about {duration(left)} left")
