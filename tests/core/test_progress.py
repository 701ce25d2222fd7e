"""Progress: timestamped lines with counts and time left when the output is not a terminal."""

from __future__ import annotations

import datetime as dt
import io
import re

from rich.console import Console

from churnwatch.progress import BarReporter, reporter_for
from core.progress import LogReporter, Reporter, duration, track

START = dt.datetime(2026, 12, 2, 6, 0, 0)


class FakeClock:
    """Monotonic seconds and wall-clock time that move only when told."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> dt.datetime:
        return START + dt.timedelta(seconds=self.seconds)


def test_log_lines_have_timestamps_counts_and_time_left():
    out, clock = io.StringIO(), FakeClock()
    reporter = LogReporter(out, every_seconds=10, clock=clock.monotonic, now=clock.now)
    reporter("reading the data")
    for _ in reporter.track(range(12), "features as of 12 dates"):
        clock.seconds += 4  # 4 s per date: a line every third date
    assert out.getvalue().splitlines() == [
        "2026-12-02 06:00:00 reading the data",
        "2026-12-02 06:00:00 features as of 12 dates: 0/12",
        "2026-12-02 06:00:12 features as of 12 dates: 3/12 (25%), 12s elapsed, about 36s left",
        "2026-12-02 06:00:24 features as of 12 dates: 6/12 (50%), 24s elapsed, about 24s left",
        "2026-12-02 06:00:36 features as of 12 dates: 9/12 (75%), 36s elapsed, about 12s left",
        "2026-12-02 06:00:48 features as of 12 dates: 12/12 done in 48s",
    ]


def test_unknown_total_counts_without_time_left():
    out, clock = io.StringIO(), FakeClock()
    reporter = LogReporter(out, every_seconds=1, clock=clock.monotonic, now=clock.now)
    for _ in reporter.track(iter("abc"), "pages"):
        clock.seconds += 61
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("pages: 0/?") and lines[1].endswith("pages: 1 done, 1m01s elapsed")
    assert lines[-1] == "2026-12-02 06:03:03 pages: 3/3 done in 3m03s"


def test_track_accepts_a_reporter_a_plain_callback_or_nothing():
    told: list[str] = []
    assert list(track(told.append, [1, 2], "scoring 2 dates")) == [1, 2] and told == ["scoring 2 dates"]
    assert list(track(None, [1, 2], "silent")) == [1, 2]
    assert list(track(Reporter(), (x for x in "ab"), "silent")) == ["a", "b"]
    assert duration(3725) == "1h02m" and duration(4.4) == "4s"


def test_cli_picks_log_lines_off_a_terminal_and_a_bar_on_one():
    plain = Console(file=io.StringIO(), force_terminal=False)
    with reporter_for(plain) as reporter:
        assert isinstance(reporter, LogReporter)
        list(reporter.track([1, 2], "drift of 2 features"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d drift of 2 features: 2/2 done in 0s",
                        plain.file.getvalue().splitlines()[-1])
    tty = Console(file=io.StringIO(), force_terminal=True, width=120)
    with reporter_for(tty) as reporter:
        assert isinstance(reporter, BarReporter)
        assert list(reporter.track([1, 2, 3], "report pages")) == [1, 2, 3]
        assert not [t for t in reporter.progress.tasks if t.description == "report pages"]  # removed when done
