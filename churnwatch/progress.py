"""The command line's reporter: a rich progress bar in a terminal, timestamped lines otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from core.progress import LogReporter, Reporter, size_of

T = TypeVar("T")


class BarReporter(Reporter):
    """A spinner with the current step, and a bar with counts and time left for each loop."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.current = progress.add_task("starting", total=None)

    def step(self, message: str) -> None:
        self.progress.update(self.current, description=message)

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        task = self.progress.add_task(description, total=size_of(items, total))
        try:
            for item in items:
                yield item
                self.progress.advance(task)
        finally:
            self.progress.remove_task(task)


@contextmanager
def reporter_for(console: Console) -> Iterator[Reporter]:
    """A bar on ``console`` when it is a terminal, else timestamped lines on its file.

    Step descriptions are shown as plain text (they may name accounts, files or event types).
    """
    if not console.is_terminal:
        yield LogReporter(console.file)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TimeElapsedColumn(), TextColumn("left", markup=False), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield BarReporter(progress)
