"""A progress bar for long imports, on a terminal only: cron and CI logs stay clean."""

from __future__ import annotations

import sys
import time
from typing import IO

import click


class Bar:
    """Rows done of the (estimated) total, rows per second and time left, on stderr."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.bar = None
        self.done = 0
        self.began = time.monotonic()

    def start(self, total: int) -> None:
        self.bar = click.progressbar(
            length=max(total, 1),
            label="Importing",
            show_pos=True,
            show_eta=True,
            file=self.stream,
            item_show_func=lambda _: f"{self.rate:,.0f} rows/s",
        )
        self.bar.__enter__()

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.began, 1e-9)

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows, self.done)

    def finish(self, rows: int) -> None:
        """Every row is read. A CSV's total was estimated from its size and a sample of its
        lines, so the bar would stop short of (or run past) it: it ends at the rows read."""
        if self.bar is not None:
            self.bar.length = max(rows, 1)
            self.bar.pos = self.done = rows
            self.bar.finished = True
            self.bar.render_progress()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def for_terminal(quiet: bool, stream: IO[str] | None = None) -> Bar | None:
    """A bar when ``stream`` (stderr) is a terminal and the user did not ask for quiet."""
    stream = stream or sys.stderr
    return Bar(stream) if not quiet and stream.isatty() else None
